//! DARTTS: trade-transparency analysis backend. The `dartts` binary is a thin shell over this
//! library so tests can drive the same code paths. See ARCHITECTURE.md for the map.

pub mod access_request;
pub mod accounts;
pub mod admission;
pub mod agreements;
pub mod analysis;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod country;
pub mod db;
pub mod delivery;
pub mod error;
pub mod export;
pub mod export_foreign;
pub mod freshness;
pub mod graphql;
pub mod ingest;
pub mod introspection;
pub mod key_file;
pub mod keyed_turns;
pub mod metrics;
pub mod policy;
pub mod purge;
pub mod quota;
pub mod screening;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod time_limit;
