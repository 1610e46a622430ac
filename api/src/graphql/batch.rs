//! Ingest batches: provenance for every analytical row (`batches`, `Batch`, `TradeRecord.batch`).

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entities::{batch, batch_rejection};
use sea_orm::sea_query::{Alias, Expr, Order, Query, UnionType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    Statement,
};

use super::guard::principal;
use super::ids::{self, NodeType};
use super::keyset::{KeyKind, Keyset, KeysetConnection, SortKey, fetch};
use super::pagination::{CONNECTION_COST, page_size};
use super::scalars::Date;
use super::scope;
use crate::error::ApiError;
use crate::policy::PermissionSet;
use crate::state::AppState;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DatasetKind {
    Trade,
    Financial,
    Subjects,
    Sdn,
}

impl DatasetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Trade => "trade",
            DatasetKind::Financial => "financial",
            DatasetKind::Subjects => "subjects",
            DatasetKind::Sdn => "sdn",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "financial" => DatasetKind::Financial,
            "subjects" => DatasetKind::Subjects,
            "sdn" => DatasetKind::Sdn,
            _ => DatasetKind::Trade,
        }
    }
}

/// One load of one input file (or, for SDN, one set of OFAC files).
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Batch {
    #[graphql(skip)]
    row_id: i64,
    pub dataset: DatasetKind,
    pub file_name: String,
    /// Hex SHA-256 of the raw input (for a set of files, of their names and digests).
    pub sha256: String,
    pub accepted_rows: i64,
    pub rejected_rows: i64,
    /// The date the data describes, as given at load.
    pub as_of: Date,
    pub loaded_at: DateTime<Utc>,
    /// The account that loaded it. Audit data: null, with a `FORBIDDEN_FIELD` error, for a
    /// role that may not read it, so the rest of the batch still arrives.
    pub loaded_by: Option<String>,
    pub provider_country: Option<String>,
    pub profile: Option<String>,
    /// When the retention purge removed this batch's rows and raw input. The batch itself
    /// stays, as the record that the load happened; its row counts are those of the load.
    pub purged_at: Option<DateTime<Utc>>,
}

/// A row a load refused, and why.
#[derive(SimpleObject, Clone)]
pub struct BatchRejection {
    pub file_name: String,
    pub line_number: i64,
    pub reason: String,
}

#[ComplexObject]
impl Batch {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Batch, self.row_id)
    }

    /// Refused rows in file order: `first` of them (at most 1,000) after skipping `offset`.
    /// A load's rejections never change, so positions are stable: read them all in steps of
    /// 1,000 up to `rejectedRows`.
    async fn rejections(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] first: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> async_graphql::Result<Vec<BatchRejection>> {
        let limit = page_size(Some(first))?;
        let offset =
            u64::try_from(offset).map_err(|_| ApiError::bad_input("offset must be 0 or more"))?;
        let loader = ctx.data::<DataLoader<BatchLoader>>()?;
        Ok(loader
            .load_one(RejectionsOf {
                batch: self.row_id,
                limit,
                offset,
            })
            .await?
            .unwrap_or_default())
    }
}

impl From<batch::Model> for Batch {
    fn from(m: batch::Model) -> Self {
        Batch {
            row_id: m.id,
            dataset: DatasetKind::parse(&m.dataset),
            file_name: m.file_name,
            sha256: m.sha256,
            accepted_rows: m.accepted_rows,
            rejected_rows: m.rejected_rows,
            as_of: Date(m.as_of),
            loaded_at: m.loaded_at,
            loaded_by: Some(m.loaded_by),
            provider_country: m.provider_country,
            profile: m.profile,
            purged_at: m.purged_at,
        }
    }
}

/// Batches many `TradeRecord.batch` lookups on one page into a single query. Made per request
/// with the caller's permissions, so it returns the batches `batches` and `node` would show
/// this caller, never another's: a partner reads rows of loads it may not see (another
/// nation's file holding a row with it as partner, a shared agreement's rows), and the load's
/// file, digest, counts and rejections are the whole file's, other nations' rows included.
pub struct BatchLoader {
    db: DatabaseConnection,
    perms: PermissionSet,
}

/// The loader for one request of a caller with `perms`.
pub fn loader(state: &AppState, perms: &PermissionSet) -> DataLoader<BatchLoader> {
    DataLoader::new(
        BatchLoader {
            db: state.db.clone(),
            perms: perms.clone(),
        },
        crate::time_limit::spawn,
    )
}

impl Loader<i64> for BatchLoader {
    type Value = Batch;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Batch>, Self::Error> {
        let rows = batch::Entity::find()
            .filter(batch::Column::Id.is_in(keys.iter().copied()))
            .filter(scope::batches(&self.perms))
            .all(&self.db)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(|m| (m.id, Batch::from(m))).collect())
    }
}

/// One `Batch.rejections` of a response: the load, and the window of its rejections asked for
/// (aliases may ask one load for several).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RejectionsOf {
    batch: i64,
    limit: u64,
    offset: u64,
}

/// Windows one SQLite statement reads: it refuses a compound `SELECT` of more than 500 parts.
const WINDOWS_PER_SQLITE_STATEMENT: usize = 250;

