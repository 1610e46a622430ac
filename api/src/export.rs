//! CSV exports: `GET /export/trade.csv`, `/export/financial.csv`, `/export/subjects.csv`.
//!
//! The same rules as the GraphQL queries, applied in the same places: the caller's permission
//! set decides the dataset, the filter fields and the columns (a column whose category the
//! caller may not read is left out, exactly as the field would be refused); the row scope is
//! part of the SQL. The rows to be delivered are counted and reserved against the quota, and
//! the export is audited, *before* the first byte is sent; then rows stream from the database
//! in pages, in id order, never more than were reserved. An `Idempotency-Key` header makes a
//! retried export (same key, same parameters, within a day) free.

use std::collections::HashMap;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use entities::{financial_transaction, subject_record, trade_record};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::audit::{AuditEvent, EventType};
use crate::auth::partner::ClientCert;
use crate::auth::{self, Principal};
use crate::delivery::{self, error_response};
use crate::error::{ApiError, ErrorCode};
use crate::graphql::filters::RecordFilter;
use crate::graphql::financial::FinancialTransactionFilter;
use crate::graphql::guard::readable;
use crate::graphql::scope;
use crate::graphql::subjects::SubjectRecordFilter;
use crate::graphql::trade::TradeRecordFilter;
use crate::policy::PermissionSet;
use crate::quota::{self, Reservation};
use crate::state::AppState;
use crate::time_limit;

/// Most rows one export may carry; larger pulls are split by the caller (and each is counted).
pub const MAX_ROWS: u64 = 1_000_000;
const PAGE: u64 = 2_000;
const MAX_IDEMPOTENCY_KEY: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dataset {
    Trade,
    Financial,
    Subjects,
}

impl Dataset {
    fn parse(file: &str) -> Option<Self> {
        match file {
            "trade.csv" => Some(Dataset::Trade),
            "financial.csv" => Some(Dataset::Financial),
            "subjects.csv" => Some(Dataset::Subjects),
            _ => None,
        }
    }

    /// The query field whose category governs the export as a whole.
    fn query_field(self) -> &'static str {
        match self {
            Dataset::Trade => "tradeRecords",
            Dataset::Financial => "financialTransactions",
            Dataset::Subjects => "subjectRecords",
        }
    }
}

fn bad(message: impl Into<String>) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        ErrorCode::BadUserInput,
        &message.into(),
    )
}

fn api_error(e: ApiError) -> Response {
    match e {
        ApiError::ForbiddenField(m) => {
            error_response(StatusCode::FORBIDDEN, ErrorCode::ForbiddenField, &m)
        }
        ApiError::Forbidden(m) => error_response(StatusCode::FORBIDDEN, ErrorCode::Forbidden, &m),
        ApiError::BadUserInput(m) => bad(m),
        ApiError::NotFound(m) => error_response(StatusCode::NOT_FOUND, ErrorCode::NotFound, &m),
        ApiError::Unauthenticated(m) => {
            error_response(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, &m)
        }
        ApiError::AccountLocked(m) => {
            error_response(StatusCode::FORBIDDEN, ErrorCode::AccountLocked, &m)
        }
        ApiError::Unavailable => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            crate::error::BUSY_MESSAGE,
        ),
        ApiError::Timeout => delivery::timeout_refusal(),
        ApiError::Internal(e) => delivery::internal("export failed", &e),
    }
}

/// `filter` is the GraphQL filter input as JSON, with the same field names.
fn parse_filter<T: async_graphql::InputType + Default>(
    raw: Option<&String>,
) -> Result<T, ApiError> {
    let Some(text) = raw else {
        return Ok(T::default());
    };
    let json: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_input(format!("filter is not JSON: {e}")))?;
    crate::graphql::filters::refuse_nul(&json)?;
    let value = async_graphql::Value::from_json(json)
        .map_err(|e| ApiError::bad_input(format!("filter: {e}")))?;
    T::parse(Some(value)).map_err(|e| {
        ApiError::bad_input(format!(
            "filter: {}",
            e.into_server_error(Default::default()).message
        ))
    })
}

/// One CSV column: header (the GraphQL field name) and how to render it.
struct Column<M> {
    field: &'static str,
    render: fn(&M) -> String,
}

