//! `tradeFinanceMismatches`: FinCEN-reported money against declared trade, per entity, and
//! structuring (`analysis::trade_finance`). FINANCIAL data: CBP roles never resolve it.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use entities::{financial_transaction, trade_record};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QueryResult,
};

use super::filters::{RecordFilter, check_text, contains, read_if_set};
use super::guard::{principal, require_readable};
use super::keyset::{KeyKind, KeyValue, Keyset, KeysetConnection, SortKey};
use super::pagination::CONNECTION_COST;
use super::scalars::Date;
use super::scope;
use crate::analysis::totals::exact_sum;
use crate::analysis::trade_finance::{
    self, CashTransaction, Declared, Episode, Mismatch, Reason, ReportedSums, Thresholds,
};
use crate::error::{ApiError, ApiResult};
use crate::policy::PermissionSet;
use crate::state::AppState;

/// The window and the subjects compared. Dates bound both the reports and the declarations.
#[derive(InputObject, Default)]
pub struct TradeFinanceFilter {
    pub date_from: Option<Date>,
    pub date_to: Option<Date>,
    /// Substring (any letter in either case) of the report subject's name.
    pub subject_name_contains: Option<String>,
    pub subject_tin: Option<String>,
}

impl RecordFilter for TradeFinanceFilter {
    const RECORD: &'static str = "FinancialTransaction";

    fn fields_read(&self) -> Vec<&'static str> {
        read_if_set(&[
            (
                self.date_from.is_some() || self.date_to.is_some(),
                "transactionDate",
            ),
            (self.subject_name_contains.is_some(), "subjectName"),
            (self.subject_tin.is_some(), "subjectTin"),
        ])
    }

    fn condition(&self) -> ApiResult<Condition> {
        use financial_transaction::Column;
        let mut c = Condition::all();
        if let Some(d) = self.date_from {
            c = c.add(Column::TransactionDate.gte(d.0));
        }
        if let Some(d) = self.date_to {
            c = c.add(Column::TransactionDate.lte(d.0));
        }
        if let Some(name) = &self.subject_name_contains {
            check_text("subjectNameContains", name)?;
            c = c.add(contains(Column::SubjectName, name));
        }
        if let Some(tin) = &self.subject_tin {
            check_text("subjectTin", tin)?;
            c = c.add(Column::SubjectTin.eq(tin.as_str()));
        }
        Ok(c)
    }
}

/// Thresholds of one query; the defaults are documented in `analysis::trade_finance`.
#[derive(InputObject)]
pub struct TradeFinanceThresholds {
    /// Reported money / declared import value above which an entity is listed.
    #[graphql(default = 1.5)]
    pub min_ratio: f64,
    /// Reported money below this is not listed on the ratio alone.
    #[graphql(default = 10000.0)]
    pub min_reported_usd: f64,
    /// The Currency Transaction Report threshold.
    #[graphql(default = 10000.0)]
    pub ctr_threshold_usd: f64,
    /// Cash within this much under the threshold is "just under" it.
    #[graphql(default = 1000.0)]
    pub margin_usd: f64,
    /// Near-threshold cash transactions that make a structuring episode.
    #[graphql(default = 3)]
    pub structuring_min_count: i32,
    /// Most days from one near-threshold transaction to the next within an episode.
    #[graphql(default = 7)]
    pub structuring_window_days: i32,
}

impl TryFrom<Option<TradeFinanceThresholds>> for Thresholds {
    type Error = ApiError;

