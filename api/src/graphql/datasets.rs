//! `datasets`: how current each data set the caller may read is (DESIGN §3, freshness) — the
//! newest load, its as-of date, what is held, the refresh cadence and whether it has lapsed.
//!
//! Only data sets whose records the caller may read are listed, and only the loads in the
//! caller's row scope count (the same condition as `batches`): a role that cannot read SDN
//! does not learn when the list was last refreshed.

use async_graphql::{Context, Object, SimpleObject};
use entities::batch;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::batch::{Batch, DatasetKind};
use super::guard::principal;
use super::scalars::Date;
use super::scope;
use crate::config::Settings;
use crate::error::ApiError;
use crate::freshness;
use crate::state::AppState;

/// The freshness of one data set, as held by this instance and seen by the caller.
#[derive(SimpleObject)]
pub struct DatasetStatus {
    pub dataset: DatasetKind,
    /// The newest load still held (not purged): the last one loaded, whatever its as-of date.
    pub latest_batch: Option<Batch>,
    /// The date that load describes; null when nothing is loaded.
    pub as_of: Option<Date>,
    /// Loads held (not purged).
    pub batches: i64,
    /// Rows accepted by those loads.
    pub rows: i64,
    /// Days after `asOf` within which the next load is due (SDN monthly, TECS quarterly by
    /// default); null for data delivered as it comes, which is never stale.
    pub cadence_days: Option<i32>,
    /// Nothing loaded, or the newest load is older than the cadence allows.
    pub stale: bool,
}

/// The refresh cadence of a data set under these settings.
pub fn cadence_days(settings: &Settings, dataset: DatasetKind) -> Option<u32> {
    match dataset {
        DatasetKind::Sdn => Some(settings.operations.sdn_cadence_days),
        DatasetKind::Subjects => Some(settings.operations.subjects_cadence_days),
        DatasetKind::Trade | DatasetKind::Financial => None,
    }
}

#[derive(Default)]
pub struct DatasetQuery;

#[Object]
impl DatasetQuery {
    /// The data sets you may read, with their newest load and whether it is stale.
    async fn datasets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DatasetStatus>> {
        let state = ctx.data::<AppState>()?;
        let perms = &principal(ctx)?.permissions;
        let readable = scope::readable_datasets(perms);
        let today = chrono::Utc::now().date_naive();
        let mut out = Vec::new();
        for dataset in [
            DatasetKind::Trade,
            DatasetKind::Financial,
            DatasetKind::Subjects,
            DatasetKind::Sdn,
        ] {
            if !readable.contains(&dataset.as_str()) {
                continue;
            }
            let held = freshness::newest_load_first(
                batch::Entity::find()
                    .filter(scope::batches(perms))
                    .filter(batch::Column::Dataset.eq(dataset.as_str()))
                    .filter(batch::Column::PurgedAt.is_null()),
            )
            .all(&state.db)
            .await
            .map_err(ApiError::from)?;
            let rows = held.iter().map(|b| b.accepted_rows).sum();
            let batches = i64::try_from(held.len()).unwrap_or(i64::MAX);
            let latest = held.into_iter().next();
            let cadence = cadence_days(&state.settings, dataset);
            let fresh = freshness::assess(latest.as_ref().map(|b| b.as_of), cadence, today);
            out.push(DatasetStatus {
                dataset,
                as_of: fresh.as_of.map(Date),
                latest_batch: latest.map(Batch::from),
                batches,
                rows,
                cadence_days: fresh.cadence_days.and_then(|d| i32::try_from(d).ok()),
                stale: fresh.stale,
            });
        }
        Ok(out)
    }
}
