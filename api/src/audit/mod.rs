//! The tamper-evident audit log (DESIGN §6): every query, export, sign-in, refusal, lock,
//! unlock, admin change, ingest and purge becomes one row of a hash chain.
//!
//! `AuditSink` is the port the rest of the code writes to; `DbAudit` is the real one. Appends
//! serialize on the single `audit_head` row, so the chain stays linear across replicas. A
//! failed append is an error for the caller: an action that cannot be audited does not happen.

mod chain;
pub mod checkpoint;
pub mod commands;
pub mod key;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use entities::audit_event;
use sea_orm::sqlx::{self, PgConnection, Postgres, pool::PoolConnection};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Set, Statement, TransactionTrait,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub use chain::{Chain, VerifyReport, event_hash};
pub use key::AuditKey;

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
    /// A request that failed on our side before it could run (the database unreachable while
    /// authenticating); its outcome is `internal_error`.
    RequestFailed,
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
            EventType::RequestFailed => "request_failed",
        }
    }
}

/// One event as the caller describes it; time, instance, id and hashes are added on append.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub event_type: EventType,
    /// `ok`, `denied`, `failed`, `partial`, `attempted`, or for a refused action what the
    /// answer said (`not_found`, `invalid`, `unavailable`, `timed_out`, `internal_error`).
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
    Writer(String),
    #[error("audit write failed: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("audit write failed: {0}")]
    Connection(#[from] sea_orm::sqlx::Error),
    #[error("audit head is missing; run `dartts migrate`")]
    NoHead,
}

/// Where audit events go. Tests may substitute another implementation.
#[async_trait]
pub trait AuditSink: Send + Sync {
    async fn record(&self, event: AuditEvent) -> Result<i64, AuditError>;
}

/// The database sink, with group commit: callers hand their event to one writer task per
/// process, which appends everything waiting as one unit and then answers each caller. On
/// PostgreSQL that unit is a single statement (move the head if it is still where this process
/// left it, insert the batch); on SQLite a transaction holding the head's lock. A request still
/// waits until its own row is durable, but requests do not queue behind a round trip each.
pub struct DbAudit {
    queue: mpsc::Sender<Pending>,
}

struct Pending {
    event: AuditEvent,
    reply: oneshot::Sender<Result<i64, String>>,
}

/// Most events in one transaction; a bound on how long the head row stays locked.
const MAX_BATCH: usize = 512;

impl DbAudit {
    /// Starts the writer task (needs a Tokio runtime).
    pub fn new(db: DatabaseConnection, instance: Instance, key: Arc<AuditKey>) -> Self {
        let (queue, receiver) = mpsc::channel(8 * MAX_BATCH);
        tokio::spawn(writer(db, instance, key, receiver));
        DbAudit { queue }
    }
}

#[async_trait]
impl AuditSink for DbAudit {
    async fn record(&self, event: AuditEvent) -> Result<i64, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { event, reply })
            .await
            .map_err(|_| AuditError::Writer("audit writer stopped".into()))?;
        answer
            .await
            .map_err(|_| AuditError::Writer("audit writer stopped".into()))?
            .map_err(AuditError::Writer)
    }
}

/// How long the writer keeps its PostgreSQL connection without an event before it hands it
/// back to the pool.
const IDLE_RELEASE: Duration = Duration::from_secs(1);

