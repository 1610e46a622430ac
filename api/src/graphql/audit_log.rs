//! `auditEvents`: the audit log for those holding the AUDIT category.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entities::audit_event::{self, Column};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};

use super::filters::check_text;
use super::keyset::{KeyKind, Keyset, KeysetConnection, SortKey, fetch};
use super::pagination::CONNECTION_COST;
use crate::state::AppState;

/// One audit event, with its place in the hash chain.
#[derive(SimpleObject)]
#[graphql(name = "AuditEvent")]
pub struct AuditEventRecord {
    /// Position in the chain (1, 2, 3, …).
    pub sequence: i64,
    pub at: DateTime<Utc>,
    pub instance: String,
    pub source: Option<String>,
    pub actor: Option<String>,
    pub event_type: String,
    pub outcome: String,
    pub records: i64,
    /// JSON with the event's particulars.
    pub detail: String,
    pub hash: String,
    pub prev_hash: String,
}

impl From<audit_event::Model> for AuditEventRecord {
    fn from(m: audit_event::Model) -> Self {
        AuditEventRecord {
            sequence: m.id,
            at: m.at,
            instance: m.instance,
            source: m.source,
            actor: m.actor,
            event_type: m.event_type,
            outcome: m.outcome,
            records: m.records,
            detail: m.detail,
            hash: m.hash,
            prev_hash: m.prev_hash,
        }
    }
}

#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    pub actor: Option<String>,
    /// e.g. `query`, `export`, `login_failed`, `quota_lock`, `unlock`, `admin_change`.
    pub event_type: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Audit events, newest first.
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditEventFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<KeysetConnection<AuditEventRecord>>> {
        let state = ctx.data::<AppState>()?;
        let page = Keyset::new(
            "auditEvents",
            vec![
                SortKey::new(
                    "id",
                    Expr::col((audit_event::Entity, Column::Id)),
                    KeyKind::Int,
                )
                .desc(true),
            ],
        )
        .page(&state.cursors, first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let mut c = Condition::all();
        for (value, column, argument) in [
            (&filter.actor, Column::Actor, "actor"),
            (&filter.event_type, Column::EventType, "eventType"),
            (&filter.outcome, Column::Outcome, "outcome"),
        ] {
            if let Some(v) = value {
                check_text(argument, v)?;
                c = c.add(column.eq(v.as_str()));
            }
        }
        if let Some(from) = filter.from {
            c = c.add(Column::At.gte(from));
        }
        if let Some(to) = filter.to {
            c = c.add(Column::At.lte(to));
        }
        let (rows, total) =
            fetch(ctx, &state.db, &page, audit_event::Entity::find().filter(c)).await?;
        let edges = page.edges(rows, |m| vec![m.id.into()], AuditEventRecord::from);
        Ok(Some(page.connection(edges, total)))
    }
}
