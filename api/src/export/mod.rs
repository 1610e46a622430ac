//! CSV exports: `GET /export/trade.csv`, `/export/financial.csv`, `/export/subjects.csv`.
//!
//! The same rules as the GraphQL queries, applied in the same places: the caller's permission
//! set decides the dataset, the filter fields and the columns (a column whose category the
//! caller may not read is left out, exactly as the field would be refused); the row scope is
//! part of the SQL. The rows to be delivered are counted and reserved against the quota, and
//! the export is audited, *before* the first byte is sent; then rows stream from the database
//! in pages, in id order, never more than were reserved. A refused export is audited too,
//! with its actor. An `Idempotency-Key` header makes a retried export (same key, same
//! parameters, within a day) free as long as it delivers no more rows than the first one was
//! charged for; rows added since are charged.

mod columns;
mod filter;

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
use serde_json::json;
use sha2::{Digest, Sha256};

use self::columns::{Column, financial_columns, subject_columns, trade_columns};
use crate::audit::{AuditEvent, EventType};
use crate::auth::partner::ClientCert;
use crate::auth::{self, Principal};
use crate::delivery::{self, Refusal};
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

fn bad(message: impl Into<String>) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, ErrorCode::BadUserInput, message)
}

fn refusal(e: ApiError) -> Refusal {
    let status = match &e {
        ApiError::BadUserInput(_) => StatusCode::BAD_REQUEST,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        ApiError::ForbiddenField(_) | ApiError::Forbidden(_) | ApiError::AccountLocked(_) => {
            StatusCode::FORBIDDEN
        }
        ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ApiError::Internal(e) => return Refusal::internal("export failed", e),
    };
    let code = e.code();
    Refusal::new(status, code, e.client_message())
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
    let mut base = AuditEvent::new(EventType::Export, "failed")
        .actor(principal.username.clone())
        .detail(json!({ "file": file }));
    if let Some(s) = source {
        base = base.source(s);
    }
    // Every refusal after authentication goes through one place, so none leaves unaudited.
    match export(&state, &principal, &file, &params, &headers, base.clone()).await {
        Ok(answered) => answered,
        Err(refused) => delivery::refuse_audited(&state, base, refused).await,
    }
}

