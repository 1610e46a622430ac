//! FinCEN financial transactions: `financialTransactions`, `FinancialTransaction`, and the
//! link from a trade record's importer. Every field here carries FINANCIAL data
//! (`policies/fields.toml`); the guard refuses them to roles without it.

use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use entities::financial_transaction::{self, Column};
use sea_orm::sea_query::{
    Alias, Asterisk, Expr, ExprTrait, Func, Order, Query, SimpleExpr, WindowStatement,
};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, QueryTrait,
};

use super::filters::{RecordFilter, check_text, contains, read_if_set};
use super::guard::{principal, require_readable};
use super::ids::{self, NodeType};
use super::keyset::{KeyKind, Keyset, KeysetConnection, SortKey, fetch};
use super::pagination::CONNECTION_COST;
use super::scalars::Date;
use super::scope;
use crate::analysis::rollup::Importers;
use crate::error::{ApiError, ApiResult};
use crate::policy::PermissionSet;
use crate::state::AppState;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportType {
    Ctr,
    Cmir,
    Sar,
}

impl ReportType {
    fn as_str(self) -> &'static str {
        match self {
            ReportType::Ctr => "CTR",
            ReportType::Cmir => "CMIR",
            ReportType::Sar => "SAR",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "CMIR" => ReportType::Cmir,
            "SAR" => ReportType::Sar,
            _ => ReportType::Ctr,
        }
    }
}

/// One transaction from a Bank Secrecy Act report.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct FinancialTransaction {
    #[graphql(skip)]
    row_id: i64,
    pub report_id: String,
    pub report_type: ReportType,
    pub transaction_date: Date,
    pub amount_usd: f64,
    /// `IN` or `OUT` for cash transactions.
    pub cash_direction: Option<String>,
    pub filer_institution: Option<String>,
    pub subject_name: String,
    pub subject_tin: Option<String>,
    pub subject_dob: Option<Date>,
    pub subject_address: Option<String>,
    pub subject_id_number: Option<String>,
    pub account_number: Option<String>,
    pub counterparty_name: Option<String>,
    pub counterparty_account: Option<String>,
}

#[ComplexObject]
impl FinancialTransaction {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::FinancialTransaction, self.row_id)
    }
}

impl From<financial_transaction::Model> for FinancialTransaction {
    fn from(m: financial_transaction::Model) -> Self {
        FinancialTransaction {
            row_id: m.id,
            report_id: m.report_id,
            report_type: ReportType::parse(&m.report_type),
            transaction_date: Date(m.transaction_date),
            amount_usd: m.amount_usd,
            cash_direction: m.cash_direction,
            filer_institution: m.filer_institution,
            subject_name: m.subject_name,
            subject_tin: m.subject_tin,
            subject_dob: m.subject_dob.map(Date),
            subject_address: m.subject_address,
            subject_id_number: m.subject_id_number,
            account_number: m.account_number,
            counterparty_name: m.counterparty_name,
            counterparty_account: m.counterparty_account,
        }
    }
}

#[derive(InputObject, Default)]
pub struct FinancialTransactionFilter {
    pub report_type: Option<ReportType>,
    pub transaction_date_from: Option<Date>,
    pub transaction_date_to: Option<Date>,
    pub amount_usd_min: Option<f64>,
    pub amount_usd_max: Option<f64>,
    /// Substring (any letter in either case) of the subject's name.
    pub subject_name_contains: Option<String>,
    pub subject_tin: Option<String>,
    pub account_number: Option<String>,
}

impl RecordFilter for FinancialTransactionFilter {
    const RECORD: &'static str = "FinancialTransaction";

