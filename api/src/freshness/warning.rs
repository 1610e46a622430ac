//! The stale-data warning of a GraphQL response: a response that read SDN entries or TECS
//! subject records while the newest load of that data set is older than its cadence says so in
//! `extensions.warnings` (code `STALE_DATA`, the data set, its as-of date and cadence), so an
//! analyst knows to cross-check the answer against the source (DESIGN §3).
//!
//! The resolvers that fetch those records mark the request (`mark`); a resolver the field guard
//! refused never runs, so a role that may not read a data set never learns its freshness.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_graphql::Context;
use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::graphql::DatasetKind;
use crate::state::AppState;

/// The stable code clients match on (`extensions.warnings[].code`).
pub const STALE_DATA: &str = "STALE_DATA";

/// The data sets one request read, shared between its resolvers and `delivery`.
#[derive(Clone, Default)]
pub struct DatasetsRead(Arc<Mutex<BTreeSet<DatasetKind>>>);

impl DatasetsRead {
    fn insert(&self, dataset: DatasetKind) {
        // A poisoned lock only means another resolver panicked; the set itself is intact.
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set.insert(dataset);
    }

    fn take(&self) -> BTreeSet<DatasetKind> {
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut set)
    }
}

/// Records that this request read `dataset`'s records.
pub fn mark(ctx: &Context<'_>, dataset: DatasetKind) {
    if let Some(read) = ctx.data_opt::<DatasetsRead>() {
        read.insert(dataset);
    }
}

/// One warning per data set read whose newest load is older than its cadence.
pub async fn warnings(state: &AppState, read: &DatasetsRead) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    for dataset in read.take() {
        let cadence = crate::graphql::cadence_days(&state.settings, dataset);
        let fresh = super::of(&state.db, dataset.as_str(), cadence).await?;
        if !fresh.stale {
            continue;
        }
        out.push(warning(dataset, &fresh));
    }
    Ok(out)
}

fn warning(dataset: DatasetKind, fresh: &super::Freshness) -> Value {
    let as_of = fresh.as_of.map(|d| d.format("%Y-%m-%d").to_string());
    let message = match (&as_of, fresh.cadence_days) {
        (Some(date), Some(days)) => format!(
            "{} data as of {date} is older than its {days}-day refresh cadence; cross-check \
             against the source",
            dataset.as_str()
        ),
        _ => format!("no current {} data is loaded", dataset.as_str()),
    };
    json!({
        "code": STALE_DATA,
        "dataset": dataset.as_str().to_ascii_uppercase(),
        "asOf": as_of,
        "cadenceDays": fresh.cadence_days,
        "message": message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_names_the_data_set_and_its_date() {
        let fresh = super::super::assess(
            "2021-07-01".parse().ok(),
            Some(31),
            "2026-01-01".parse().unwrap(),
        );
        let w = warning(DatasetKind::Sdn, &fresh);
        assert_eq!(w["code"], "STALE_DATA");
        assert_eq!(w["dataset"], "SDN");
        assert_eq!(w["asOf"], "2021-07-01");
        assert_eq!(w["cadenceDays"], 31);
        assert!(w["message"].as_str().unwrap().contains("31-day"));
    }

    #[test]
    fn marks_are_taken_once() {
        let read = DatasetsRead::default();
        read.insert(DatasetKind::Sdn);
        read.insert(DatasetKind::Sdn);
        read.insert(DatasetKind::Subjects);
        assert_eq!(read.take().len(), 2);
        assert!(read.take().is_empty());
    }
}
