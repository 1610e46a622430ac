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

/// A key type for the row ids of one kind of record, and its loader: the ids the response
/// asks for, read by that kind's `by_ids` (its row scope) in one statement.
macro_rules! by_row_id {
    ($(#[$doc:meta])* $key:ident => $record:ty, $by_ids:path) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $key(pub i64);

        impl Loader<$key> for RecordsById {
            type Value = $record;
            type Error = async_graphql::Error;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, $record>, Self::Error> {
                let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
                Ok($by_ids(&self.state, &self.perms, &ids)
                    .await?
                    .into_iter()
                    .map(|(id, record)| ($key(id), record))
                    .collect())
            }
        }
    };
}

by_row_id!(
    /// The row id of an SDN entry.
    SdnRow => SdnEntry, sdn::by_ids
);
by_row_id!(
    /// The row id of a TECS subject record.
    SubjectRow => SubjectRecord, subjects::by_ids
);
by_row_id!(
    /// The row id of a trade record.
    TradeRow => TradeRecord, trade::by_ids
);
by_row_id!(
    /// The row id of a financial transaction.
    FinancialRow => FinancialTransaction, financial::by_ids
);

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
