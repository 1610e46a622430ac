//! When a totals request can be answered from a rollup instead of `trade_records`, and what
//! the rollups' sums are called.
//!
//! Two rollups are kept (migrations 000014 and 000017), each per batch so that a load fills
//! its own rows and a purge removes them: by importer and year (`trade_importer_years`), and
//! by partner, HS subheading and year (`trade_hs6_years`, what mirror trade compares). Each
//! keeps some of `trade_records`' columns under their own names, with the year in
//! `declaration_date` as its first day (and, in the second, the 6-digit subheading in
//! `hs_code`). A request is answered from a rollup only when every column its `WHERE` and
//! `GROUP BY` read is kept there, its dates cover whole years and its HS prefix is no longer
//! than the digits kept; the same condition (filter and row scope) then applies to the rollup
//! unchanged and gives the same groups and sums. Anything else reads the records.

use chrono::{Datelike, NaiveDate};
use sea_orm::sea_query::{Alias, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, TransactionTrait};

use super::totals::{Dimension, Grouping};

/// One rollup table: what it keeps, and the statement that fills it.
#[derive(Debug)]
pub struct Rollup {
    pub table: &'static str,
    /// The dimensions whose values it keeps.
    dimensions: &'static [Dimension],
    /// `TradeRecord` fields a filter may read and still be answered from it, beyond
    /// `FILTER_FIELDS_KEPT_BY_ALL`: those whose columns it keeps (`hsCode` only up to
    /// `hs_digits`, checked apart). The filter's own `fields_read` says what it reads, so a
    /// filter field added later reads the records until it is listed here.
    filter_fields: &'static [&'static str],
    /// How many leading digits of the HS code it keeps, if any.
    hs_digits: Option<usize>,
    /// `migration`'s statement: for the batch bound as `$1` when its flag is set, else all.
    fill: fn(DbBackend, bool) -> String,
}

/// A rollup is its table.
impl PartialEq for Rollup {
    fn eq(&self, other: &Self) -> bool {
        self.table == other.table
    }
}

impl Eq for Rollup {}

impl Rollup {
    /// The statement that sums the batch bound as `$1` (or, with `one_batch` false, every
    /// record) into this rollup.
    pub fn fill(&self, backend: DbBackend, one_batch: bool) -> String {
        (self.fill)(backend, one_batch)
    }

    fn answers(&self, request: &Request<'_>) -> bool {
        let hs_kept = request
            .hs_prefix
            .is_none_or(|p| self.hs_digits.is_some_and(|kept| p.len() <= kept));
        hs_kept
            && request
                .grouping
                .dimensions()
                .iter()
                .all(|d| self.dimensions.contains(d))
            && request
                .filter_fields
                .iter()
                .chain(request.scope_fields.unwrap_or_default())
                .all(|f| FILTER_FIELDS_KEPT_BY_ALL.contains(f) || self.filter_fields.contains(f))
    }
}

/// The filter fields every rollup keeps the columns of (`declarationDate` only for whole
/// years, checked apart).
const FILTER_FIELDS_KEPT_BY_ALL: &[&str] = &[
    "declarationDate",
    "direction",
    "reportingCountry",
    "providerCountry",
    "batch",
];

/// Per batch, provider, reporting country, direction, year and importer (id and name).
pub static IMPORTER_YEARS: Rollup = Rollup {
    table: migration::IMPORTER_YEARS,
    dimensions: &[
        Dimension::ProviderCountry,
        Dimension::ReportingCountry,
        Dimension::Direction,
        Dimension::ImporterId,
        Dimension::ImporterName,
        Dimension::Year,
    ],
    filter_fields: &["importerName", "importerId"],
    hs_digits: None,
    fill: migration::fill_importer_years,
};

/// Per batch, provider, reporting and partner country, direction, HS subheading and year.
pub static HS6_YEARS: Rollup = Rollup {
    table: migration::HS6_YEARS,
    dimensions: &[
        Dimension::ProviderCountry,
        Dimension::ReportingCountry,
        Dimension::PartnerCountry,
        Dimension::Direction,
        Dimension::Hs2,
        Dimension::Hs4,
        Dimension::Hs6,
        Dimension::Year,
    ],
    filter_fields: &["partnerCountry", "hsCode"],
    hs_digits: Some(6),
    fill: migration::fill_hs6_years,
};

/// Every rollup, smallest first: a request both answer reads the smaller.
pub static ROLLUPS: [&Rollup; 2] = [&IMPORTER_YEARS, &HS6_YEARS];

/// Where a totals statement reads its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Records,
    Rollup(&'static Rollup),
}

/// What a totals request reads, as far as the choice of source goes.
#[derive(Debug)]
pub struct Request<'a> {
    pub grouping: &'a Grouping,
    /// The filter's `fields_read`.
    pub filter_fields: &'a [&'a str],
    pub date_from: Option<NaiveDate>,
    pub date_to: Option<NaiveDate>,
    /// The filter's HS code prefix, if it has one.
    pub hs_prefix: Option<&'a str>,
    /// The `TradeRecord` fields the caller's row scope reads (none when it reads every row),
    /// or `None` when it reads more than fields (sharing agreements bound dates and HS codes
    /// at any grain): then only the records answer.
    pub scope_fields: Option<&'a [&'a str]>,
}

