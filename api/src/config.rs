//! Typed settings, read once at start-up from an optional TOML file and `DARTTS_*` variables.
//!
//! Every value is validated here, before anything connects or listens, and a bad value stops
//! start-up with a message naming the setting, so an operator never has to guess which of a
//! dozen variables was wrong.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod operations;
mod secret;
mod sign_in;

pub use operations::Operations;
pub use secret::{Secret, SecretUrl};
pub use sign_in::{OidcLoginSettings, OidcSettings, TlsSettings, web_url};
use sign_in::{oidc_settings, tls_settings};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
    #[error("cannot read configuration: {0}")]
    Read(String),
}

/// Which deployment this process is: the foreign instance must never hold US-only data sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instance {
    Domestic,
    Foreign,
}

impl Instance {
    pub fn as_str(self) -> &'static str {
        match self {
            Instance::Domestic => "domestic",
            Instance::Foreign => "foreign",
        }
    }
}

pub const DEFAULT_LOGIN_MAX_FAILURES: u32 = 5;

/// Data and raw inputs are kept this many years after their load, then purged (DESIGN §3).
pub const DEFAULT_RETENTION_YEARS: u32 = 10;
/// Bounds for the retention period: below one year a typo could purge what was just loaded;
/// above a century the cutoff says "never", which is what not running `dartts purge` does.
pub const MIN_RETENTION_YEARS: u32 = 1;
pub const MAX_RETENTION_YEARS: u32 = 100;
/// Above this a lockout no longer slows guessing meaningfully.
pub const MAX_LOGIN_MAX_FAILURES: u32 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: SecretUrl,
    pub database_kind: DatabaseKind,
    /// Unset means the single-node embedded default.
    pub redis_url: Option<SecretUrl>,
    pub listen: SocketAddr,
    pub instance: Instance,
    /// Raw input files are kept here, content-addressed.
    pub data_dir: PathBuf,
    /// GraphiQL at `GET /graphql`; on by default only in the embedded default.
    pub graphiql: bool,
    /// Schema introspection; on by default only in the embedded default.
    pub introspection: bool,
    /// A directory with `roles.toml` and `fields.toml` replacing the built-in policy.
    pub policy_dir: Option<PathBuf>,
    /// Unset: tokens are signed locally (`dartts token`). Set: users sign in through SSO and
    /// locally signed tokens are refused.
    pub oidc: Option<OidcSettings>,
    /// Unset: no mTLS listener, so no password sign-in.
    pub tls: Option<TlsSettings>,
    /// Consecutive failed password sign-ins that lock an account.
    pub login_max_failures: u32,
    /// False only with `DARTTS_AUDIT=off-for-benchmarks`, to measure what auditing costs.
    pub audit: bool,
    /// Years a batch is kept after its load before `dartts purge` removes it.
    pub retention_years: u32,
    /// Freshness cadences and the metrics listener.
    pub operations: Operations,
    /// The audit chain's HMAC key (`DARTTS_AUDIT_KEY`, at least 32 characters); unset: a key
    /// generated into `<data_dir>/audit.key` (`audit::key`). The database never holds it.
    pub audit_key: Option<Secret>,
}

/// What the sources hold before validation: everything optional, everything a string, so a
/// wrong type is reported by us with the setting's name rather than by serde.
/// A key the file names that no setting has is refused: a misspelt setting would otherwise
/// leave its default in force without a word.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default, deserialize_with = "lenient")]
    database_url: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    redis_url: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    listen: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    instance: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    data_dir: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    graphiql: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    introspection: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    policy_dir: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    oidc_issuer: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    oidc_audience: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    oidc_username_claim: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    oidc_client_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    oidc_client_secret: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    oidc_redirect_url: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    tls_listen: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    tls_cert: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    tls_key: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    tls_client_ca: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    tls_client_crl: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    login_max_failures: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    audit: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    retention_years: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    sdn_cadence_days: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    subjects_cadence_days: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    metrics_listen: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    request_time_limit: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    analysis_concurrency: Option<String>,
    audit_key: Option<String>,
}