    fn fields_read(&self) -> Vec<&'static str> {
        read_if_set(&[
            (self.report_type.is_some(), "reportType"),
            (
                self.transaction_date_from.is_some() || self.transaction_date_to.is_some(),
                "transactionDate",
            ),
            (
                self.amount_usd_min.is_some() || self.amount_usd_max.is_some(),
                "amountUsd",
            ),
            (self.subject_name_contains.is_some(), "subjectName"),
            (self.subject_tin.is_some(), "subjectTin"),
            (self.account_number.is_some(), "accountNumber"),
        ])
    }

    fn condition(&self) -> ApiResult<Condition> {
        let mut c = Condition::all();
        if let Some(t) = self.report_type {
            c = c.add(Column::ReportType.eq(t.as_str()));
        }
        if let Some(d) = self.transaction_date_from {
            c = c.add(Column::TransactionDate.gte(d.0));
        }
        if let Some(d) = self.transaction_date_to {
            c = c.add(Column::TransactionDate.lte(d.0));
        }
        for v in [self.amount_usd_min, self.amount_usd_max]
            .into_iter()
            .flatten()
        {
            if !v.is_finite() {
                return Err(ApiError::bad_input("amount bounds must be finite numbers"));
            }
        }
        if let Some(v) = self.amount_usd_min {
            c = c.add(Column::AmountUsd.gte(v));
        }
        if let Some(v) = self.amount_usd_max {
            c = c.add(Column::AmountUsd.lte(v));
        }
        if let Some(name) = &self.subject_name_contains {
            check_text("subjectNameContains", name)?;
            c = c.add(contains(Column::SubjectName, name));
        }
        if let Some(tin) = &self.subject_tin {
            check_text("subjectTin", tin)?;
            c = c.add(Column::SubjectTin.eq(tin.as_str()));
        }
        if let Some(account) = &self.account_number {
            check_text("accountNumber", account)?;
            c = c.add(Column::AccountNumber.eq(account.as_str()));
        }
        Ok(c)
    }
}

#[derive(Default)]
pub struct FinancialQuery;

#[Object]
impl FinancialQuery {
    /// FinCEN transactions, newest first.
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    async fn financial_transactions(
        &self,
        ctx: &Context<'_>,
        filter: Option<FinancialTransactionFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<KeysetConnection<FinancialTransaction>>> {
        let state = ctx.data::<AppState>()?;
        let page = Keyset::new(
            "financialTransactions",
            vec![
                SortKey::new(
                    "transactionDate",
                    col(Column::TransactionDate),
                    KeyKind::Date,
                )
                .desc(true),
                SortKey::new("id", col(Column::Id), KeyKind::Int),
            ],
        )
        .page(&state.cursors, first, after.as_deref())?;
        let perms = &principal(ctx)?.permissions;
        let filter = filter.unwrap_or_default();
        // The fixed page order reads a field too: `DERIVED` in the policy module.
        let read = filter.fields_read();
        require_readable(ctx, FinancialTransactionFilter::RECORD, &read)?;
        let condition = filter
            .condition()?
            .add(scope::all_or_nothing(perms, Column::Id));
        let (rows, total) = fetch(
            ctx,
            &state.db,
            &page,
            financial_transaction::Entity::find().filter(condition),
        )
        .await?;
        let edges = page.edges(
            rows,
            |m| vec![m.transaction_date.into(), m.id.into()],
            FinancialTransaction::from,
        );
        Ok(Some(page.connection(edges, total)))
    }
}

fn col(c: Column) -> Expr {
    Expr::col((financial_transaction::Entity, c))
}

/// Whether FinCEN reports name a trade record's importer as their subject, matched the same
/// way as `for_subjects`: by TIN when the record has an importer id, else by exact name.
///
/// Written as `IN` over the reports' TINs and names, not as a subquery correlated with each
/// record: both backends then read the reports once per statement (PostgreSQL hashes them,
/// SQLite builds a temporary index) instead of probing them per record. 1M records, 7,000
/// reports: 1.49 s → 0.19 s on PostgreSQL, 0.72 → 0.26 s on SQLite. Each side of each `IN` is
/// kept free of NULL (`x IN (…)` is NULL, not false, when either side is), so the expression
/// is true or false and `NOT` of it is exactly the records without reports.
pub fn subject_matches_importer() -> SimpleExpr {
    use entities::trade_record;
    let trade = |c: trade_record::Column| Expr::col((trade_record::Entity, c));
    let reported = |subject: Column| {
        Query::select()
            .column(subject)
            .from(financial_transaction::Entity)
            .and_where(col(subject).is_not_null())
            .to_owned()
    };
    let by_id = trade(trade_record::Column::ImporterId)
        .is_not_null()
        .and(trade(trade_record::Column::ImporterId).in_subquery(reported(Column::SubjectTin)));
    let by_name = trade(trade_record::Column::ImporterId)
        .is_null()
        .and(trade(trade_record::Column::ImporterName).is_not_null())
        .and(trade(trade_record::Column::ImporterName).in_subquery(reported(Column::SubjectName)));
    by_id.or(by_name)
}

/// The importers FinCEN reports name, as [`subject_matches_importer`] matches them: by the
/// reports' TINs, and (for records without an id) by their subjects' names; `None` when there
/// are more than `at_most` in all. Read through the subject indexes, so that a filter on
/// linked records reads the records of these importers by index (`red_flags::importers_by`)
/// where the subqueries alone test every record (on 1M records ~0.2 s a statement, and a page
/// that finds none — no reports loaded — reads the whole table).
pub async fn reported_importers(
    db: &DatabaseConnection,
    at_most: usize,
) -> Result<Option<Importers>, DbErr> {
    let bound = u64::try_from(at_most).unwrap_or(u64::MAX).saturating_add(1);
    let subjects = |subject: Column| {
        financial_transaction::Entity::find()
            .select_only()
            .column(subject)
            .filter(subject.is_not_null())
            .distinct()
            .limit(bound)
            .into_tuple::<String>()
            .all(db)
    };
    let tins = subjects(Column::SubjectTin).await?;
    if tins.len() > at_most {
        return Ok(None);
    }
    let names = subjects(Column::SubjectName).await?;
    if tins.len() + names.len() > at_most {
        return Ok(None);
    }
    Ok(Some(Importers::new(tins, names)))
}

/// Most transactions one link returns; a trade record page must not pull a whole ledger.
const LINK_LIMIT: u64 = 200;

/// Whose reports a trade record's importer links to: by TIN when the record has an importer
/// id, else by exact name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Tin(String),
    Name(String),
}