async fn writer(
    db: DatabaseConnection,
    instance: Instance,
    key: Arc<AuditKey>,
    mut receiver: mpsc::Receiver<Pending>,
) {
    // The chain's head as this process last wrote it. PostgreSQL appends are checked against it
    // in the same statement, so a stale copy (another replica appended) costs a retry, never a
    // fork in the chain.
    let mut head: Option<Head> = None;
    // The PostgreSQL connection, kept from one append to the next while events keep coming.
    // sqlx tests every connection given back to a pool with a round trip, so taking one per
    // append put that round trip between each commit and the next batch's. Given back after
    // IDLE_RELEASE without events (a CLI command's pool is shared), and after any error, so the
    // next append starts on a connection the pool has checked.
    let mut held: Option<PoolConnection<Postgres>> = None;
    loop {
        let first = if held.is_some() {
            match tokio::time::timeout(IDLE_RELEASE, receiver.recv()).await {
                Ok(Some(first)) => first,
                Ok(None) => break,
                Err(_) => {
                    held = None;
                    continue;
                }
            }
        } else {
            match receiver.recv().await {
                Some(first) => first,
                None => break,
            }
        };
        // Let the request tasks that are ready run first: those about to finish add their
        // events to this batch instead of waiting for the next commit. Costs no timer, only a
        // turn of the scheduler.
        tokio::task::yield_now().await;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // Each append takes a prefix of what is waiting (all of it on SQLite) and says how
        // many; those callers are answered at once, the rest go on.
        while !batch.is_empty() {
            let events: Vec<&AuditEvent> = batch.iter().map(|p| &p.event).collect();
            let started = std::time::Instant::now();
            let appended = match db.get_database_backend() {
                DbBackend::Postgres => {
                    append_held(&db, &mut held, instance, &key, &events, &mut head).await
                }
                _ => append_locked(&db, instance, &key, &events)
                    .await
                    .map(|first_id| (first_id, events.len())),
            };
            match appended {
                Ok((first_id, count)) => {
                    crate::metrics::audit_append(count, started.elapsed());
                    for (offset, pending) in batch.drain(..count).enumerate() {
                        let _ = pending.reply.send(Ok(first_id + offset as i64));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, events = batch.len(), "audit append failed");
                    held = None;
                    let message = e.to_string();
                    for pending in batch.drain(..) {
                        let _ = pending.reply.send(Err(message.clone()));
                    }
                }
            }
        }
    }
}

/// `append_postgres` on the writer's held connection, taken from the pool first if it has none.
async fn append_held(
    db: &DatabaseConnection,
    held: &mut Option<PoolConnection<Postgres>>,
    instance: Instance,
    key: &AuditKey,
    events: &[&AuditEvent],
    head: &mut Option<Head>,
) -> Result<(i64, usize), AuditError> {
    let conn = match held {
        Some(conn) => conn,
        None => held.insert(db.get_postgres_connection_pool().acquire().await?),
    };
    append_postgres(conn, instance, key, events, head).await
}

/// The last row of the chain, as `audit_head` records it.
struct Head {
    last_id: i64,
    last_hash: String,
    keyed_from: i64,
}

impl Head {
    fn chain<'a>(&self, key: &'a AuditKey) -> Chain<'a> {
        Chain {
            key,
            keyed_from: self.keyed_from,
        }
    }
}

const READ_HEAD: &str =
    "SELECT last_id, last_hash, COALESCE(keyed_from, 1) FROM audit_head WHERE id = 1";

async fn read_head(db: &impl ConnectionTrait) -> Result<Head, AuditError> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), READ_HEAD))
        .await?
        .ok_or(AuditError::NoHead)?;
    Ok(Head {
        last_id: row.try_get_by_index(0)?,
        last_hash: row.try_get_by_index(1)?,
        keyed_from: row.try_get_by_index(2)?,
    })
}

/// The time every row of one append carries. Microseconds: what both databases store, so the
/// hash recomputes from the stored row.
fn append_time() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The row that puts `event` at `id`, after the row whose hash is `prev_hash`.
fn chain_row(
    chain: Chain<'_>,
    instance: Instance,
    id: i64,
    prev_hash: String,
    at: DateTime<Utc>,
    event: &AuditEvent,
) -> audit_event::Model {
    let mut row = audit_event::Model {
        id,
        at,
        instance: instance.as_str().to_owned(),
        source: event.source.clone(),
        actor: event.actor.clone(),
        event_type: event.event_type.as_str().to_owned(),
        outcome: event.outcome.to_owned(),
        records: event.records,
        detail: if event.detail.is_null() {
            "{}".to_owned()
        } else {
            event.detail.to_string()
        },
        prev_hash,
        hash: String::new(),
    };
    row.hash = chain.hash(&row);
    row
}

