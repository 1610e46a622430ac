//! Records a response asks for by row id, loaded together: the SDN entries and TECS subject
//! records behind screening hits, and whatever `node(id:)` lookups name; and the FinCEN
//! reports linked to each importer of a page (`TradeRecord.linkedFinancialTransactions`).
//!
//! Every hit of a response (`screen`, `screenMany`, `partyHits` on each record of a page) may
//! ask for its `sdnEntry` or `subjectRecord`. Looked up one by one, a `screenMany` of 100 names
//! with 5 hits each was 500 lookups, and an SDN entry is three queries (entry, aliases,
//! addresses); a document of 150 aliased `node(id:)` lookups was 150 statements at once, which
//! held every pooled connection. The loader collects the ids the response asks for and reads
//! them with one query per kind. It is made per request, with the caller's permissions: the
//! rows it returns are those each kind's `by_ids` returns to this caller (its row scope),
//! never another's.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};

use super::financial::{self, FinancialTransaction, Subject};
use super::sdn::{self, SdnEntry};
use super::subjects::{self, SubjectRecord};
use super::trade::{self, TradeRecord};
use crate::policy::PermissionSet;
use crate::state::AppState;

pub struct RecordsById {
    state: AppState,
    perms: PermissionSet,
}

/// The loader for one request of a caller with `perms`.
pub fn loader(state: &AppState, perms: &PermissionSet) -> DataLoader<RecordsById> {
    DataLoader::new(
        RecordsById {
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

/// The row id of a trade record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TradeRow(pub i64);

/// The row id of a financial transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FinancialRow(pub i64);

impl Loader<TradeRow> for RecordsById {
    type Value = TradeRecord;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[TradeRow]) -> Result<HashMap<TradeRow, TradeRecord>, Self::Error> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        Ok(trade::by_ids(&self.state, &self.perms, &ids)
            .await?
            .into_iter()
            .map(|(id, record)| (TradeRow(id), record))
            .collect())
    }
}

impl Loader<FinancialRow> for RecordsById {
    type Value = FinancialTransaction;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[FinancialRow],
    ) -> Result<HashMap<FinancialRow, FinancialTransaction>, Self::Error> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        Ok(financial::by_ids(&self.state, &self.perms, &ids)
            .await?
            .into_iter()
            .map(|(id, record)| (FinancialRow(id), record))
            .collect())
    }
}

impl Loader<SdnRow> for RecordsById {
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

impl Loader<SubjectRow> for RecordsById {
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

/// The reports linked to an importer: one statement per kind of subject for a whole page's
/// records, each subject's newest first (`financial::for_subjects`).
impl Loader<Subject> for RecordsById {
    type Value = Vec<FinancialTransaction>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[Subject],
    ) -> Result<HashMap<Subject, Vec<FinancialTransaction>>, Self::Error> {
        Ok(financial::for_subjects(&self.state, &self.perms, keys).await?)
    }
}