impl Subject {
    pub fn of(tin: Option<&str>, name: Option<&str>) -> Option<Subject> {
        match (tin, name) {
            (Some(tin), _) => Some(Subject::Tin(tin.to_owned())),
            (None, Some(name)) => Some(Subject::Name(name.to_owned())),
            (None, None) => None,
        }
    }
}

/// Each subject's transactions the caller may read, newest first, at most `LINK_LIMIT` each:
/// one statement for the TINs and one for the names, whatever their number (a page of 50
/// trade records was 50 statements). The limit is per subject, so each statement numbers its
/// subject's rows (`ROW_NUMBER() OVER (PARTITION BY subject …)`, both backends) and keeps the
/// first; a subject without reports is absent from the map.
pub async fn for_subjects(
    state: &AppState,
    perms: &PermissionSet,
    subjects: &[Subject],
) -> ApiResult<HashMap<Subject, Vec<FinancialTransaction>>> {
    let (mut tins, mut names) = (Vec::new(), Vec::new());
    for subject in subjects {
        match subject {
            Subject::Tin(tin) => tins.push(tin.as_str()),
            Subject::Name(name) => names.push(name.as_str()),
        }
    }
    let mut linked: HashMap<Subject, Vec<FinancialTransaction>> = HashMap::new();
    for (column, values) in [(Column::SubjectTin, tins), (Column::SubjectName, names)] {
        if values.is_empty() {
            continue;
        }
        let rank = Alias::new("link_rank");
        let mut numbered = financial_transaction::Entity::find()
            .filter(scope::all_or_nothing(perms, Column::Id))
            .filter(column.is_in(values))
            .into_query();
        numbered.expr_window_as(
            Func::cust("ROW_NUMBER"),
            WindowStatement::partition_by(column)
                .order_by(Column::TransactionDate, Order::Desc)
                .order_by(Column::Id, Order::Asc)
                .to_owned(),
            rank.clone(),
        );
        let ranked = Alias::new("ranked");
        let statement = Query::select()
            .column(Asterisk)
            .from_subquery(numbered, ranked.clone())
            .and_where(Expr::col((ranked.clone(), rank.clone())).lte(LINK_LIMIT))
            .order_by((ranked.clone(), column), Order::Asc)
            .order_by((ranked, rank), Order::Asc)
            .to_owned();
        let rows = financial_transaction::Model::find_by_statement(
            state.db.get_database_backend().build(&statement),
        )
        .all(&state.db)
        .await?;
        for row in rows {
            let subject = match column {
                Column::SubjectTin => row.subject_tin.clone().map(Subject::Tin),
                _ => Some(Subject::Name(row.subject_name.clone())),
            };
            if let Some(subject) = subject {
                linked
                    .entry(subject)
                    .or_default()
                    .push(FinancialTransaction::from(row));
            }
        }
    }
    Ok(linked)
}

/// The transactions with these row ids that the caller may read, by row id, in one query.
pub async fn by_ids(
    state: &AppState,
    perms: &PermissionSet,
    ids: &[i64],
) -> ApiResult<HashMap<i64, FinancialTransaction>> {
    Ok(financial_transaction::Entity::find()
        .filter(Column::Id.is_in(ids.iter().copied()))
        .filter(scope::all_or_nothing(perms, Column::Id))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|m| (m.id, FinancialTransaction::from(m)))
        .collect())
}