/// The rows that extend the chain after `head` with `events`, in order.
fn chain_rows(
    key: &AuditKey,
    instance: Instance,
    head: &Head,
    events: &[&AuditEvent],
) -> Vec<audit_event::Model> {
    let at = append_time();
    let mut prev_hash = head.last_hash.clone();
    let mut rows = Vec::with_capacity(events.len());
    for (offset, event) in events.iter().enumerate() {
        let row = chain_row(
            head.chain(key),
            instance,
            head.last_id + 1 + offset as i64,
            prev_hash,
            at,
            event,
        );
        prev_hash = row.hash.clone();
        rows.push(row);
    }
    rows
}

/// Moves the head and inserts rows in one autocommit statement, but only if the head is
/// still where `head` says: one round trip, and the UPDATE's row lock orders concurrent
/// appenders. When another process appended in between, the head no longer
/// matches, nothing is written, and the batch is rebuilt on the new head.
const POSTGRES_APPEND: &str = "\
    WITH moved AS ( \
        UPDATE audit_head SET last_id = $1, last_hash = $2 \
        WHERE id = 1 AND last_id = $3 AND last_hash = $4 \
        RETURNING id \
    ) \
    INSERT INTO audit_events \
        (id, at, instance, source, actor, event_type, outcome, records, detail, prev_hash, hash) \
    SELECT r.id, r.at, r.instance, r.source, r.actor, r.event_type, r.outcome, r.records, \
        r.detail, r.prev_hash, r.hash \
    FROM moved, json_to_recordset($5::json) AS r( \
        id bigint, at timestamptz, instance text, source text, actor text, event_type text, \
        outcome text, records bigint, detail text, prev_hash text, hash text)";

/// Other appenders a batch may lose the race to before the writer gives up.
const MAX_ATTEMPTS: usize = 50;

/// A row as `json_to_recordset` reads it: the hashed content plus its hash. One text parameter
/// whatever the batch size, so the statement is prepared once per connection and NULLs need no
/// separate encoding.
#[derive(serde::Serialize)]
struct RowJson<'a> {
    #[serde(flatten)]
    content: chain::Canonical<'a>,
    hash: &'a str,
}

/// The most bytes of rows one statement carries. The statement then fits in one TLS record
/// (16 KiB), i.e. one write to the socket. A larger one is written in pieces, and sqlx does not
/// set TCP_NODELAY: the second piece waits for the server's delayed ACK of the first, about
/// 40 ms on Linux, for every batch (measured in BENCHMARKS.md).
const STATEMENT_BYTES: usize = 15_000;

/// The JSON array of rows that puts the longest prefix of `events` that fits in `cap` bytes (at
/// least one event) after `head`; also how many events it holds and the head after them.
fn rows_json(
    key: &AuditKey,
    instance: Instance,
    head: &Head,
    events: &[&AuditEvent],
    cap: usize,
) -> Result<(String, usize, Head), AuditError> {
    let at = append_time();
    let mut json = String::from("[");
    let mut last = Head {
        last_id: head.last_id,
        last_hash: head.last_hash.clone(),
        keyed_from: head.keyed_from,
    };
    let mut count = 0;
    for event in events {
        let row = chain_row(
            head.chain(key),
            instance,
            last.last_id + 1,
            last.last_hash.clone(),
            at,
            event,
        );
        let text = serde_json::to_string(&RowJson {
            content: chain::Canonical::of(&row),
            hash: &row.hash,
        })
        .map_err(|e| AuditError::Writer(format!("encoding the batch: {e}")))?;
        if count > 0 && json.len() + text.len() + 2 > cap {
            break;
        }
        if count > 0 {
            json.push(',');
        }
        json.push_str(&text);
        last = Head {
            last_id: row.id,
            last_hash: row.hash,
            keyed_from: head.keyed_from,
        };
        count += 1;
    }
    json.push(']');
    Ok((json, count, last))
}

