//! How old a data set is (DESIGN §3, freshness): analysts must cross-check SDN and TECS answers
//! against the source, so every answer that relies on them can say the as-of date of the newest
//! load and whether that is older than the data set's refresh cadence.
//!
//! One staleness rule (`assess`), used by screening results, the `datasets` query and the
//! response warning. Screening assesses the as-of dates of the data its index holds (the SDN
//! list indexed is the newest batch loaded), read when the index is built.

pub mod warning;

use chrono::NaiveDate;
use entities::batch;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Select};

use crate::error::ApiResult;

/// Default refresh cadences: OFAC publishes the SDN list continuously and DARTTS refreshes it
/// monthly; TECS extracts arrive quarterly. Trade and FinCEN data arrive "as delivered" and
/// have no cadence, so they are never stale.
pub const SDN_CADENCE_DAYS: u32 = 31;
pub const SUBJECTS_CADENCE_DAYS: u32 = 92;

/// The age of one data set as of `today`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freshness {
    /// As-of date of the newest batch still held (not purged); `None`: nothing loaded.
    pub as_of: Option<NaiveDate>,
    /// Days after `as_of` before the data set counts as stale; `None`: no cadence.
    pub cadence_days: Option<u32>,
    /// Nothing loaded, or the newest as-of date is older than the cadence allows.
    pub stale: bool,
}

/// Pure rule: stale when nothing is loaded, or `today` is more than `cadence_days` after the
/// newest as-of date. Without a cadence a loaded data set is never stale.
pub fn assess(as_of: Option<NaiveDate>, cadence_days: Option<u32>, today: NaiveDate) -> Freshness {
    let stale = match (as_of, cadence_days) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(date), Some(days)) => (today - date).num_days() > i64::from(days),
    };
    Freshness {
        as_of,
        cadence_days,
        stale,
    }
}

/// `query`'s batches, the newest load first: the batch whose as-of date dates its data set.
/// The newest *load*, not the latest as-of date: the SDN answers read the last list loaded
/// (`screening::current_batches`), and a list loaded after one with a later as-of date (a
/// correction, last month's files carried in) must not be reported fresh on the other's date.
pub fn newest_load_first(query: Select<batch::Entity>) -> Select<batch::Entity> {
    query.order_by_desc(batch::Column::Id)
}

/// The as-of date of `dataset`'s (`trade`, `financial`, `subjects`, `sdn`) newest load still
/// held (`newest_load_first`), assessed against `cadence_days` as of today (UTC).
pub async fn of(
    db: &DatabaseConnection,
    dataset: &str,
    cadence_days: Option<u32>,
) -> ApiResult<Freshness> {
    let newest = newest_load_first(
        batch::Entity::find()
            .filter(batch::Column::Dataset.eq(dataset))
            .filter(batch::Column::PurgedAt.is_null()),
    )
    .one(db)
    .await?;
    Ok(assess(
        newest.map(|b| b.as_of),
        cadence_days,
        chrono::Utc::now().date_naive(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn stale_only_past_the_cadence() {
        let today = d("2026-03-31");
        assert!(!assess(Some(d("2026-03-01")), Some(31), today).stale);
        assert!(!assess(Some(d("2026-02-28")), Some(31), today).stale);
        assert!(assess(Some(d("2026-02-27")), Some(31), today).stale);
        assert!(assess(None, Some(31), today).stale);
        assert!(!assess(Some(d("2001-01-01")), None, today).stale);
    }
}
