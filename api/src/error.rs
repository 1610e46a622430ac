//! The one error type that crosses the API boundary, and its stable client-facing codes.
//!
//! Module errors (`IngestError`, `DbErr`, …) are converted here and nowhere else. Internal
//! failures are logged with a reference id and shown to clients only as that id, so SQL, file
//! paths or connection strings never reach a partner's screen. `scrub` is the last line of
//! defence: any error that leaves a resolver without a code is treated as internal.

use async_graphql::{ErrorExtensionValues, ServerError, Value};

/// `extensions.code` values. Clients match on these strings; never rename one.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    BadUserInput,
    NotFound,
    GraphqlValidationFailed,
    Unauthenticated,
    Forbidden,
    ForbiddenField,
    AccountDisabled,
    AccountLocked,
    QuotaUnavailable,
    /// No database connection came free in time (every one busy, e.g. waiting for a load
    /// that holds the trade tables): nothing was read, the same request may be sent again.
    Unavailable,
    /// A document refused before validation (`graphql::limits`): too large, too many
    /// fragments or too many fields once fragments are expanded.
    QueryTooComplex,
    /// The query ran past the request time limit (`time_limit`): it was stopped and nothing
    /// was delivered.
    Timeout,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::ForbiddenField => "FORBIDDEN_FIELD",
            ErrorCode::AccountDisabled => "ACCOUNT_DISABLED",
            ErrorCode::AccountLocked => "ACCOUNT_LOCKED",
            ErrorCode::QuotaUnavailable => "QUOTA_UNAVAILABLE",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::QueryTooComplex => "QUERY_TOO_COMPLEX",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    const ALL: [ErrorCode; 13] = [
        ErrorCode::BadUserInput,
        ErrorCode::NotFound,
        ErrorCode::GraphqlValidationFailed,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::ForbiddenField,
        ErrorCode::AccountDisabled,
        ErrorCode::AccountLocked,
        ErrorCode::QuotaUnavailable,
        ErrorCode::Unavailable,
        ErrorCode::QueryTooComplex,
        ErrorCode::Timeout,
        ErrorCode::Internal,
    ];

    /// The code an error carries in `extensions.code`, if any.
    pub fn of(extensions: Option<&ErrorExtensionValues>) -> Option<ErrorCode> {
        let Some(Value::String(code)) = extensions.and_then(|e| e.get("code")) else {
            return None;
        };
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The audit outcome of an action answered with this code: the record says what the
    /// answer said.
    pub fn audit_outcome(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::BadUserInput
            | ErrorCode::GraphqlValidationFailed
            | ErrorCode::QueryTooComplex => "invalid",
            ErrorCode::Unauthenticated
            | ErrorCode::Forbidden
            | ErrorCode::ForbiddenField
            | ErrorCode::AccountDisabled
            | ErrorCode::AccountLocked => "denied",
            ErrorCode::QuotaUnavailable | ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timed_out",
            ErrorCode::Internal => "internal_error",
        }
    }
}

/// The audit outcome of a failed action (`failed` when the error has no known code).
pub fn outcome_of(error: &async_graphql::Error) -> &'static str {
    ErrorCode::of(error.extensions.as_ref()).map_or("failed", ErrorCode::audit_outcome)
}

/// Deliberately not `Display`: async-graphql converts any `Display` type into an error
/// verbatim, which would bypass the code and the scrubbing below.
#[derive(Debug)]
pub enum ApiError {
    BadUserInput(String),
    NotFound(String),
    /// A field, filter or sort key whose data category the caller may not read.
    ForbiddenField(String),
    /// An action the caller may not take (e.g. approving someone else's request).
    Forbidden(String),
    /// A sign-in refused inside a resolver (the partners' `login`), or a field reached
    /// without authentication.
    Unauthenticated(String),
    /// A sign-in to a LOCKED account.
    AccountLocked(String),
    /// The database gave no connection (`is_unavailable`): busy, down or gone.
    Unavailable,
    /// A statement stopped at the request time limit (`time_limit::is_exceeded`).
    Timeout,
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        ApiError::BadUserInput(message.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadUserInput(_) => ErrorCode::BadUserInput,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::ForbiddenField(_) => ErrorCode::ForbiddenField,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            ApiError::AccountLocked(_) => ErrorCode::AccountLocked,
            ApiError::Unavailable => ErrorCode::Unavailable,
            ApiError::Timeout => ErrorCode::Timeout,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        if is_unavailable(&err) {
            ApiError::Unavailable
        } else if crate::time_limit::is_exceeded(&err) {
            ApiError::Timeout
        } else {
            ApiError::Internal(Box::new(err))
        }
    }
}

