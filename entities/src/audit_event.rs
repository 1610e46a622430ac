//! One audit event. Rows are append-only; `hash` chains each to the one before.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub at: DateTimeUtc,
    /// `domestic` or `foreign`.
    pub instance: String,
    /// Client address, or `cli` for operator commands.
    pub source: Option<String>,
    /// Username, when known.
    pub actor: Option<String>,
    pub event_type: String,
    pub outcome: String,
    /// Records delivered to the actor by this event (quota accounting reads this).
    pub records: i64,
    /// JSON object with the event's particulars.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