/// The export, audited and answered; or the refusal, for the caller to audit. `base` is the
/// export's audit event (actor, source, file).
async fn export(
    state: &AppState,
    principal: &Principal,
    file: &str,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    base: AuditEvent,
) -> Result<Response, Refusal> {
    let Some(dataset) = Dataset::parse(file) else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "exports: trade.csv, financial.csv, subjects.csv",
        ));
    };
    for key in params.keys() {
        if !matches!(key.as_str(), "filter" | "limit") {
            return Err(bad(format!("unknown parameter {key:?} (filter, limit)")));
        }
    }
    let limit = match params.get("limit").map(|l| l.parse::<u64>()) {
        None => MAX_ROWS,
        Some(Ok(n)) if (1..=MAX_ROWS).contains(&n) => n,
        Some(_) => return Err(bad(format!("limit must be between 1 and {MAX_ROWS}"))),
    };
    let idempotency = match headers.get("idempotency-key").map(HeaderValue::to_str) {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => Some(k.to_owned()),
        Some(_) => {
            return Err(bad(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            )));
        }
    };
    // The same category rule as the query field itself.
    let category = state.policy.field_category("Query", dataset.query_field());
    if !principal.permissions.allows(category) {
        return Err(refusal(ApiError::ForbiddenField(format!(
            "{} carries {} data, which your role may not read",
            file,
            category.as_str()
        ))));
    }
    let filter = params.get("filter");
    let (condition, header_fields) = match dataset {
        Dataset::Trade => {
            prepare::<TradeRecordFilter, _>(state, principal, filter, trade_columns(), scope::trade)
                .await
        }
        Dataset::Financial => {
            prepare::<FinancialTransactionFilter, _>(
                state,
                principal,
                filter,
                financial_columns(),
                |p| scope::all_or_nothing(p, financial_transaction::Column::Id),
            )
            .await
        }
        Dataset::Subjects => {
            prepare::<SubjectRecordFilter, _>(state, principal, filter, subject_columns(), |p| {
                scope::all_or_nothing(p, subject_record::Column::Id)
            })
            .await
        }
    }
    .map_err(refusal)?;
    let request_hash = hex::encode(Sha256::digest(
        format!("{file}\0{filter:?}\0{limit}").as_bytes(),
    ));
    let allowed = state.settings.operations.request_time_limit;
    let counted = time_limit::run(allowed, count(&state.db, dataset, condition.clone())).await;
    let total = match counted.map(|c| c.map_err(ApiError::from)) {
        Some(Ok(n)) => n.min(limit),
        None | Some(Err(ApiError::Timeout)) => {
            let event = AuditEvent {
                outcome: "timed_out",
                ..base
            }
            .detail(json!({ "file": file, "requestSha256": request_hash }));
            return Ok(delivery::timed_out(state, event, None).await);
        }
        Some(Err(e)) => return Err(refusal(e)),
    };

    // Reserve, then audit, then stream: nothing leaves uncounted or unaudited.
    let replay_key = idempotency
        .as_ref()
        .map(|k| hex::encode(Sha256::digest(format!("{k}\0{request_hash}").as_bytes())));
    let mut charged = total;
    let mut replay = false;
    if let (Some(q), true) = (principal.permissions.quota, total > 0) {
        let account = quota::Account::from(principal);
        // A replay recomputes its rows, and rows loaded since the first export may match too.
        // Delivering exactly the first export's rows would need them (or their ids) kept per
        // key, which nothing here stores; the store already keeps, per key, how many records
        // were granted. So a replay is charged what it delivers beyond that, through the same
        // reservation (which may lock the account as any other).
        let reserved = state
            .quota
            .reserve(&state.db, &account, q, total, replay_key.as_deref())
            .await;
        let source = &base.source;
        match reserved {
            Ok(Reservation::Granted { .. }) => {}
            Ok(Reservation::Replayed { extra }) => {
                replay = true;
                charged = extra;
            }
            Ok(refused) => {
                let used = refused.refused_with_used().unwrap_or_default();
                let locked = delivery::lock(
                    state,
                    principal.user_id,
                    &principal.username,
                    source,
                    q.records,
                    used,
                    total,
                );
                return Ok(locked.await);
            }
            Err(e) => return Err(delivery::quota_refusal(e)),
        }
    }
    let event = AuditEvent {
        outcome: "ok",
        ..base
    }
    .records(i64::try_from(charged).unwrap_or(i64::MAX))
    .detail(json!({ "file": file, "requestSha256": request_hash, "rows": total, "idempotencyKey": idempotency, "replay": replay }));
    if let Err(e) = state.audit.record(event).await {
        return Ok(delivery::internal(
            "audit write failed; export withheld",
            &e,
        ));
    }
    Ok(stream(
        state.db.clone(),
        dataset,
        condition,
        header_fields,
        total,
        file,
        allowed,
    ))
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
    let mut filter: F = filter::parse(raw_filter)?;
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

/// Streams at most `total` rows page by page; a database error mid-way, a page that runs
/// past the time limit, or rows gone before all `total` were sent, aborts the response (the
/// client sees a truncated transfer, never a silently short file). Each page gets the whole limit: the export as a whole may take as
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
                // Fewer rows than were counted, charged and audited: some were removed (a
                // purge) while the file streamed. Ending here would hand over a short file
                // that looks whole.
                Ok((_, 0, _)) => {
                    tracing::warn!(
                        sent,
                        total,
                        "export cut off: rows were removed while it streamed"
                    );
                    let _ = tx
                        .send(Err(std::io::Error::other(
                            "export aborted: rows were removed",
                        )))
                        .await;
                    return;
                }
                Ok((bytes, rows, last)) => {
                    if tx.send(Ok(bytes)).await.is_err() {
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
