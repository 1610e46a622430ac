//! The SDN entries and TECS subject records behind screening hits, loaded together.
//!
//! Every hit of a response (`screen`, `screenMany`, `partyHits` on each record of a page) may
//! ask for its `sdnEntry` or `subjectRecord`. Looked up one by one, a `screenMany` of 100 names
//! with 5 hits each was 500 lookups, and an SDN entry is three queries (entry, aliases,
//! addresses). The loader collects the ids the response asks for and reads them with one query
//! per kind. It is made per request, with the caller's permissions: the rows it returns are
//! those `sdn::by_id` and `subjects::by_id` would return to this caller, never another's.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};

use super::sdn::{self, SdnEntry};
use super::subjects::{self, SubjectRecord};
use crate::policy::PermissionSet;
use crate::state::AppState;

pub struct HitRecords {
    state: AppState,
    perms: PermissionSet,
}

/// The loader for one request of a caller with `perms`.
pub fn loader(state: &AppState, perms: &PermissionSet) -> DataLoader<HitRecords> {
    DataLoader::new(
        HitRecords {
            state: state.clone(),
            perms: perms.clone(),
        },
        crate::time_limit::spawn,
    )
}

/// The row id of an SDN entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SdnRow(pub i64);

/// The row id of a TECS subject record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubjectRow(pub i64);

impl Loader<SdnRow> for HitRecords {
    type Value = SdnEntry;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[SdnRow]) -> Result<HashMap<SdnRow, SdnEntry>, Self::Error> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        Ok(sdn::by_ids(&self.state, &self.perms, &ids)
            .await?
            .into_iter()
            .map(|(id, entry)| (SdnRow(id), entry))
            .collect())
    }
}

impl Loader<SubjectRow> for HitRecords {
    type Value = SubjectRecord;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[SubjectRow],
    ) -> Result<HashMap<SubjectRow, SubjectRecord>, Self::Error> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        Ok(subjects::by_ids(&self.state, &self.perms, &ids)
            .await?
            .into_iter()
            .map(|(id, record)| (SubjectRow(id), record))
            .collect())
    }
}