/// Appends the longest prefix of `events` that fits in one statement (at least one event);
/// returns the first new id and how many were appended.
async fn append_postgres(
    conn: &mut PgConnection,
    instance: Instance,
    key: &AuditKey,
    events: &[&AuditEvent],
    head: &mut Option<Head>,
) -> Result<(i64, usize), AuditError> {
    for _ in 0..MAX_ATTEMPTS {
        // Taken, not borrowed: after any error the next batch starts from a fresh read.
        let current = match head.take() {
            Some(h) => h,
            None => {
                let (last_id, last_hash, keyed_from) = sqlx::query_as(READ_HEAD)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or(AuditError::NoHead)?;
                Head {
                    last_id,
                    last_hash,
                    keyed_from,
                }
            }
        };
        let (json, count, last) = rows_json(key, instance, &current, events, STATEMENT_BYTES)?;
        if count == 0 {
            *head = Some(current);
            return Err(AuditError::Writer("nothing to append".into()));
        }
        let written = sqlx::query(POSTGRES_APPEND)
            .bind(last.last_id)
            .bind(&last.last_hash)
            .bind(current.last_id)
            .bind(current.last_hash)
            .bind(json)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if written == count as u64 {
            let first_id = current.last_id + 1;
            *head = Some(last);
            return Ok((first_id, count));
        }
        if written != 0 {
            return Err(AuditError::Writer(format!(
                "appended {written} of {count} events"
            )));
        }
    }
    Err(AuditError::Writer(format!(
        "the audit head moved {MAX_ATTEMPTS} times in a row"
    )))
}

/// Appends `events` in order as one transaction that holds the head row's write lock (SQLite's
/// single writer); returns the first new id.
async fn append_locked(
    db: &DatabaseConnection,
    instance: Instance,
    key: &AuditKey,
    events: &[&AuditEvent],
) -> Result<i64, AuditError> {
    let backend = db.get_database_backend();
    let txn = db.begin().await?;
    // Taking the write lock first serializes appenders before anyone reads the head.
    txn.execute_raw(Statement::from_string(
        backend,
        "UPDATE audit_head SET last_id = last_id WHERE id = 1",
    ))
    .await?;
    let head = read_head(&txn).await?;
    let rows = chain_rows(key, instance, &head, events);
    let Some(last) = rows.last() else {
        return Ok(head.last_id + 1);
    };
    let (last_id, last_hash) = (last.id, last.hash.clone());
    // SQLite allows 32,766 parameters per statement; 11 per row keeps chunks well inside.
    for chunk in rows.chunks(1_000) {
        let actives = chunk.iter().cloned().map(|m| audit_event::ActiveModel {
            id: Set(m.id),
            at: Set(m.at),
            instance: Set(m.instance),
            source: Set(m.source),
            actor: Set(m.actor),
            event_type: Set(m.event_type),
            outcome: Set(m.outcome),
            records: Set(m.records),
            detail: Set(m.detail),
            prev_hash: Set(m.prev_hash),
            hash: Set(m.hash),
        });
        audit_event::Entity::insert_many(actives).exec(&txn).await?;
    }
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE audit_head SET last_id = $1, last_hash = $2 WHERE id = 1",
        [last_id.into(), last_hash.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(head.last_id + 1)
}

/// Accepts and discards everything: only for `DARTTS_AUDIT=off-for-benchmarks`, which the
/// configuration refuses wherever real users could connect.
pub struct NoAudit;

#[async_trait]
impl AuditSink for NoAudit {
    async fn record(&self, _event: AuditEvent) -> Result<i64, AuditError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests;
