//! Typed settings, read once at start-up from an optional TOML file and `DARTTS_*` variables.
//!
//! Every value is validated here, before anything connects or listens, and a bad value stops
//! start-up with a message naming the setting, so an operator never has to guess which of a
//! dozen variables was wrong.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
}

/// What the sources hold before validation: everything optional, everything a string, so a
/// wrong type is reported by us with the setting's name rather than by serde.
#[derive(Debug, Default, Deserialize)]
struct Raw {
    database_url: Option<String>,
    redis_url: Option<String>,
    listen: Option<String>,
    instance: Option<String>,
    data_dir: Option<String>,
    graphiql: Option<String>,
}

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
        // Strings only: `DARTTS_LISTEN=8080` must not become an integer before we validate it.
        figment = figment.merge(
            Env::prefixed("DARTTS_")
                .ignore(&["CONFIG"])
                .map(|k| k.as_str().to_ascii_lowercase().into())
                .only(&[
                    "database_url",
                    "redis_url",
                    "listen",
                    "instance",
                    "data_dir",
                    "graphiql",
                ]),
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
        let graphiql = match non_empty(raw.graphiql).as_deref() {
            None => embedded,
            Some("true" | "1" | "on") => true,
            Some("false" | "0" | "off") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    setting: "DARTTS_GRAPHIQL",
                    reason: format!("{other:?} is not true or false"),
                });
            }
        };
        Ok(Settings {
            database_url,
            database_kind,
            redis_url,
            listen,
            instance,
            data_dir,
            graphiql,
        })
    }

    /// True when nothing points the server at shared infrastructure.
    pub fn is_embedded(&self) -> bool {
        self.database_kind == DatabaseKind::Sqlite && self.redis_url.is_none()
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> Raw {
        Raw::default()
    }

    #[test]
    fn defaults_are_the_embedded_single_node() {
        let s = Settings::from_raw(raw()).unwrap();
        assert_eq!(s.database_kind, DatabaseKind::Sqlite);
        assert!(s.is_embedded());
        assert!(s.graphiql);
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.instance, Instance::Domestic);
        assert!(s.database_url.expose().contains("dartts-data"));
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (raw, setting) in [
            (
                Raw {
                    listen: Some("8080".into()),
                    ..raw()
                },
                "DARTTS_LISTEN",
            ),
            (
                Raw {
                    instance: Some("mars".into()),
                    ..raw()
                },
                "DARTTS_INSTANCE",
            ),
            (
                Raw {
                    database_url: Some("mysql://x".into()),
                    ..raw()
                },
                "DARTTS_DATABASE_URL",
            ),
            (
                Raw {
                    redis_url: Some("http://x".into()),
                    ..raw()
                },
                "DARTTS_REDIS_URL",
            ),
            (
                Raw {
                    graphiql: Some("maybe".into()),
                    ..raw()
                },
                "DARTTS_GRAPHIQL",
            ),
        ] {
            let err = Settings::from_raw(raw).unwrap_err();
            assert!(
                err.to_string().contains(setting),
                "{err} should name {setting}"
            );
        }
    }

    #[test]
    fn passwords_are_redacted() {
        let url = SecretUrl("postgres://dartts:hunter2@db:5432/dartts".into());
        assert_eq!(format!("{url:?}"), "postgres://dartts:***@db:5432/dartts");
        assert!(!url.to_string().contains("hunter2"));
        let no_password = SecretUrl("postgres://dartts@db/dartts".into());
        assert_eq!(no_password.redacted(), "postgres://dartts@db/dartts");
    }
}