/// Every window a response asks for, together (a page of 1,000 batches each asking for its
/// rejections was 1,000 statements at once, holding every pooled connection). Each window
/// stays its own `ORDER BY id LIMIT … OFFSET …` on one batch's index entries, so a large batch
/// is read no further than its window, as one statement per batch did. The batches are those
/// this caller was shown (`batches`, `node`, `TradeRecord.batch` went through the scope), so
/// the rejections need no scope of their own.
impl Loader<RejectionsOf> for BatchLoader {
    type Value = Vec<BatchRejection>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[RejectionsOf],
    ) -> Result<HashMap<RejectionsOf, Vec<BatchRejection>>, Self::Error> {
        let mut rows = Vec::new();
        for statement in rejection_windows(self.db.get_database_backend(), keys) {
            for row in self
                .db
                .query_all_raw(statement)
                .await
                .map_err(ApiError::from)?
            {
                let window: i64 = row.try_get("", "w").map_err(ApiError::from)?;
                let id: i64 = row.try_get("", "id").map_err(ApiError::from)?;
                let rejection = BatchRejection {
                    file_name: row.try_get("", "file_name").map_err(ApiError::from)?,
                    line_number: row.try_get("", "line_number").map_err(ApiError::from)?,
                    reason: row.try_get("", "reason").map_err(ApiError::from)?,
                };
                rows.push((window, id, rejection));
            }
        }
        // Neither `UNION ALL` nor a `LATERAL` join promises its parts' order; sorting here
        // costs SQLite less than an outer `ORDER BY` (a temporary B-tree per statement).
        rows.sort_unstable_by_key(|(window, id, _)| (*window, *id));
        let mut found: HashMap<RejectionsOf, Vec<BatchRejection>> = HashMap::new();
        for (window, _, rejection) in rows {
            let key = usize::try_from(window)
                .ok()
                .and_then(|w| keys.get(w))
                .ok_or_else(|| ApiError::Internal("a rejection came back for no window".into()))?;
            found.entry(*key).or_default().push(rejection);
        }
        Ok(found)
    }
}

/// The statements that read `windows`, each row numbered `w` by its window's place in it.
/// PostgreSQL: one statement, the windows a JSON parameter joined `LATERAL` to the rejections
/// (a `UNION ALL` of 250 parts took it 30–40 ms to plan for 0.2 ms of execution). SQLite,
/// which has no `LATERAL`: a `UNION ALL` of one part per window (cheap to plan there), 250
/// parts a statement.
fn rejection_windows(backend: DbBackend, windows: &[RejectionsOf]) -> Vec<Statement> {
    use batch_rejection::Column as C;
    if backend == DbBackend::Postgres {
        let json = serde_json::Value::Array(
            windows
                .iter()
                .enumerate()
                .map(|(w, k)| serde_json::json!({ "w": w, "b": k.batch, "l": k.limit, "o": k.offset }))
                .collect(),
        );
        return vec![Statement::from_sql_and_values(
            backend,
            "SELECT w.w, r.id, r.file_name, r.line_number, r.reason \
             FROM json_to_recordset($1::json) AS w(w bigint, b bigint, l bigint, o bigint) \
             CROSS JOIN LATERAL (SELECT id, file_name, line_number, reason FROM batch_rejections \
             WHERE batch_id = w.b ORDER BY id LIMIT w.l OFFSET w.o) AS r",
            [json.to_string().into()],
        )];
    }
    let part = |(w, key): (usize, &RejectionsOf)| {
        let window = Query::select()
            .columns([C::Id, C::FileName, C::LineNumber, C::Reason])
            .from(batch_rejection::Entity)
            .and_where(C::BatchId.eq(key.batch))
            .order_by(C::Id, Order::Asc)
            .limit(key.limit)
            .offset(key.offset)
            .to_owned();
        Query::select()
            .expr_as(
                Expr::val(i64::try_from(w).unwrap_or(i64::MAX)),
                Alias::new("w"),
            )
            .columns([C::Id, C::FileName, C::LineNumber, C::Reason])
            .from_subquery(window, Alias::new("r"))
            .to_owned()
    };
    let numbered: Vec<(usize, &RejectionsOf)> = windows.iter().enumerate().collect();
    numbered
        .chunks(WINDOWS_PER_SQLITE_STATEMENT)
        .map(|chunk| {
            let mut parts = chunk.iter().copied().map(part);
            let mut statement = parts.next().unwrap_or_else(Query::select);
            for p in parts {
                statement.union(UnionType::All, p);
            }
            backend.build(&statement)
        })
        .collect()
}

#[derive(InputObject, Default)]
pub struct BatchFilter {
    pub dataset: Option<DatasetKind>,
    pub provider_country: Option<String>,
    pub sha256: Option<String>,
}

#[derive(Default)]
pub struct BatchQuery;

#[Object]
impl BatchQuery {
    /// Loads, newest first.
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    async fn batches(
        &self,
        ctx: &Context<'_>,
        filter: Option<BatchFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<KeysetConnection<Batch>> {
        let state = ctx.data::<AppState>()?;
        let page = Keyset::new(
            "batches",
            vec![
                SortKey::new(
                    "id",
                    Expr::col((batch::Entity, batch::Column::Id)),
                    KeyKind::Int,
                )
                .desc(true),
            ],
        )
        .page(&state.cursors, first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let mut c = scope::batches(&principal(ctx)?.permissions);
        if let Some(d) = filter.dataset {
            c = c.add(batch::Column::Dataset.eq(d.as_str()));
        }
        if let Some(p) = filter.provider_country {
            c = c.add(batch::Column::ProviderCountry.eq(p.to_ascii_uppercase()));
        }
        if let Some(s) = filter.sha256 {
            c = c.add(batch::Column::Sha256.eq(s.to_ascii_lowercase()));
        }
        let (rows, total) = fetch(ctx, &state.db, &page, batch::Entity::find().filter(c)).await?;
        let edges = page.edges(rows, |m| vec![m.id.into()], Batch::from);
        Ok(page.connection(edges, total))
    }
}
