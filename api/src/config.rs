//! Typed settings, read once at start-up from an optional TOML file and `DARTTS_*` variables.
//!
//! Every value is validated here, before anything connects or listens, and a bad value stops
//! start-up with a message naming the setting, so an operator never has to guess which of a
//! dozen variables was wrong.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod operations;

pub use operations::Operations;

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

/// A connection URL whose password never reaches logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let userinfo = &self.0[scheme_end + 3..at];
                match userinfo.find(':') {
                    Some(colon) => format!(
                        "{}{}:***{}",
                        &self.0[..scheme_end + 3],
                        &userinfo[..colon],
                        &self.0[at..]
                    ),
                    None => self.0.clone(),
                }
            }
            _ => self.0.clone(),
        }
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A secret value (an OAuth client secret) that never reaches logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Single sign-on through the agency's OpenID provider (`DARTTS_OIDC_*`).
#[derive(Clone, Debug)]
pub struct OidcSettings {
    /// Exactly as the provider writes it in `iss`; discovery is `<issuer>/.well-known/…`.
    pub issuer: String,
    /// Must be one of the token's `aud` values: the API's identifier at the provider.
    pub audience: String,
    /// The claim holding the local account name (`sub`, `preferred_username`, `email`, …).
    pub username_claim: String,
    /// Set when the server drives the sign-in flow itself (`/auth/login`, `/auth/callback`).
    pub login: Option<OidcLoginSettings>,
}

#[derive(Clone, Debug)]
pub struct OidcLoginSettings {
    pub client_id: String,
    /// Unset for a public client (PKCE only); a confidential client's secret otherwise.
    pub client_secret: Option<Secret>,
    /// This server's own `…/auth/callback` URL, as registered at the provider.
    pub redirect_url: String,
}

pub const DEFAULT_OIDC_USERNAME_CLAIM: &str = "sub";

/// The foreign partners' mTLS listener (`DARTTS_TLS_*`): partners present a client certificate
/// signed by `client_ca`, then sign in with a password (`login`).
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    /// The server's certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM of the CA (or CAs) that sign partner client certificates.
    pub client_ca: PathBuf,
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
#[derive(Debug, Default, Deserialize)]
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
    "login_max_failures",
    "audit",
    "retention_years",
    "sdn_cadence_days",
    "subjects_cadence_days",
    "metrics_listen",
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
                SecretUrl(format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join("dartts.db").display()
                )),
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
        let tls = tls_settings(raw.tls_listen, raw.tls_cert, raw.tls_key, raw.tls_client_ca)?;
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
        let audit_key = match non_empty(raw.audit_key) {
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

/// Validates the `DARTTS_OIDC_*` group: all or nothing around the issuer, and the sign-in flow
/// (client id + redirect URL) all or nothing too.
fn oidc_settings(
    issuer: Option<String>,
    audience: Option<String>,
    username_claim: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    redirect_url: Option<String>,
) -> Result<Option<OidcSettings>, ConfigError> {
    let invalid = |setting, reason: &str| ConfigError::Invalid {
        setting,
        reason: reason.to_owned(),
    };
    let (audience, username_claim, client_id, client_secret, redirect_url) = (
        non_empty(audience),
        non_empty(username_claim),
        non_empty(client_id),
        non_empty(client_secret),
        non_empty(redirect_url),
    );
    let Some(issuer) = non_empty(issuer) else {
        // Any other OIDC setting without an issuer is a half-done configuration: say so
        // rather than silently running with local tokens.
        for (value, setting) in [
            (&audience, "DARTTS_OIDC_AUDIENCE"),
            (&username_claim, "DARTTS_OIDC_USERNAME_CLAIM"),
            (&client_id, "DARTTS_OIDC_CLIENT_ID"),
            (&client_secret, "DARTTS_OIDC_CLIENT_SECRET"),
            (&redirect_url, "DARTTS_OIDC_REDIRECT_URL"),
        ] {
            if value.is_some() {
                return Err(invalid(setting, "is set but DARTTS_OIDC_ISSUER is not"));
            }
        }
        return Ok(None);
    };
    web_url(&issuer, false).map_err(|reason| invalid("DARTTS_OIDC_ISSUER", &reason))?;
    let audience = audience.ok_or_else(|| {
        invalid(
            "DARTTS_OIDC_AUDIENCE",
            "is required with DARTTS_OIDC_ISSUER: the `aud` value the provider puts in tokens \
             for this API",
        )
    })?;
    let username_claim = username_claim.unwrap_or_else(|| DEFAULT_OIDC_USERNAME_CLAIM.to_owned());
    if !username_claim
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        return Err(invalid(
            "DARTTS_OIDC_USERNAME_CLAIM",
            "expected a claim name such as sub, preferred_username or email",
        ));
    }
    let login = match (client_id, redirect_url) {
        (None, None) => {
            if client_secret.is_some() {
                return Err(invalid(
                    "DARTTS_OIDC_CLIENT_SECRET",
                    "is set but DARTTS_OIDC_CLIENT_ID is not",
                ));
            }
            None
        }
        (None, Some(_)) => {
            return Err(invalid(
                "DARTTS_OIDC_CLIENT_ID",
                "is required with DARTTS_OIDC_REDIRECT_URL",
            ));
        }
        (Some(_), None) => {
            return Err(invalid(
                "DARTTS_OIDC_REDIRECT_URL",
                "is required with DARTTS_OIDC_CLIENT_ID: this server's own …/auth/callback URL",
            ));
        }
        (Some(client_id), Some(redirect_url)) => {
            let url = web_url(&redirect_url, true)
                .map_err(|reason| invalid("DARTTS_OIDC_REDIRECT_URL", &reason))?;
            if !url.path().ends_with("/auth/callback") {
                return Err(invalid(
                    "DARTTS_OIDC_REDIRECT_URL",
                    "must be this server's …/auth/callback URL",
                ));
            }
            Some(OidcLoginSettings {
                client_id,
                client_secret: client_secret.map(Secret),
                redirect_url,
            })
        }
    };
    Ok(Some(OidcSettings {
        issuer,
        audience,
        username_claim,
        login,
    }))
}