/// `columns![Model; "field" => render, …]`: a dataset's CSV columns, one line each.
macro_rules! columns {
    ($model:ty; $($field:literal => $render:expr),* $(,)?) => {
        vec![$(Column::<$model> { field: $field, render: $render }),*]
    };
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn num(v: Option<f64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

fn trade_columns() -> Vec<Column<trade_record::Model>> {
    columns![
        trade_record::Model;
        "declarationId" => |m| m.declaration_id.clone(),
        "lineNumber" => |m| m.line_number.to_string(),
        "declarationDate" => |m| m.declaration_date.to_string(),
        "direction" => |m| m.direction.clone(),
        "hsCode" => |m| m.hs_code.clone(),
        "commodityDescription" => |m| opt(&m.commodity_description),
        "importerName" => |m| opt(&m.importer_name),
        "importerId" => |m| opt(&m.importer_id),
        "importerAddress" => |m| opt(&m.importer_address),
        "exporterName" => |m| opt(&m.exporter_name),
        "manufacturerName" => |m| opt(&m.manufacturer_name),
        "manufacturerId" => |m| opt(&m.manufacturer_id),
        "countryOfOrigin" => |m| opt(&m.country_of_origin),
        "countryOfExport" => |m| opt(&m.country_of_export),
        "countryOfDestination" => |m| opt(&m.country_of_destination),
        "reportingCountry" => |m| m.reporting_country.clone(),
        "partnerCountry" => |m| opt(&m.partner_country),
        "providerCountry" => |m| m.provider_country.clone(),
        "port" => |m| opt(&m.port),
        "transportMode" => |m| opt(&m.transport_mode),
        "quantity" => |m| num(m.quantity),
        "quantityUnit" => |m| opt(&m.quantity_unit),
        "netWeightKg" => |m| num(m.net_weight_kg),
        "declaredValue" => |m| m.declared_value.to_string(),
        "declaredCurrency" => |m| m.declared_currency.clone(),
        "declaredValueUsd" => |m| m.declared_value_usd.to_string(),
    ]
}

fn financial_columns() -> Vec<Column<financial_transaction::Model>> {
    columns![
        financial_transaction::Model;
        "reportId" => |m| m.report_id.clone(),
        "reportType" => |m| m.report_type.clone(),
        "transactionDate" => |m| m.transaction_date.to_string(),
        "amountUsd" => |m| m.amount_usd.to_string(),
        "cashDirection" => |m| opt(&m.cash_direction),
        "filerInstitution" => |m| opt(&m.filer_institution),
        "subjectName" => |m| m.subject_name.clone(),
        "subjectTin" => |m| opt(&m.subject_tin),
        "subjectDob" => |m| m.subject_dob.map(|d| d.to_string()).unwrap_or_default(),
        "subjectAddress" => |m| opt(&m.subject_address),
        "subjectIdNumber" => |m| opt(&m.subject_id_number),
        "accountNumber" => |m| opt(&m.account_number),
        "counterpartyName" => |m| opt(&m.counterparty_name),
        "counterpartyAccount" => |m| opt(&m.counterparty_account),
    ]
}

fn subject_columns() -> Vec<Column<subject_record::Model>> {
    columns![
        subject_record::Model;
        "recordId" => |m| m.record_id.clone(),
        "kind" => |m| m.kind.clone(),
        "creatingAgency" => |m| m.creating_agency.clone(),
        "caseStatus" => |m| m.case_status.clone(),
        "createdDate" => |m| m.created_date.map(|d| d.to_string()).unwrap_or_default(),
        "name" => |m| opt(&m.name),
        "businessName" => |m| opt(&m.business_name),
        "address" => |m| opt(&m.address),
        "dateOfBirth" => |m| m.date_of_birth.map(|d| d.to_string()).unwrap_or_default(),
        "ssnTin" => |m| opt(&m.ssn_tin),
        "passportNumber" => |m| opt(&m.passport_number),
        "passportCountry" => |m| opt(&m.passport_country),
        "bankAccounts" => |m| opt(&m.bank_accounts),
        "phones" => |m| opt(&m.phones),
        "driversLicense" => |m| opt(&m.drivers_license),
        "driversLicenseState" => |m| opt(&m.drivers_license_state),
        "aNumber" => |m| opt(&m.a_number),
        "plate" => |m| opt(&m.plate),
        "vesselName" => |m| opt(&m.vessel_name),
        "aircraftTailNumber" => |m| opt(&m.aircraft_tail_number),
        "description" => |m| opt(&m.description),
    ]
}

pub async fn handle(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    client: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    client_cert: Option<Extension<ClientCert>>,
    headers: HeaderMap,
) -> Response {
    let source = client.map(|Extension(ConnectInfo(addr))| addr.ip().to_string());
    let cert = client_cert.map(|Extension(c)| c);
    let principal = match auth::authenticate(&state, &headers, cert.as_ref()).await {
        Ok(p) => p,
        Err(e) => {
            delivery::audit_refusal(&state, &e, source).await;
            return delivery::refuse(&e);
        }
    };
    let Some(dataset) = Dataset::parse(&file) else {
        return error_response(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "exports: trade.csv, financial.csv, subjects.csv",
        );
    };
    for key in params.keys() {
        if !matches!(key.as_str(), "filter" | "limit") {
            return bad(format!("unknown parameter {key:?} (filter, limit)"));
        }
    }
    let limit = match params.get("limit").map(|l| l.parse::<u64>()) {
        None => MAX_ROWS,
        Some(Ok(n)) if (1..=MAX_ROWS).contains(&n) => n,
        Some(_) => return bad(format!("limit must be between 1 and {MAX_ROWS}")),
    };
    let idempotency = match headers.get("idempotency-key").map(HeaderValue::to_str) {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => Some(k.to_owned()),
        Some(_) => {
            return bad(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ));
        }
    };
    // The same category rule as the query field itself.
    let category = state.policy.field_category("Query", dataset.query_field());
    if !principal.permissions.allows(category) {
        return api_error(ApiError::ForbiddenField(format!(
            "{} carries {} data, which your role may not read",
            file,
            category.as_str()
        )));
    }
    let result = match dataset {
        Dataset::Trade => {
            prepare::<TradeRecordFilter, _>(
                &state,
                &principal,
                params.get("filter"),
                trade_columns(),
                scope::trade,
            )
            .await
        }
        Dataset::Financial => {
            prepare::<FinancialTransactionFilter, _>(
                &state,
                &principal,
                params.get("filter"),
                financial_columns(),
                |p| scope::all_or_nothing(p, financial_transaction::Column::Id),
            )
            .await
        }
        Dataset::Subjects => {
            prepare::<SubjectRecordFilter, _>(
                &state,
                &principal,
                params.get("filter"),
                subject_columns(),
                |p| scope::all_or_nothing(p, subject_record::Column::Id),
            )
            .await
        }
    };
    let (condition, header_fields) = match result {
        Ok(r) => r,
        Err(e) => return api_error(e),
    };
    let request_hash = hex::encode(Sha256::digest(
        format!("{file}\0{:?}\0{limit}", params.get("filter")).as_bytes(),
    ));
    let allowed = state.settings.operations.request_time_limit;
    let counted = time_limit::run(allowed, count(&state.db, dataset, condition.clone())).await;
    let total = match counted.map(|c| c.map_err(ApiError::from)) {
        Some(Ok(n)) => n.min(limit),
        None | Some(Err(ApiError::Timeout)) => {
            let mut event = AuditEvent::new(EventType::Export, "timed_out")
                .actor(principal.username.clone())
                .detail(json!({ "file": file, "requestSha256": request_hash }));
            if let Some(s) = source {
                event = event.source(s);
            }
            return delivery::timed_out(&state, event, None).await;
        }
        Some(Err(e)) => return api_error(e),
    };

    // Reserve, then audit, then stream: nothing leaves uncounted or unaudited.
    let replay_key = idempotency
        .as_ref()
        .map(|k| hex::encode(Sha256::digest(format!("{k}\0{request_hash}").as_bytes())));
    let mut charged = total;
    if let (Some(q), true) = (principal.permissions.quota, total > 0) {
        let account = quota::Account {
            user_id: principal.user_id,
            username: &principal.username,
            reset_at: principal.quota_reset_at,
        };
        match state
            .quota
            .reserve(&state.db, &account, q, total, replay_key.as_deref())
            .await
        {
            Ok(Reservation::Granted { .. }) => {}
            Ok(Reservation::Replayed) => charged = 0,
            Ok(Reservation::Exceeded { used }) => {
                return delivery::lock(
                    &state,
                    principal.user_id,
                    &principal.username,
                    &source,
                    q.records,
                    used,
                    total,
                )
                .await;
            }
            Ok(Reservation::Locked) => {
                return delivery::lock(
                    &state,
                    principal.user_id,
                    &principal.username,
                    &source,
                    q.records,
                    0,
                    total,
                )
                .await;
            }
            Err(quota::QuotaError::Rebuild(e)) => {
                return delivery::internal("cannot rebuild a quota counter", &e);
            }
            Err(e) => return delivery::quota_unavailable(&e),
        }
    }
    let mut event = AuditEvent::new(EventType::Export, "ok")
        .actor(principal.username.clone())
        .records(i64::try_from(charged).unwrap_or(i64::MAX))
        .detail(json!({ "file": file, "requestSha256": request_hash, "rows": total, "idempotencyKey": idempotency, "replay": charged != total }));
    if let Some(s) = source {
        event = event.source(s);
    }
    if let Err(e) = state.audit.record(event).await {
        return delivery::internal("audit write failed; export withheld", &e);
    }
    stream(
        state.db.clone(),
        dataset,
        condition,
        header_fields,
        total,
        &file,
        allowed,
    )
}

/// Parses the filter, checks it, and decides the columns. The check is here, once for every
/// data set, rather than beside each data set's row scope, so none can be exported without it.
/// Rows go out in id order, so no other field is compared.
async fn prepare<F, M>(
    state: &AppState,
    principal: &Principal,
    raw_filter: Option<&String>,
    columns: Vec<Column<M>>,
    row_scope: impl Fn(&PermissionSet) -> Condition,
) -> Result<(Condition, Vec<&'static str>), ApiError>
where
    F: RecordFilter,
{
    let mut filter: F = parse_filter(raw_filter)?;
    let perms = &principal.permissions;
    readable(&state.policy, perms, F::RECORD, &filter.fields_read())?;
    filter.narrow(&state.db).await?;
    let condition = filter.condition()?.add(row_scope(perms));
    let fields = columns
        .iter()
        .filter(|c| {
            state
                .policy
                .missing_category(perms, F::RECORD, c.field)
                .is_none()
        })
        .map(|c| c.field)
        .collect();
    Ok((condition, fields))
}

async fn count(
    db: &DatabaseConnection,
    dataset: Dataset,
    c: Condition,
) -> Result<u64, sea_orm::DbErr> {
    match dataset {
        Dataset::Trade => trade_record::Entity::find().filter(c).count(db).await,
        Dataset::Financial => {
            financial_transaction::Entity::find()
                .filter(c)
                .count(db)
                .await
        }
        Dataset::Subjects => subject_record::Entity::find().filter(c).count(db).await,
    }
}

fn csv_line(fields: &[String]) -> Bytes {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(256));
    // Writing to a Vec cannot fail.
    let _ = writer.write_record(fields);
    Bytes::from(writer.into_inner().unwrap_or_default())
}

/// Streams at most `total` rows page by page; a database error mid-way, or a page that runs
/// past the time limit, aborts the response (the client sees a truncated transfer, never a
/// silently short file). Each page gets the whole limit: the export as a whole may take as
/// long as its size needs.
fn stream(
    db: DatabaseConnection,
    dataset: Dataset,
    condition: Condition,
    fields: Vec<&'static str>,
    total: u64,
    file: &str,
    allowed: std::time::Duration,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let header = csv_line(&fields.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>());
    tokio::spawn(async move {
        if tx.send(Ok(header)).await.is_err() {
            return;
        }
        let mut sent = 0u64;
        let mut after = 0i64;
        while sent < total {
            let take = PAGE.min(total - sent);
            // The same page query for each dataset's entity and columns.
            macro_rules! page {
                ($entity:ident, $columns:expr) => {
                    render(
                        &db,
                        $entity::Entity::find(),
                        $entity::Column::Id,
                        &condition,
                        after,
                        take,
                        &fields,
                        $columns,
                        |m| m.id,
                    )
                    .await
                };
            }
            let page = time_limit::run(allowed, async {
                match dataset {
                    Dataset::Trade => page!(trade_record, trade_columns()),
                    Dataset::Financial => page!(financial_transaction, financial_columns()),
                    Dataset::Subjects => page!(subject_record, subject_columns()),
                }
            })
            .await
            .unwrap_or_else(|| Err(sea_orm::DbErr::Custom("past the time limit".into())));
            match page {
                Ok((bytes, rows, last)) => {
                    if rows == 0 || tx.send(Ok(bytes)).await.is_err() {
                        return;
                    }
                    sent += rows;
                    after = last;
                }
                Err(e) => {
                    tracing::error!(error = %e, "export stream failed");
                    let _ = tx.send(Err(std::io::Error::other("export aborted"))).await;
                    return;
                }
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let disposition = format!("attachment; filename=\"{file}\"");
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call per dataset; a struct would only rename the same arguments"
)]
async fn render<E, C, M>(
    db: &DatabaseConnection,
    query: sea_orm::Select<E>,
    id: C,
    condition: &Condition,
    after: i64,
    take: u64,
    fields: &[&'static str],
    columns: Vec<Column<M>>,
    id_of: fn(&M) -> i64,
) -> Result<(Bytes, u64, i64), sea_orm::DbErr>
where
    E: EntityTrait<Model = M>,
    C: ColumnTrait,
    M: sea_orm::FromQueryResult + Send + Sync,
{
    let rows = query
        .filter(condition.clone())
        .filter(id.gt(after))
        .order_by_asc(id)
        .limit(take)
        .all(db)
        .await?;
    let chosen: Vec<&Column<M>> = fields
        .iter()
        .filter_map(|f| columns.iter().find(|c| c.field == *f))
        .collect();
    let mut out = Vec::with_capacity(rows.len() * 128);
    let mut last = after;
    for row in &rows {
        let line: Vec<String> = chosen.iter().map(|c| (c.render)(row)).collect();
        out.extend_from_slice(&csv_line(&line));
        last = id_of(row);
    }
    Ok((Bytes::from(out), rows.len() as u64, last))
}