/// Whether a database error says only that the database could not serve this request now:
/// no connection came free within the pool's wait (an overload: a burst of clients, or readers
/// queued behind `dartts load --exclusive`, which holds the trade tables), none could be opened
/// (the database is down, restarting, or was dropped), or, on SQLite, a write found the file's
/// lock taken (by a load) past the busy timeout. Each is an outage to wait out, not a
/// fault: its answer is `UNAVAILABLE` (HTTP 503 where the request is refused whole), not an
/// INTERNAL error with a log reference. An outage is logged here (warn), as its answer
/// carries no reference; a pool that was only busy is not (`dartts_graphql_errors_total`
/// counts those).
pub fn is_unavailable(err: &sea_orm::DbErr) -> bool {
    let unavailable = cannot_serve(err);
    if unavailable
        && !matches!(
            err,
            sea_orm::DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout)
        )
    {
        tracing::warn!(error = %err, "the database cannot be reached");
    }
    unavailable
}

fn cannot_serve(err: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error;
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        // A pooled connection the database closed under a statement: shut down, restarted,
        // or the database dropped.
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed => true,
                busy if sqlite_busy(busy) => true,
                Error::Database(db) => db.code().is_some_and(|code| {
                    // PostgreSQL: connection exceptions (class 08), and the server shutting
                    // down or starting (57P01–57P03; not 57014, a cancelled statement).
                    code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
                }),
                _ => false,
            }
        }
        _ => false,
    }
}

/// SQLite's primary result code for a lock it could not take.
const SQLITE_BUSY: i32 = 5;

/// Whether SQLite refused a lock, whatever the extended code: past the busy timeout (a `dartts
/// load` or a purge holds the write lock for its whole transaction), or at once where waiting
/// could deadlock (`db::open` tries again then).
pub fn sqlite_busy(err: &sea_orm::sqlx::Error) -> bool {
    let sea_orm::sqlx::Error::Database(db) = err else {
        return false;
    };
    db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
        .is_some()
        && db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| code & 0xff == SQLITE_BUSY)
}

/// What an operator's command (`dartts load`, `dartts purge`) is told when SQLite's write lock
/// stayed taken: on the embedded default one process writes at a time, and a load or a purge
/// holds the lock until it commits.
pub fn sqlite_busy_hint(err: Option<&sea_orm::sqlx::Error>) -> &'static str {
    if err.is_some_and(sqlite_busy) {
        " (another load or a purge is writing to this SQLite database and held it longer than \
         this command waits for it: run this again once that one has finished)"
    } else {
        ""
    }
}

/// The sqlx error under a sea-orm one, if any.
pub fn sqlx_source(err: &sea_orm::DbErr) -> Option<&sea_orm::sqlx::Error> {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => Some(e.as_ref()),
        _ => None,
    }
}

/// What a request the database could not serve is told.
pub const UNAVAILABLE_MESSAGE: &str = "the database is busy or cannot be reached (a bulk load may be holding the data, or it is restarting); nothing was read, try again shortly";

/// What a request stopped at the time limit is told (`time_limit`, `admission`).
pub const TIMEOUT_MESSAGE: &str = "the query ran past the server's time limit (an analysis's wait for its turn among others included) and was stopped; nothing was delivered. Narrow it (a date range, an HS code, a country, fewer rows) or ask again when the server is less busy";

/// Logs an internal failure and returns the message clients see instead: every INTERNAL
/// answer, in GraphQL or not, carries the reference that finds the log line.
pub fn internal_message(detail: &dyn std::fmt::Display) -> String {
    let reference = uuid::Uuid::new_v4();
    tracing::error!(%reference, error = %detail, "internal error");
    format!("internal error (reference {reference})")
}