/// The source that answers `request`: the smallest rollup that can, else the records.
pub fn source(request: &Request<'_>) -> Source {
    let whole_years = request.date_from.is_none_or(|d| d.ordinal() == 1)
        && request
            .date_to
            .is_none_or(|d| d.month() == 12 && d.day() == 31);
    if request.scope_fields.is_none() || !whole_years {
        return Source::Records;
    }
    ROLLUPS
        .iter()
        .find(|r| r.answers(request))
        .map_or(Source::Records, |r| Source::Rollup(r))
}

/// Importers as the records name them: by id, or (without one) by name. The records of these
/// importers are those with one of `ids`, or without an id and with one of `names_without_id`
/// (`red_flags::importers_by`). Both lists sorted and without repeats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Importers {
    pub ids: Vec<String>,
    pub names_without_id: Vec<String>,
}

impl Importers {
    /// Sorted and without repeats, from lists in any order.
    pub fn new(mut ids: Vec<String>, mut names_without_id: Vec<String>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        names_without_id.sort_unstable();
        names_without_id.dedup();
        Importers {
            ids,
            names_without_id,
        }
    }

    /// The importers in both: a record is among the records of both sets exactly when its
    /// id is in both id lists or, without an id, its name is in both name lists.
    pub fn and(mut self, other: &Importers) -> Importers {
        self.ids.retain(|id| other.ids.binary_search(id).is_ok());
        self.names_without_id
            .retain(|name| other.names_without_id.binary_search(name).is_ok());
        self
    }
}

/// The distinct (importer id, name) pairs of the importer rollup whose name matches `name`
/// (written on `trade_records`' columns, which the rollup keeps under the same names), or
/// `None` when there are more than `at_most`. Every record's pair is in the rollup (a load
/// fills its batch's rows in its own transaction, a purge removes whole batches), so the
/// records matching `name` are among those with these ids or, without an id, these names:
/// a lookup by index (`red_flags::importers_by`) where the condition alone reads every record. Read without the caller's
/// scope: the pairs only narrow a statement that still applies the condition and the scope.
pub async fn importers_named(
    db: &DatabaseConnection,
    name: SimpleExpr,
    at_most: usize,
) -> Result<Option<Importers>, DbErr> {
    use entities::trade_record::{self, Column};
    let query = Query::select()
        .distinct()
        .columns([Column::ImporterId, Column::ImporterName])
        .from_as(Alias::new(IMPORTER_YEARS.table), trade_record::Entity)
        .and_where(name)
        .limit(u64::try_from(at_most).unwrap_or(u64::MAX).saturating_add(1))
        .to_owned();
    let rows = db.query_all(&query).await?;
    if rows.len() > at_most {
        return Ok(None);
    }
    let (mut ids, mut names) = (Vec::new(), Vec::new());
    for row in rows {
        let id: Option<String> = row.try_get("", "importer_id")?;
        let name: Option<String> = row.try_get("", "importer_name")?;
        match (id, name) {
            (Some(id), _) => ids.push(id),
            (None, Some(name)) => names.push(name),
            (None, None) => {}
        }
    }
    // One id may carry several names.
    Ok(Some(Importers::new(ids, names)))
}

/// PostgreSQL's `work_mem` while a fill runs: 1M records sum to ~430,000 HS6-year groups, and
/// with the default 4 MB the hash aggregate spilled to disk in 41 batches (a fifth more time).
const FILL_WORK_MEM: &str = "256MB";

/// The statement that sets `FILL_WORK_MEM` for the rest of a transaction (PostgreSQL only): the
/// load's and `rebuild`'s.
pub fn set_fill_work_mem() -> String {
    format!("SET LOCAL work_mem = '{FILL_WORK_MEM}'")
}

