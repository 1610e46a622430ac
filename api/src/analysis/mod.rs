//! Analysis (DESIGN §4, issue 8): statistics and decisions as plain functions, and the tables
//! they are materialized in. GraphQL modules call into here and stay thin.
//!
//! - `stats`: quantiles, MAD, Benford, round values — numbers in, numbers out.
//! - `peers`: peer groups, fences and price findings.
//! - `facts`: the per-record logarithms written with each trade row at load time.
//! - `profile_store`: recomputing `peer_profiles` for the HS codes a load or purge touched.
//! - `anomalies`: the price-anomaly query over profiles (all-rows roles) or over the caller's
//!   scoped rows (nation-scoped roles).
//! - `value_moved`: the implied value moved by anomalies, summed by group as they are read.
//! - `red_flags`: round values, value per kg, Benford per importer, transshipment, new chapters.
//! - `demo`, `eval`: the synthetic world with ground truth, and precision/recall against it.
//! - `rollup`: when totals are answered from the importer-year rollup instead of the records.
//! - `totals`, `mirror`, `trade_finance`: grouping dimensions, mirror-trade matching with the
//!   CIF/FOB allowance, money against goods and structuring.

pub mod anomalies;
pub mod commands;
pub mod demo;
pub mod eval;
pub mod facts;
pub mod mirror;
pub mod peers;
pub mod profile_store;
pub mod red_flags;
pub mod rollup;
pub mod stats;
pub mod totals;
pub mod trade_finance;
pub mod value_moved;
