//! When a totals request can be answered from the importer-year rollup (`trade_importer_years`,
//! migration 000014) instead of `trade_records`, and what the rollup's sums are called.
//!
//! The rollup keeps some of `trade_records`' columns under their own names, with the year in
//! `declaration_date` as its first day. A request is answered from it only when every column
//! its `WHERE` and `GROUP BY` read is kept there and its dates cover whole years; the same
//! condition (filter and row scope) then applies to the rollup unchanged and gives the same
//! groups and sums. Anything else reads the records.

use chrono::{Datelike, NaiveDate};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};

use super::totals::{Dimension, Grouping};

pub use migration::{IMPORTER_YEARS as TABLE, fill_importer_years as fill};

/// Where a totals statement reads its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Records,
    ImporterYears,
}

/// The dimensions whose values the rollup keeps.
const DIMENSIONS: &[Dimension] = &[
    Dimension::ProviderCountry,
    Dimension::ReportingCountry,
    Dimension::Direction,
    Dimension::ImporterId,
    Dimension::ImporterName,
    Dimension::Year,
];

/// `TradeRecord` fields a filter may read and still be answered from the rollup: those whose
/// columns it keeps (`declarationDate` only for whole years, checked apart). The filter's own
/// `fields_read` says what it reads, so a filter field added later reads the records until it
/// is listed here.
const FILTER_FIELDS: &[&str] = &[
    "declarationDate",
    "direction",
    "reportingCountry",
    "providerCountry",
    "importerName",
    "importerId",
    "batch",
];

/// What a totals request reads, as far as the choice of source goes.
#[derive(Debug)]
pub struct Request<'a> {
    pub grouping: &'a Grouping,
    /// The filter's `fields_read`.
    pub filter_fields: &'a [&'a str],
    pub date_from: Option<NaiveDate>,
    pub date_to: Option<NaiveDate>,
    /// The caller's row scope adds no condition (it may read every row). Nation scopes and
    /// sharing agreements read partner countries, HS codes and dates the rollup does not keep.
    pub unscoped: bool,
}

/// The source that answers `request`: the rollup when it can, else the records.
pub fn source(request: &Request<'_>) -> Source {
    let whole_years = request.date_from.is_none_or(|d| d.ordinal() == 1)
        && request
            .date_to
            .is_none_or(|d| d.month() == 12 && d.day() == 31);
    let kept = request.unscoped
        && whole_years
        && request
            .grouping
            .dimensions()
            .iter()
            .all(|d| DIMENSIONS.contains(d))
        && request
            .filter_fields
            .iter()
            .all(|f| FILTER_FIELDS.contains(f));
    if kept {
        Source::ImporterYears
    } else {
        Source::Records
    }
}

/// Recomputes the whole rollup from the records, in one transaction (for rows that reached
/// `trade_records` other than by `dartts load`, e.g. a bulk `COPY` by an operator). Returns
/// the number of rollup rows.
pub async fn rebuild(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!("DELETE FROM {TABLE}"))
        .await?;
    let rows = txn
        .execute_unprepared(&fill(db.get_database_backend(), false))
        .await?
        .rows_affected();
    txn.commit().await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::totals::{Measure, SortKey};
    use sea_orm::sea_query::Order;

    fn grouping(dimensions: &[Dimension]) -> Grouping {
        Grouping::new(
            dimensions.to_vec(),
            vec![(SortKey::Measure(Measure::ValueUsd), Order::Desc)],
        )
        .expect("grouping")
    }

    fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    fn request<'a>(g: &'a Grouping, fields: &'a [&'a str]) -> Request<'a> {
        Request {
            grouping: g,
            filter_fields: fields,
            date_from: date(2023, 1, 1),
            date_to: date(2023, 12, 31),
            unscoped: true,
        }
    }

    #[test]
    fn importer_totals_over_whole_years_read_the_rollup() {
        let g = grouping(&[Dimension::ImporterId, Dimension::Year]);
        let fields = ["declarationDate", "direction", "importerName"];
        assert_eq!(source(&request(&g, &fields)), Source::ImporterYears);
        let all = Request {
            date_from: None,
            date_to: None,
            ..request(&g, &[])
        };
        assert_eq!(source(&all), Source::ImporterYears);
        // Several whole years.
        let years = Request {
            date_to: date(2024, 12, 31),
            ..request(&g, &fields)
        };
        assert_eq!(source(&years), Source::ImporterYears);
        let grand = grouping(&[]);
        assert_eq!(source(&request(&grand, &[])), Source::ImporterYears);
    }

    #[test]
    fn anything_the_rollup_does_not_keep_reads_the_records() {
        let g = grouping(&[Dimension::ImporterId]);
        for (from, to) in [
            (date(2023, 2, 1), date(2023, 12, 31)),
            (date(2023, 1, 1), date(2023, 12, 30)),
            (date(2023, 1, 2), None),
            (None, date(2023, 6, 30)),
        ] {
            let r = Request {
                date_from: from,
                date_to: to,
                ..request(&g, &["declarationDate"])
            };
            assert_eq!(source(&r), Source::Records, "{from:?}..{to:?}");
        }
        for field in [
            "hsCode",
            "partnerCountry",
            "declaredValueUsd",
            "linkedFinancialTransactions",
        ] {
            assert_eq!(source(&request(&g, &[field])), Source::Records, "{field}");
        }
        for d in [
            Dimension::Month,
            Dimension::Hs6,
            Dimension::PartnerCountry,
            Dimension::QuantityUnit,
        ] {
            let g = grouping(&[Dimension::ImporterId, d]);
            assert_eq!(source(&request(&g, &[])), Source::Records, "{d:?}");
        }
        let scoped = Request {
            unscoped: false,
            ..request(&g, &[])
        };
        assert_eq!(source(&scoped), Source::Records);
    }
}
