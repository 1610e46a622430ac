//! The settings of the two ways in besides local tokens: single sign-on through the agency's
//! OpenID provider (`DARTTS_OIDC_*`) and the partners' mTLS listener (`DARTTS_TLS_*`), each
//! validated as a group.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{ConfigError, Secret, non_empty};

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

const DEFAULT_OIDC_USERNAME_CLAIM: &str = "sub";

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
    /// PEM of those CAs' certificate revocation lists; re-read while serving (`server::tls`).
    pub client_crl: Option<PathBuf>,
}

/// Validates the `DARTTS_OIDC_*` group: all or nothing around the issuer, and the sign-in flow
/// (client id + redirect URL) all or nothing too.
pub(super) fn oidc_settings(
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

/// Validates the `DARTTS_TLS_*` group: the listener needs all three files (a revocation list is
/// optional), and the files mean nothing without the listener. The files must exist; their
/// contents are checked when the listener starts (`server::tls`), still before anything is
/// served.
pub(super) fn tls_settings(
    listen: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    client_crl: Option<String>,
) -> Result<Option<TlsSettings>, ConfigError> {
    let client_crl = non_empty(client_crl);
    let files = [
        (non_empty(cert), "DARTTS_TLS_CERT"),
        (non_empty(key), "DARTTS_TLS_KEY"),
        (non_empty(client_ca), "DARTTS_TLS_CLIENT_CA"),
    ];
    let Some(listen_text) = non_empty(listen) else {
        let crl = (client_crl.is_some(), "DARTTS_TLS_CLIENT_CRL");
        let set = files
            .iter()
            .map(|(value, setting)| (value.is_some(), *setting));
        if let Some((_, setting)) = set.chain([crl]).find(|(is_set, _)| *is_set) {
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
    let file = |setting, value: String| {
        let path = PathBuf::from(value);
        if !path.is_file() {
            return Err(ConfigError::Invalid {
                setting,
                reason: format!("{} is not a file", path.display()),
            });
        }
        Ok(path)
    };
    let [cert, key, client_ca] = files.map(|(value, setting)| {
        let value = value.ok_or_else(|| ConfigError::Invalid {
            setting,
            reason: "is required with DARTTS_TLS_LISTEN (a PEM file)".into(),
        })?;
        file(setting, value)
    });
    Ok(Some(TlsSettings {
        listen,
        cert: cert?,
        key: key?,
        client_ca: client_ca?,
        client_crl: client_crl
            .map(|value| file("DARTTS_TLS_CLIENT_CRL", value))
            .transpose()?,
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