/// Accepts any scalar as text: figment types `DARTTS_GRAPHIQL=true` as a bool and
/// `DARTTS_LISTEN=8080` as a number, and we want to validate (and name) them ourselves.
fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Bool(bool),
        Int(i64),
        Float(f64),
    }
    Ok(Option::<Scalar>::deserialize(d)?.map(|v| match v {
        Scalar::Text(t) => t,
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
    }))
}

/// Every setting, as read from `DARTTS_<NAME>` or the TOML file; must match `Raw`'s fields.
const SETTINGS: &[&str] = &[
    "database_url",
    "redis_url",
    "listen",
    "instance",
    "data_dir",
    "graphiql",
    "introspection",
    "policy_dir",
    "oidc_issuer",
    "oidc_audience",
    "oidc_username_claim",
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_redirect_url",
    "tls_listen",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "tls_client_crl",
    "login_max_failures",
    "audit",
    "retention_years",
    "sdn_cadence_days",
    "subjects_cadence_days",
    "metrics_listen",
    "request_time_limit",
    "analysis_concurrency",
    "audit_key",
];

pub const DEFAULT_DATA_DIR: &str = "./dartts-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl Settings {
    /// Reads `config_file` (if given) then the environment; the environment wins.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = config_file {
            if !path.exists() {
                return Err(ConfigError::Invalid {
                    setting: "DARTTS_CONFIG",
                    reason: format!("file {} does not exist", path.display()),
                });
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(
            Env::prefixed("DARTTS_")
                .ignore(&["CONFIG"])
                .map(|k| k.as_str().to_ascii_lowercase().into())
                .only(SETTINGS),
        );
        let raw: Raw = figment
            .extract()
            .map_err(|e| ConfigError::Read(e.to_string()))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: Raw) -> Result<Self, ConfigError> {
        let data_dir =
            PathBuf::from(non_empty(raw.data_dir).unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned()));
        let (database_url, database_kind) = match non_empty(raw.database_url) {
            None => (
                SecretUrl(format!("sqlite://{}", data_dir.join("dartts.db").display())),
                DatabaseKind::Sqlite,
            ),
            Some(url) => {
                let kind = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    DatabaseKind::Postgres
                } else if url.starts_with("sqlite:") {
                    DatabaseKind::Sqlite
                } else {
                    return Err(ConfigError::Invalid {
                        setting: "DARTTS_DATABASE_URL",
                        reason: "expected a postgres://, postgresql:// or sqlite: URL".into(),
                    });
                };
                (SecretUrl(url), kind)
            }
        };
        let redis_url = match non_empty(raw.redis_url) {
            None => None,
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Some(SecretUrl(url))
            }
            Some(_) => {
                return Err(ConfigError::Invalid {
                    setting: "DARTTS_REDIS_URL",
                    reason: "expected a redis:// or rediss:// URL".into(),
                });
            }
        };
        let listen_text = non_empty(raw.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Invalid {
            setting: "DARTTS_LISTEN",
            reason: format!("{listen_text:?} is not an address:port such as 127.0.0.1:8080"),
        })?;
        let instance = match non_empty(raw.instance).as_deref() {
            None | Some("domestic") => Instance::Domestic,
            Some("foreign") => Instance::Foreign,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    setting: "DARTTS_INSTANCE",
                    reason: format!("{other:?} is neither \"domestic\" nor \"foreign\""),
                });
            }
        };
        let embedded = database_kind == DatabaseKind::Sqlite && redis_url.is_none();
        let graphiql = flag(raw.graphiql, embedded, "DARTTS_GRAPHIQL")?;
        let introspection = flag(raw.introspection, embedded, "DARTTS_INTROSPECTION")?;
        let oidc = oidc_settings(
            raw.oidc_issuer,
            raw.oidc_audience,
            raw.oidc_username_claim,
            raw.oidc_client_id,
            raw.oidc_client_secret,
            raw.oidc_redirect_url,
        )?;
        let tls = tls_settings(
            raw.tls_listen,
            raw.tls_cert,
            raw.tls_key,
            raw.tls_client_ca,
            raw.tls_client_crl,
        )?;
        let login_max_failures = match non_empty(raw.login_max_failures) {
            None => DEFAULT_LOGIN_MAX_FAILURES,
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LOGIN_MAX_FAILURES).contains(n))
                .ok_or_else(|| ConfigError::Invalid {
                    setting: "DARTTS_LOGIN_MAX_FAILURES",
                    reason: format!(
                        "{text:?} is not a whole number from 1 to {MAX_LOGIN_MAX_FAILURES}"
                    ),
                })?,
        };
        // Auditing can only be switched off by name, for the audit-cost benchmark, and never
        // where real users could reach the server.
        let audit = match non_empty(raw.audit).as_deref() {
            None | Some("on") => true,
            Some("off-for-benchmarks") if oidc.is_none() && tls.is_none() => false,
            Some("off-for-benchmarks") => {
                return Err(ConfigError::Invalid {
                    setting: "DARTTS_AUDIT",
                    reason:
                        "cannot be off while single sign-on or the partner listener is configured"
                            .into(),
                });
            }
            Some(other) => {
                return Err(ConfigError::Invalid {
                    setting: "DARTTS_AUDIT",
                    reason: format!("{other:?} is neither \"on\" nor \"off-for-benchmarks\""),
                });
            }
        };
        // Set but blank is a mistake, not "unset": the generated key file would be used while
        // the operator believes the key they keep elsewhere signs the chain.
        let audit_key = match raw.audit_key {
            Some(key) if key.trim().is_empty() => {
                return Err(ConfigError::Invalid {
                    setting: "DARTTS_AUDIT_KEY",
                    reason: "is set but blank (unset it to use the generated key file)".into(),
                });
            }
            Some(key) if key.len() < 32 => {
                return Err(ConfigError::Invalid {
                    setting: "DARTTS_AUDIT_KEY",
                    reason: "must be at least 32 characters (e.g. 64 hex digits)".into(),
                });
            }
            key => key.map(Secret),
        };
        let retention_years = match non_empty(raw.retention_years) {
            None => DEFAULT_RETENTION_YEARS,
            Some(text) => retention_years(&text).map_err(|reason| ConfigError::Invalid {
                setting: "DARTTS_RETENTION_YEARS",
                reason,
            })?,
        };
        let operations = operations::operations(
            raw.sdn_cadence_days,
            raw.subjects_cadence_days,
            raw.metrics_listen,
            raw.request_time_limit,
            raw.analysis_concurrency,
        )?;
        let policy_dir = non_empty(raw.policy_dir).map(PathBuf::from);
        if let Some(dir) = &policy_dir
            && !dir.is_dir()
        {
            return Err(ConfigError::Invalid {
                setting: "DARTTS_POLICY_DIR",
                reason: format!("{} is not a directory", dir.display()),
            });
        }
        Ok(Settings {
            database_url,
            database_kind,
            redis_url,
            listen,
            instance,
            data_dir,
            graphiql,
            introspection,
            policy_dir,
            oidc,
            tls,
            login_max_failures,
            audit,
            retention_years,
            operations,
            audit_key,
        })
    }

    /// The embedded default with its data in `dir`, for tests that need a real database.
    #[cfg(test)]
    pub fn embedded_in(dir: &Path) -> Self {
        let raw = Raw {
            data_dir: Some(dir.display().to_string()),
            ..Raw::default()
        };
        match Self::from_raw(raw) {
            Ok(settings) => settings,
            Err(e) => panic!("the embedded default is valid: {e}"),
        }
    }

    /// True when nothing points the server at shared infrastructure.
    pub fn is_embedded(&self) -> bool {
        self.database_kind == DatabaseKind::Sqlite && self.redis_url.is_none()
    }
}

/// A retention period in whole years, within the bounds; shared with `dartts purge
/// --older-than-years` so both say the same thing about the same mistake.
pub fn retention_years(text: &str) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (MIN_RETENTION_YEARS..=MAX_RETENTION_YEARS).contains(n))
        .ok_or_else(|| {
            format!(
                "{text:?} is not a whole number of years from {MIN_RETENTION_YEARS} to \
                 {MAX_RETENTION_YEARS}"
            )
        })
}

fn flag(value: Option<String>, default: bool, setting: &'static str) -> Result<bool, ConfigError> {
    match non_empty(value).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "on") => Ok(true),
        Some("false" | "0" | "off") => Ok(false),
        Some(other) => Err(ConfigError::Invalid {
            setting,
            reason: format!("{other:?} is not true or false"),
        }),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests;
