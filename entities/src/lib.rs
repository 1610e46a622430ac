//! sea-orm models for every DARTTS table, and nothing else.
//!
//! GraphQL types live in `dartts::graphql` and are built *from* these models, so the storage
//! shape and the API shape can move independently (a column rename must not silently rename a
//! field partners rely on).

pub mod audit_event;
pub mod batch;
pub mod batch_rejection;
pub mod financial_transaction;
pub mod peer_profile;
pub mod sdn_address;
pub mod sdn_alias;
pub mod sdn_entry;
pub mod sharing_agreement;
pub mod subject_record;
pub mod trade_record;
pub mod user;