/// Recomputes every rollup from the records, in one transaction (for rows that reached
/// `trade_records` other than by `dartts load`, e.g. a bulk `COPY` by an operator). Returns
/// the number of rollup rows.
pub async fn rebuild(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&set_fill_work_mem()).await?;
    }
    let mut rows = 0;
    for rollup in ROLLUPS {
        txn.execute_unprepared(&format!("DELETE FROM {}", rollup.table))
            .await?;
        rows += txn
            .execute_unprepared(&rollup.fill(db.get_database_backend(), false))
            .await?
            .rows_affected();
    }
    txn.commit().await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::totals::{Measure, SortKey};
    use proptest::prelude::*;
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
            hs_prefix: None,
            scope_fields: Some(&[]),
        }
    }

    const IMPORTERS: Source = Source::Rollup(&IMPORTER_YEARS);
    const HS6: Source = Source::Rollup(&HS6_YEARS);

    #[test]
    fn importer_totals_over_whole_years_read_the_importer_rollup() {
        let g = grouping(&[Dimension::ImporterId, Dimension::Year]);
        let fields = ["declarationDate", "direction", "importerName"];
        assert_eq!(source(&request(&g, &fields)), IMPORTERS);
        let all = Request {
            date_from: None,
            date_to: None,
            ..request(&g, &[])
        };
        assert_eq!(source(&all), IMPORTERS);
        // Several whole years.
        let years = Request {
            date_to: date(2024, 12, 31),
            ..request(&g, &fields)
        };
        assert_eq!(source(&years), IMPORTERS);
        // Both rollups answer a grand total or one by reporter: the smaller does.
        let grand = grouping(&[]);
        assert_eq!(source(&request(&grand, &[])), IMPORTERS);
        let reporters = grouping(&[Dimension::ReportingCountry, Dimension::Year]);
        assert_eq!(source(&request(&reporters, &["direction"])), IMPORTERS);
    }

    #[test]
    fn partner_and_subheading_totals_over_whole_years_read_the_hs6_rollup() {
        let mirror = grouping(&[
            Dimension::Direction,
            Dimension::ReportingCountry,
            Dimension::PartnerCountry,
            Dimension::Hs6,
            Dimension::Year,
        ]);
        let fields = [
            "reportingCountry",
            "partnerCountry",
            "hsCode",
            "declarationDate",
        ];
        for prefix in [None, Some("84"), Some("8471"), Some("847130")] {
            let r = Request {
                hs_prefix: prefix,
                ..request(&mirror, &fields)
            };
            assert_eq!(source(&r), HS6, "{prefix:?}");
        }
        for d in [Dimension::Hs2, Dimension::Hs4, Dimension::PartnerCountry] {
            assert_eq!(source(&request(&grouping(&[d]), &[])), HS6, "{d:?}");
        }
        // A nation scope reads the provider and partner, which this rollup keeps.
        let nation = Request {
            scope_fields: Some(&["providerCountry", "partnerCountry"]),
            ..request(&mirror, &fields)
        };
        assert_eq!(source(&nation), HS6);
    }

    #[test]
    fn anything_the_rollups_do_not_keep_reads_the_records() {
        let g = grouping(&[Dimension::ImporterId]);
        for (from, to) in [
            (date(2023, 2, 1), date(2023, 12, 31)),
            (date(2023, 1, 1), date(2023, 12, 30)),
            (date(2023, 1, 2), None),
            (None, date(2023, 6, 30)),
        ] {
            for g in [&g, &grouping(&[Dimension::Hs6])] {
                let r = Request {
                    date_from: from,
                    date_to: to,
                    ..request(g, &["declarationDate"])
                };
                assert_eq!(source(&r), Source::Records, "{from:?}..{to:?}");
            }
        }
        // Importers with a partner or an HS code: no rollup keeps both.
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
        // Finer than the subheading the HS6 rollup keeps.
        let hs10 = grouping(&[Dimension::Hs10]);
        assert_eq!(source(&request(&hs10, &[])), Source::Records);
        let hs6 = grouping(&[Dimension::Hs6]);
        for prefix in ["8471300", "8471300000"] {
            let r = Request {
                hs_prefix: Some(prefix),
                ..request(&hs6, &["hsCode"])
            };
            assert_eq!(source(&r), Source::Records, "{prefix}");
        }
        for d in [
            Dimension::CountryOfOrigin,
            Dimension::Port,
            Dimension::Month,
        ] {
            let g = grouping(&[Dimension::Hs6, d]);
            assert_eq!(source(&request(&g, &[])), Source::Records, "{d:?}");
        }
        // A scope that reads more than fields (sharing agreements), or what no rollup keeps.
        for g in [&g, &hs6] {
            let scoped = Request {
                scope_fields: None,
                ..request(g, &[])
            };
            assert_eq!(source(&scoped), Source::Records);
        }
        let nation = Request {
            scope_fields: Some(&["providerCountry", "partnerCountry"]),
            ..request(&g, &[])
        };
        assert_eq!(source(&nation), Source::Records, "importers by partner");
    }

    /// A record (its id, its name) is among the records of `importers`: by its id when it has
    /// one, else by its name (`red_flags::importers_by`, in Rust).
    fn holds(importers: &Importers, id: &Option<String>, name: &str) -> bool {
        match id {
            Some(id) => importers.ids.contains(id),
            None => importers.names_without_id.iter().any(|n| n == name),
        }
    }

    proptest! {
        /// `and` keeps exactly the records both sets hold, whatever the order and repeats of
        /// the lists it was built from.
        #[test]
        fn and_holds_the_records_both_hold(
            a_ids in prop::collection::vec("[a-d]", 0..6),
            a_names in prop::collection::vec("[a-d]", 0..6),
            b_ids in prop::collection::vec("[a-d]", 0..6),
            b_names in prop::collection::vec("[a-d]", 0..6),
            id in prop::option::of("[a-e]"),
            name in "[a-e]",
        ) {
            let a = Importers::new(a_ids, a_names);
            let b = Importers::new(b_ids, b_names);
            let both = a.clone().and(&b);
            prop_assert_eq!(
                holds(&both, &id, &name),
                holds(&a, &id, &name) && holds(&b, &id, &name)
            );
            prop_assert_eq!(both, b.and(&a));
        }
    }
}
