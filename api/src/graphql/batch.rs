//! Ingest batches: provenance for every analytical row (`batches`, `Batch`, `TradeRecord.batch`).

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entities::{batch, batch_rejection};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

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
#[derive(SimpleObject)]
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
        let state = ctx.data::<AppState>()?;
        let rows = batch_rejection::Entity::find()
            .filter(batch_rejection::Column::BatchId.eq(self.row_id))
            .order_by_asc(batch_rejection::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&state.db)
            .await
            .map_err(ApiError::from)?;
        Ok(rows
            .into_iter()
            .map(|r| BatchRejection {
                file_name: r.file_name,
                line_number: r.line_number,
                reason: r.reason,
            })
            .collect())
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