impl ApiError {
    /// What the client is told, in GraphQL or an export's refusal: the error's own message, the
    /// fixed text of an outage or the time limit, or for an internal failure the reference to
    /// its logged cause.
    pub fn client_message(self) -> String {
        match self {
            ApiError::BadUserInput(m)
            | ApiError::NotFound(m)
            | ApiError::ForbiddenField(m)
            | ApiError::Forbidden(m)
            | ApiError::Unauthenticated(m)
            | ApiError::AccountLocked(m) => m,
            ApiError::Unavailable => UNAVAILABLE_MESSAGE.to_owned(),
            ApiError::Timeout => TIMEOUT_MESSAGE.to_owned(),
            ApiError::Internal(source) => internal_message(&source),
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        let message = err.client_message();
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", code.as_str());
        async_graphql::Error {
            message,
            source: None,
            extensions: Some(extensions),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// How async-graphql's `InputValueError` messages start (an argument of the wrong shape, also
/// one found only at resolution, like a string given for an input object variable).
const INPUT_ERRORS: &[&str] = &["Failed to parse", "Expected input type"];

/// Gives every error in a response a code, hiding the text of any that has none.
///
/// Errors without a path come from parsing and validation of the document (safe to show,
/// suggestions are disabled). Errors with a path but no code escaped a resolver without
/// passing through `ApiError`; their text may hold internals, so it is replaced.
pub fn scrub(errors: &mut [ServerError]) {
    for error in errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if has_code {
            continue;
        }
        let code = if error.path.is_empty() {
            ErrorCode::GraphqlValidationFailed
        } else if INPUT_ERRORS.iter().any(|p| error.message.starts_with(p)) {
            // async-graphql's wording for an argument or variable of the wrong shape.
            ErrorCode::BadUserInput
        } else {
            error.message = internal_message(&error.message);
            ErrorCode::Internal
        };
        error
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default)
            .set("code", Value::from(code.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_source() {
        let err: async_graphql::Error =
            ApiError::Internal("password authentication failed for user dartts".into()).into();
        assert!(err.message.starts_with("internal error (reference "));
        assert!(!err.message.contains("password"));
        let code = err.extensions.as_ref().and_then(|e| e.get("code")).cloned();
        assert_eq!(code, Some(Value::from("INTERNAL")));
    }

    /// A write that finds SQLite's write lock taken past the busy timeout is an outage to wait
    /// out (`UNAVAILABLE`), not an INTERNAL error; a load that does is told what holds it.
    #[tokio::test]
    async fn a_taken_sqlite_write_lock_is_unavailable() {
        use sea_orm::{ConnectOptions, ConnectionTrait, Database, TransactionTrait};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let connect = || async {
            let mut options = ConnectOptions::new(url.clone());
            options.map_sqlx_sqlite_opts(|o| o.busy_timeout(std::time::Duration::ZERO));
            Database::connect(options).await.unwrap()
        };
        let holder = connect().await;
        holder
            .execute_unprepared("CREATE TABLE t (x INTEGER)")
            .await
            .unwrap();
        let held = holder.begin().await.unwrap();
        held.execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        let other = connect().await;
        let busy = || other.execute_unprepared("INSERT INTO t VALUES (2)");
        assert!(
            matches!(
                ApiError::from(busy().await.unwrap_err()),
                ApiError::Unavailable
            ),
            "a busy database is UNAVAILABLE"
        );
        // And a second load or a purge on the embedded default is told why it failed.
        let message = crate::ingest::IngestError::from(busy().await.unwrap_err()).to_string();
        assert!(message.contains("another load or a purge"), "{message}");
        let message = crate::purge::PurgeError::from(busy().await.unwrap_err()).to_string();
        assert!(message.contains("another load or a purge"), "{message}");
        held.rollback().await.unwrap();
    }

    #[test]
    fn uncoded_resolver_errors_are_scrubbed() {
        let mut errors = vec![
            ServerError {
                path: vec![async_graphql::PathSegment::Field("tradeRecords".into())],
                ..ServerError::new("relation \"trade_records\" does not exist", None)
            },
            ServerError::new("Unknown field \"x\"", None),
        ];
        scrub(&mut errors);
        assert!(!errors[0].message.contains("relation"));
        let code = |e: &ServerError| e.extensions.as_ref().and_then(|x| x.get("code")).cloned();
        assert_eq!(code(&errors[0]), Some(Value::from("INTERNAL")));
        assert_eq!(
            code(&errors[1]),
            Some(Value::from("GRAPHQL_VALIDATION_FAILED"))
        );
    }
}