    fn try_from(input: Option<TradeFinanceThresholds>) -> Result<Self, ApiError> {
        let Some(t) = input else {
            return Ok(Thresholds::default());
        };
        let thresholds = Thresholds {
            min_ratio: t.min_ratio,
            min_reported_usd: t.min_reported_usd,
            ctr_threshold_usd: t.ctr_threshold_usd,
            margin_usd: t.margin_usd,
            min_count: usize::try_from(t.structuring_min_count).unwrap_or(0),
            window_days: i64::from(t.structuring_window_days),
        };
        thresholds.check().map_err(ApiError::bad_input)?;
        Ok(thresholds)
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MismatchReason {
    /// Reported money above `minRatio` × declared import value (or nothing declared).
    ReportedExceedsDeclared,
    /// Repeated cash just under the CTR threshold.
    Structuring,
}

/// Near-threshold cash transactions within days of each other.
#[derive(SimpleObject)]
pub struct StructuringEpisode {
    pub first_date: Date,
    pub last_date: Date,
    pub count: i32,
    pub total_usd: f64,
    pub report_ids: Vec<String>,
}

/// An entity whose reported money does not fit its declared trade, with the figures.
#[derive(SimpleObject)]
pub struct TradeFinanceMismatch {
    pub subject_tin: Option<String>,
    /// The subject names its reports carry.
    pub subject_names: Vec<String>,
    /// Sum of the amounts of its reports in the window.
    pub reported_usd: f64,
    pub cash_in_usd: f64,
    pub cash_out_usd: f64,
    pub report_count: i64,
    /// Value of the import declarations matched to it in the window.
    pub declared_import_value_usd: f64,
    pub declared_record_count: i64,
    /// `reportedUsd / declaredImportValueUsd`; null when nothing was declared.
    pub ratio: Option<f64>,
    pub reasons: Vec<MismatchReason>,
    pub structuring: Vec<StructuringEpisode>,
    /// The thresholds the reasons were decided with.
    pub min_ratio: f64,
    pub ctr_threshold_usd: f64,
    pub margin_usd: f64,
}

impl TradeFinanceMismatch {
    fn new(m: Mismatch, t: &Thresholds) -> Self {
        TradeFinanceMismatch {
            subject_tin: m.tin,
            subject_names: m.names,
            reported_usd: m.reported_usd,
            cash_in_usd: m.cash_in_usd,
            cash_out_usd: m.cash_out_usd,
            report_count: m.report_count,
            declared_import_value_usd: m.declared_usd,
            declared_record_count: m.declared_records,
            ratio: m.ratio,
            reasons: m
                .reasons
                .into_iter()
                .map(|r| match r {
                    Reason::ReportedExceedsDeclared => MismatchReason::ReportedExceedsDeclared,
                    Reason::Structuring => MismatchReason::Structuring,
                })
                .collect(),
            structuring: m
                .episodes
                .into_iter()
                .map(StructuringEpisode::from)
                .collect(),
            min_ratio: t.min_ratio,
            ctr_threshold_usd: t.ctr_threshold_usd,
            margin_usd: t.margin_usd,
        }
    }
}

impl From<Episode> for StructuringEpisode {
    fn from(e: Episode) -> Self {
        StructuringEpisode {
            first_date: Date(e.first_date),
            last_date: Date(e.last_date),
            count: i32::try_from(e.count).unwrap_or(i32::MAX),
            total_usd: e.total_usd,
            report_ids: e.report_ids,
        }
    }
}

/// Subjects per `IN (…)` list: well under SQLite's and PostgreSQL's bind-parameter limits.
const IN_CHUNK: usize = 5_000;

#[derive(Default)]
pub struct TradeFinanceQuery;

#[Object]
impl TradeFinanceQuery {
    /// Entities whose FinCEN-reported money exceeds their declared imports, or whose cash
    /// shows structuring, in the window; the largest excess of money over goods first, ties
    /// by TIN (entities known only by name after those with one), then name.
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    async fn trade_finance_mismatches(
        &self,
        ctx: &Context<'_>,
        filter: Option<TradeFinanceFilter>,
        thresholds: Option<TradeFinanceThresholds>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<KeysetConnection<TradeFinanceMismatch>>> {
        let state = ctx.data::<AppState>()?;
        let page = Keyset::new("tradeFinanceMismatches", mismatch_keys()).page(
            &state.cursors,
            first,
            after.as_deref(),
        )?;
        let thresholds = Thresholds::try_from(thresholds)?;
        let filter = filter.unwrap_or_default();
        require_readable(ctx, TradeFinanceFilter::RECORD, &filter.fields_read())?;
        require_readable(ctx, "TradeFinanceMismatch", MISMATCH_KEY_FIELDS)?;
        let perms = &principal(ctx)?.permissions;
        let reports = filter.condition()?.add(scope::all_or_nothing(
            perms,
            financial_transaction::Column::Id,
        ));
        let reported = reported_sums(state, reports.clone()).await?;
        let cash = near_threshold_cash(state, reports, &thresholds).await?;
        let declared = declared(state, perms, &filter, &reported).await?;
        let found = trade_finance::mismatches(reported, cash, &declared, &thresholds);
        let total = found.len() as u64;
        let edges = page
            .window(found, mismatch_position)
            .into_iter()
            .map(|(cursor, m)| (cursor, TradeFinanceMismatch::new(m, &thresholds)))
            .collect();
        Ok(Some(page.connection(edges, Some(total))))
    }
}

/// The served order (`mismatches` leaves it to these keys): the largest excess of money over
/// goods first, then the entity, which is unique — its TIN (NULL sorts last), else its name:
/// an entity is keyed by its name only when it has no TIN, and then has that one name, so the
/// first name stands for `names` without ambiguity.
/// The `TradeFinanceMismatch` fields `mismatch_keys` order by. A cursor carries their values
/// and the order ranks them, so, like a table's sort keys, they must be readable.
const MISMATCH_KEY_FIELDS: &[&str] = &[
    "reportedUsd",
    "declaredImportValueUsd",
    "subjectTin",
    "subjectNames",
];

fn mismatch_keys() -> Vec<SortKey> {
    vec![
        SortKey::computed("excess", KeyKind::Float).desc(true),
        SortKey::computed("tin", KeyKind::Text).nullable(true),
        SortKey::computed("name", KeyKind::Text).nullable(true),
    ]
}

fn mismatch_position(m: &Mismatch) -> Vec<KeyValue> {
    vec![
        (m.reported_usd - m.declared_usd).into(),
        m.tin.clone().into(),
        m.names.first().cloned().into(),
    ]
}

async fn reported_sums(state: &AppState, reports: Condition) -> ApiResult<Vec<ReportedSums>> {
    use financial_transaction::Column;
    // `0.0`, not `0`: SQLite types a sum of integer zeros as INTEGER, which is no `f64`.
    let backend = state.db.get_database_backend();
    let cash = |direction: &str| {
        Expr::cust(exact_sum(
            backend,
            &format!(
                "CASE WHEN \"cash_direction\" = '{direction}' THEN \"amount_usd\" ELSE 0.0 END"
            ),
        ))
    };
    let q = Query::select()
        .column(Column::SubjectTin)
        .column(Column::SubjectName)
        .expr_as(
            Expr::cust(exact_sum(backend, "\"amount_usd\"")),
            Alias::new("total_usd"),
        )
        .expr_as(cash("IN"), Alias::new("cash_in_usd"))
        .expr_as(cash("OUT"), Alias::new("cash_out_usd"))
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("report_count"))
        .from(financial_transaction::Entity)
        .cond_where(reports)
        .group_by_columns([Column::SubjectTin, Column::SubjectName])
        .to_owned();
    let rows = state.db.query_all(&q).await?;
    let decode = |row: &QueryResult| -> Result<ReportedSums, sea_orm::DbErr> {
        Ok(ReportedSums {
            tin: row.try_get_by("subject_tin")?,
            name: row.try_get_by("subject_name")?,
            total_usd: row.try_get_by("total_usd")?,
            cash_in_usd: row.try_get_by("cash_in_usd")?,
            cash_out_usd: row.try_get_by("cash_out_usd")?,
            report_count: row.try_get_by("report_count")?,
        })
    };
    Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
}

async fn near_threshold_cash(
    state: &AppState,
    reports: Condition,
    thresholds: &Thresholds,
) -> ApiResult<Vec<CashTransaction>> {
    use financial_transaction::Column;
    let rows = financial_transaction::Entity::find()
        .filter(reports)
        .filter(Column::CashDirection.is_not_null())
        .filter(Column::AmountUsd.gte(thresholds.band_floor()))
        .filter(Column::AmountUsd.lt(thresholds.ctr_threshold_usd))
        .order_by_asc(Column::TransactionDate)
        .order_by_asc(Column::Id)
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| CashTransaction {
            tin: r.subject_tin,
            name: r.subject_name,
            date: r.transaction_date,
            amount_usd: r.amount_usd,
            report_id: r.report_id,
        })
        .collect())
}