/// Validates the `DARTTS_TLS_*` group: the listener needs all three files, and the files mean
/// nothing without the listener. The files must exist; their contents are checked when the
/// listener starts (`server::tls`), still before anything is served.
fn tls_settings(
    listen: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
) -> Result<Option<TlsSettings>, ConfigError> {
    let files = [
        (non_empty(cert), "DARTTS_TLS_CERT"),
        (non_empty(key), "DARTTS_TLS_KEY"),
        (non_empty(client_ca), "DARTTS_TLS_CLIENT_CA"),
    ];
    let Some(listen_text) = non_empty(listen) else {
        if let Some((_, setting)) = files.iter().find(|(value, _)| value.is_some()) {
            return Err(ConfigError::Invalid {
                setting,
                reason: "is set but DARTTS_TLS_LISTEN is not".into(),
            });
        }
        return Ok(None);
    };
    let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Invalid {
        setting: "DARTTS_TLS_LISTEN",
        reason: format!("{listen_text:?} is not an address:port such as 0.0.0.0:8443"),
    })?;
    let [cert, key, client_ca] = files.map(|(value, setting)| {
        let path = PathBuf::from(value.ok_or_else(|| ConfigError::Invalid {
            setting,
            reason: "is required with DARTTS_TLS_LISTEN (a PEM file)".into(),
        })?);
        if !path.is_file() {
            return Err(ConfigError::Invalid {
                setting,
                reason: format!("{} is not a file", path.display()),
            });
        }
        Ok(path)
    });
    Ok(Some(TlsSettings {
        listen,
        cert: cert?,
        key: key?,
        client_ca: client_ca?,
    }))
}

/// An absolute https URL, or http on a loopback host (a provider or server on the same
/// machine, as in tests and development): tokens and codes never cross a network in clear.
pub fn web_url(text: &str, allow_query: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if loopback => {}
        _ => {
            return Err(format!(
                "{text:?} must be an https:// URL (http:// only for a loopback host)"
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?} must not carry credentials or a #fragment"
        ));
    }
    if !allow_query && url.query().is_some() {
        return Err(format!("{text:?} must not carry a ?query"));
    }
    Ok(url)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests;
