//! The tamper-evident audit log (DESIGN §6): every query, export, sign-in, refusal, lock,
//! unlock, admin change, ingest and purge becomes one row of a hash chain.
//!
//! `AuditSink` is the port the rest of the code writes to; `DbAudit` is the real one. Appends
//! serialize on the single `audit_head` row, so the chain stays linear across replicas. A
//! failed append is an error for the caller: an action that cannot be audited does not happen.

mod chain;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use entities::audit_event;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};
use serde_json::Value;

pub use chain::{VerifyReport, event_hash};

use crate::config::Instance;

/// Kinds of event, stored as their snake_case names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Query,
    Mutation,
    Export,
    LoginOk,
    LoginFailed,
    TokenRefused,
    AccessDenied,
    QuotaLock,
    Unlock,
    AdminChange,
    Ingest,
    Purge,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Query => "query",
            EventType::Mutation => "mutation",
            EventType::Export => "export",
            EventType::LoginOk => "login_ok",
            EventType::LoginFailed => "login_failed",
            EventType::TokenRefused => "token_refused",
            EventType::AccessDenied => "access_denied",
            EventType::QuotaLock => "quota_lock",
            EventType::Unlock => "unlock",
            EventType::AdminChange => "admin_change",
            EventType::Ingest => "ingest",
            EventType::Purge => "purge",
        }
    }
}

/// One event as the caller describes it; time, instance, id and hashes are added on append.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub event_type: EventType,
    /// `ok`, `denied`, `failed`, `partial`, `attempted`.
    pub outcome: &'static str,
    pub source: Option<String>,
    pub actor: Option<String>,
    pub records: i64,
    pub detail: Value,
}

impl AuditEvent {
    pub fn new(event_type: EventType, outcome: &'static str) -> Self {
        AuditEvent {
            event_type,
            outcome,
            source: None,
            actor: None,
            records: 0,
            detail: Value::Null,
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn records(mut self, records: i64) -> Self {
        self.records = records;
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit write failed: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("audit head is missing; run `dartts migrate`")]
    NoHead,
}

/// Where audit events go. Tests may substitute another implementation.
#[async_trait]
pub trait AuditSink: Send + Sync {
    async fn record(&self, event: AuditEvent) -> Result<i64, AuditError>;
}

pub struct DbAudit {
    db: DatabaseConnection,
    instance: Instance,
}

impl DbAudit {
    pub fn new(db: DatabaseConnection, instance: Instance) -> Self {
        DbAudit { db, instance }
    }
}

#[async_trait]
impl AuditSink for DbAudit {
    async fn record(&self, event: AuditEvent) -> Result<i64, AuditError> {
        let backend = self.db.get_database_backend();
        let txn = self.db.begin().await?;
        // Taking the head row's write lock first serializes appenders (PostgreSQL row lock,
        // SQLite's single writer) before anyone reads the head.
        txn.execute_raw(Statement::from_string(
            backend,
            "UPDATE audit_head SET last_id = last_id WHERE id = 1",
        ))
        .await?;
        let head = txn
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT last_id, last_hash FROM audit_head WHERE id = 1",
            ))
            .await?
            .ok_or(AuditError::NoHead)?;
        let last_id: i64 = head.try_get_by_index(0)?;
        let prev_hash: String = head.try_get_by_index(1)?;
        let id = last_id + 1;
        // Microseconds: what both databases store, so the hash recomputes from the stored row.
        let at: DateTime<Utc> = Utc::now().trunc_subsecs(6);
        let detail = if event.detail.is_null() {
            "{}".to_owned()
        } else {
            event.detail.to_string()
        };
        let row = audit_event::Model {
            id,
            at,
            instance: self.instance.as_str().to_owned(),
            source: event.source,
            actor: event.actor,
            event_type: event.event_type.as_str().to_owned(),
            outcome: event.outcome.to_owned(),
            records: event.records,
            detail,
            prev_hash,
            hash: String::new(),
        };
        let hash = event_hash(&row);
        let active = audit_event::ActiveModel {
            id: Set(row.id),
            at: Set(row.at),
            instance: Set(row.instance),
            source: Set(row.source),
            actor: Set(row.actor),
            event_type: Set(row.event_type),
            outcome: Set(row.outcome),
            records: Set(row.records),
            detail: Set(row.detail),
            prev_hash: Set(row.prev_hash),
            hash: Set(hash.clone()),
        };
        active.insert(&txn).await?;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE audit_head SET last_id = $1, last_hash = $2 WHERE id = 1",
            [id.into(), hash.into()],
        ))
        .await?;
        txn.commit().await?;
        Ok(id)
    }
}

/// Checks the whole chain: ids contiguous from 1, each row's hash, each link, and the head.
pub async fn verify(db: &DatabaseConnection) -> Result<VerifyReport, AuditError> {
    const PAGE: u64 = 1_000;
    let mut checker = chain::Checker::default();
    let mut after = 0i64;
    loop {
        let rows = audit_event::Entity::find()
            .filter(audit_event::Column::Id.gt(after))
            .order_by_asc(audit_event::Column::Id)
            .limit(PAGE)
            .all(db)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for row in &rows {
            checker.check(row);
        }
    }
    let backend = db.get_database_backend();
    let head = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT last_id, last_hash FROM audit_head WHERE id = 1",
        ))
        .await?
        .ok_or(AuditError::NoHead)?;
    Ok(checker.finish(
        head.try_get_by_index(0)?,
        &head.try_get_by_index::<String>(1)?,
    ))
}