/// Declared import value of the trade records matched to the reported subjects, within the
/// caller's trade rows and the filter's dates: by importer id for TINs, by importer name for
/// records without an id (`financial::subject_matches_importer`).
async fn declared(
    state: &AppState,
    perms: &PermissionSet,
    filter: &TradeFinanceFilter,
    reported: &[ReportedSums],
) -> ApiResult<Declared> {
    use trade_record::Column;
    let mut base = Condition::all()
        .add(Column::Direction.eq("IMPORT"))
        .add(scope::trade(perms));
    if let Some(d) = filter.date_from {
        base = base.add(Column::DeclarationDate.gte(d.0));
    }
    if let Some(d) = filter.date_to {
        base = base.add(Column::DeclarationDate.lte(d.0));
    }
    let mut tins: Vec<&str> = reported.iter().filter_map(|r| r.tin.as_deref()).collect();
    let mut names: Vec<&str> = reported.iter().map(|r| r.name.as_str()).collect();
    tins.sort_unstable();
    tins.dedup();
    names.sort_unstable();
    names.dedup();
    let mut out = Declared::default();
    for chunk in tins.chunks(IN_CHUNK) {
        let cond = base
            .clone()
            .add(Column::ImporterId.is_in(chunk.iter().copied()));
        for (key, sums) in sums_by(state, Column::ImporterId, cond).await? {
            out.by_id.insert(key, sums);
        }
    }
    for chunk in names.chunks(IN_CHUNK) {
        let cond = base
            .clone()
            .add(Column::ImporterId.is_null())
            .add(Column::ImporterName.is_in(chunk.iter().copied()));
        for (key, sums) in sums_by(state, Column::ImporterName, cond).await? {
            out.by_name.insert(key, sums);
        }
    }
    Ok(out)
}

async fn sums_by(
    state: &AppState,
    column: trade_record::Column,
    cond: Condition,
) -> ApiResult<Vec<(String, (f64, i64))>> {
    let q = Query::select()
        .expr_as(Expr::col(column), Alias::new("k"))
        .expr_as(
            Expr::cust(exact_sum(
                state.db.get_database_backend(),
                "\"declared_value_usd\"",
            )),
            Alias::new("v"),
        )
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
        .from(trade_record::Entity)
        .cond_where(cond)
        .add_group_by([Expr::col(column)])
        .to_owned();
    let rows = state.db.query_all(&q).await?;
    let decode = |row: &QueryResult| -> Result<(String, (f64, i64)), sea_orm::DbErr> {
        Ok((
            row.try_get_by("k")?,
            (row.try_get_by("v")?, row.try_get_by("n")?),
        ))
    };
    Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
}
