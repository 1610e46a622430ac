//! Black-box test harness: runs the real `dartts` binary against a real database and talks to
//! it over HTTP, as a client would.
//!
//! PostgreSQL comes from `DARTTS_TEST_DATABASE_URL` (set by `scripts/test`, which installs and
//! starts it); every `TestEnv` gets a fresh database of its own, so tests run in parallel.
//! SQLite environments use a file in a temporary directory.

pub mod http_stub;
pub mod oidc;
pub mod redis;
mod server;

pub use server::{Server, Session, error_codes, nodes, without_cursors};

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, Statement, TransactionTrait,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The `dartts-under-test` binary cargo built beside the test executables (cargo only exposes
/// `CARGO_BIN_EXE_*` to integration-test sources, not to this shared library, so we look where
/// cargo puts it: the parent of the `deps/` directory holding the running test).
pub fn bin() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_dartts-under-test") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| {
            if deps.ends_with("deps") {
                deps.parent()
            } else {
                Some(deps)
            }
        })
        .expect("target directory");
    let candidate = profile_dir.join(format!("dartts-under-test{}", std::env::consts::EXE_SUFFIX));
    assert!(
        candidate.exists(),
        "{} not built; run the suite with scripts/test",
        candidate.display()
    );
    candidate
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// `data/samples` in the repository: the real data sets the tests load (a clone needs nothing
/// beside itself; larger sets outside the repository are for benchmarks only).
pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples")
}

/// A path as the command line takes it (the tests' paths are all UTF-8).
pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The lines of a text fixture (the first of a CSV is its header).
pub fn fixture_lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(fixture(name))
        .expect("fixture")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The declaration ids of the records behind a connection's `edges` (analysis results, whose
/// nodes carry a `record`), in the order served.
pub fn record_ids(edges: &Value) -> Vec<String> {
    edges
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            e["node"]["record"]["declarationId"]
                .as_str()
                .expect("declarationId")
                .to_owned()
        })
        .collect()
}

fn postgres_base() -> String {
    std::env::var("DARTTS_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("DARTTS_TEST_DATABASE_URL is not set: run the suite with scripts/test")
    })
}

/// Replaces the database name in a `postgres://…/name` URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let stem = base.rsplit_once('/').map_or(base, |(stem, _)| stem);
    match query {
        Some(q) => format!("{stem}/{name}?{q}"),
        None => format!("{stem}/{name}"),
    }
}

pub struct TestEnv {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    pub extra_env: Vec<(String, String)>,
}

impl TestEnv {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
            Backend::Postgres => {
                let base = postgres_base();
                let admin = Database::connect(&base).await.unwrap_or_else(|e| {
                    panic!("cannot reach the test PostgreSQL at DARTTS_TEST_DATABASE_URL: {e}")
                });
                let name = format!("dartts_t_{}", uuid_like());
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                with_database(&base, &name)
            }
        };
        TestEnv {
            backend,
            dir,
            database_url,
            extra_env: Vec::new(),
        }
    }

    /// Serves with the repository's policy, edited by text replacements in `roles.toml` (how
    /// the tests give a role a small quota). Each replacement must apply.
    pub fn with_roles_edited(self, edits: &[(&str, &str)]) -> Self {
        self.with_policy_edited(&PolicyEdits {
            roles: edits,
            fields: &[],
        })
    }

    /// Serves (and runs the CLI) with the repository's policy, edited by text replacements in
    /// `roles.toml` and `fields.toml`. Each replacement must apply. Every call writes a
    /// directory of its own, so a server started before keeps the policy it was given.
    pub fn with_policy_edited(self, edits: &PolicyEdits<'_>) -> Self {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let target = tempfile::Builder::new()
            .prefix("policies")
            .tempdir_in(self.dir.path())
            .expect("policy dir")
            // Removed with `self.dir`, after every server using it.
            .keep();
        for (file, edits) in [("roles.toml", edits.roles), ("fields.toml", edits.fields)] {
            let mut text = std::fs::read_to_string(source.join(file)).expect(file);
            for (from, to) in edits {
                assert!(text.contains(from), "{file} has no {from:?}");
                text = text.replace(from, to);
            }
            std::fs::write(target.join(file), text).expect(file);
        }
        let dir = target.to_str().expect("utf-8").to_owned();
        self.with_env("DARTTS_POLICY_DIR", &dir)
    }

    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A `/metrics` listener on a port the server picks itself (`Server::metrics` reads the
    /// address it announces). Probing for a free port here and handing it over would race with
    /// anything else binding ports in between.
    pub fn with_metrics(self) -> Self {
        self.with_env("DARTTS_METRICS_LISTEN", "127.0.0.1:0")
    }

    /// Takes back a variable given with `with_env`.
    pub fn without_env(mut self, key: &str) -> Self {
        self.extra_env.retain(|(k, _)| k != key);
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(bin());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("USER", "test-operator")
            .env("DARTTS_DATABASE_URL", &self.database_url)
            .env("DARTTS_DATA_DIR", self.dir.path().join("data"))
            .env("DARTTS_LOG", "warn");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `dartts <args>` to completion.
    pub async fn run(&self, args: &[&str]) -> Run {
        let output = self
            .command()
            .args(args)
            .output()
            .await
            .expect("run dartts");
        Run::from(output)
    }

    /// Runs `dartts <args>` with `input` on its standard input (`user set-password`).
    pub async fn run_with_input(&self, args: &[&str], input: &str) -> Run {
        use tokio::io::AsyncWriteExt;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dartts");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.as_bytes())
            .await
            .expect("write stdin");
        drop(stdin);
        Run::from(child.wait_with_output().await.expect("run dartts"))
    }

    /// Runs `dartts load …` and asserts it succeeded.
    pub async fn load_ok(&self, args: &[&str]) -> Run {
        let mut full = vec!["load"];
        full.extend_from_slice(args);
        let run = self.run(&full).await;
        assert!(
            run.ok,
            "dartts {full:?} failed:\n{}\n{}",
            run.stdout, run.stderr
        );
        run
    }

    /// Loads the 10-row canonical trade fixture as US data (what most tests start from).
    pub async fn load_trade_fixture(&self) -> Run {
        let path = fixture("trade_canonical.csv");
        self.load_ok(&["trade", path.to_str().expect("path"), "--provider", "US"])
            .await
    }

    /// Six US lines that link to FinCEN reports by name or not at all
    /// (`trade_no_importer_ids.csv`): four without an importer id (one name in another case,
    /// one the canonical fixture's Acme, one no report names), one without any importer, and
    /// one whose id no report carries under a name reports do.
    pub async fn load_trade_without_importer_ids(&self) -> Run {
        let path = fixture("trade_no_importer_ids.csv");
        self.load_ok(&["trade", path.to_str().expect("path"), "--provider", "US"])
            .await
    }

    /// The US fixture (`trade_canonical.csv`) as a foreign instance receives it for
    /// `partner`: written by `dartts export-foreign` on a domestic instance of its own
    /// (pseudonymized, the rows with that partner only), then loaded here as US rows — the only
    /// way US rows enter a foreign instance.
    pub async fn load_us_exported_for(&self, partner: &str) -> Run {
        let domestic = TestEnv::new(Backend::Sqlite).await.with_env(
            "DARTTS_PSEUDONYM_KEY",
            "test-pseudonym-key-0123456789abcdef",
        );
        domestic.load_trade_fixture().await;
        let out = self.dir.path().join(format!("us-for-{partner}.csv"));
        let out = out.to_str().expect("utf-8 path");
        let run = domestic
            .run(&["export-foreign", "--partner", partner, "--out", out])
            .await;
        assert!(run.ok, "{}", run.stderr);
        self.load_ok(&["trade", out, "--provider", "US"]).await
    }

    /// Loads one of the Korea Customs synthetic files (`train`, `valid` or `test`: 37,385,
    /// 8,134 and 8,481 rows) through the `kcs` profile, as Korean data.
    pub async fn load_kcs(&self, split: &str) -> Run {
        let file = samples().join(format!("customs/kcs_synthetic/df_syn_{split}_eng.csv"));
        let path = file.to_str().expect("utf-8 path");
        self.load_ok(&["trade", path, "--profile", "kcs", "--provider", "KR"])
            .await
    }

    /// Creates an ACTIVE account and returns a token for it, through the CLI an operator uses.
    pub async fn user(&self, username: &str, role: &str, nation: Option<&str>) -> String {
        let mut args = vec!["user", "add", username, "--role", role];
        if let Some(n) = nation {
            args.extend(["--nation", n]);
        }
        let run = self.run(&args).await;
        assert!(run.ok, "user add {username}: {}", run.stderr);
        self.token(username).await
    }

    pub async fn token(&self, username: &str) -> String {
        let run = self.run(&["token", username]).await;
        assert!(run.ok, "token {username}: {}", run.stderr);
        run.stdout.trim().to_owned()
    }

    /// A token signed with this environment's local key for any subject and claims: how the
    /// tests impersonate a forger who stole nothing, or an SSO user without an account.
    pub fn forge_local_token(&self, header: &Value, claims: &Value) -> String {
        let key = std::fs::read(self.dir.path().join("data/local-token.key"))
            .expect("local key (start the server or issue a token first)");
        sign_hs256(&key, header, claims)
    }

    /// A valid local token for `subject`, whether or not an account exists.
    pub fn local_token_for(&self, subject: &str) -> String {
        let key = std::fs::read(self.dir.path().join("data/local-token.key")).expect("local key");
        let now = unix_now();
        sign_hs256(
            &key,
            &json!({ "alg": "HS256", "typ": "JWT", "kid": key_id(&key) }),
            &json!({ "sub": subject, "iss": "dartts-local", "aud": "dartts", "exp": now + 600, "nbf": now - 5, "iat": now - 5 }),
        )
    }

    /// A connection as the server makes it: on SQLite, with the audit log's file attached
    /// (`dartts::db::attach_audit`), where the audit tables are.
    pub async fn db(&self) -> DatabaseConnection {
        let mut options = sea_orm::ConnectOptions::new(self.database_url.clone());
        if self.backend == Backend::Sqlite {
            options.map_sqlx_sqlite_pool_opts(|o| {
                o.after_connect(|connection, _| Box::pin(dartts::db::attach_audit(connection)))
            });
        }
        Database::connect(options)
            .await
            .expect("connect to test database")
    }

    /// A transaction of its own that has run `statement` (a `LOCK TABLE`, a read) and stays
    /// open, holding what it took, until the caller commits or rolls it back.
    pub async fn holding(&self, statement: &str) -> DatabaseTransaction {
        let tx = self.db().await.begin().await.expect("begin");
        tx.execute_unprepared(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e:?}"));
        tx
    }

    /// Returns once some statement waits for a lock on `table` (PostgreSQL); fails the test
    /// after two minutes.
    pub async fn until_waiting_for(&self, table: &str) {
        let waiting = format!(
            "SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass AND NOT granted"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while self.scalar(&waiting).await == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing ever waited for {table}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Drops this environment's PostgreSQL database under whatever is connected to it, as an
    /// outage that does not come back would leave a server.
    pub async fn drop_database(&self) {
        assert_eq!(self.backend, Backend::Postgres, "a PostgreSQL environment");
        let name = self
            .database_url
            .split('?')
            .next()
            .and_then(|url| url.rsplit('/').next())
            .expect("database name");
        let admin = Database::connect(&postgres_base())
            .await
            .expect("test PostgreSQL");
        admin
            .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .expect("drop the test database");
        admin.close().await.ok();
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// The first column of the one row `sql` returns, as an integer.
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.one_value(sql).await
    }

    /// The first column of the one row `sql` returns, as text.
    pub async fn text(&self, sql: &str) -> String {
        self.one_value(sql).await
    }

    async fn one_value<T: sea_orm::TryGetable>(&self, sql: &str) -> T {
        let db = self.db().await;
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .expect("query")
            .expect("one row");
        let value = row
            .try_get_by_index(0)
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        db.close().await.ok();
        value
    }

    /// Starts `dartts serve` on a free loopback port and waits until it listens.
    pub async fn serve(&self) -> Server {
        self.serve_at("127.0.0.1:0").await
    }

    /// `serve` on a given address, for a server whose URL must be known in advance.
    pub async fn serve_at(&self, listen: &str) -> Server {
        self.start(listen).await.0
    }

    /// `serve` with the partners' mTLS listener configured (`DARTTS_TLS_*` given with
    /// `with_env`); also returns that listener's `https://127.0.0.1:<port>` base, which the
    /// server announces before the plain one.
    pub async fn serve_mtls(&self) -> (Server, String) {
        let (server, mtls) = self.start("127.0.0.1:0").await;
        let mtls = mtls.unwrap_or_else(|| panic!("no mTLS listener announced ({})", server.base));
        (server, mtls)
    }

    async fn start(&self, listen: &str) -> (Server, Option<String>) {
        let mut child = self
            .command()
            .arg("serve")
            .env("DARTTS_LISTEN", listen)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn dartts serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let mut mtls = None;
        let mut metrics = None;
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read stderr") {
                if let Some(rest) = line.split("dartts: metrics at ").nth(1) {
                    metrics = Some(rest.trim().to_owned());
                }
                if let Some(rest) = line.split("serving mTLS GraphQL at ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    mtls = Some(url.trim_end_matches("/graphql").to_owned());
                }
                if let Some(rest) = line.split("serving GraphQL at ").nth(1) {
                    return Some(rest.trim().trim_end_matches("/graphql").to_owned());
                }
                seen.push(line);
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("dartts serve did not start:\n{}", seen.join("\n")));
        // Keep draining stderr so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let server = Server {
            _child: child,
            base,
            metrics,
            http: reqwest::Client::new(),
            token: None,
        };
        (server, mtls)
    }

    /// `serve`, with requests sent as a freshly created analyst who may read everything.
    pub async fn serve_as_analyst(&self) -> Server {
        let token = self.user("analyst", "HSI_ANALYST", None).await;
        let mut server = self.serve().await;
        server.token = Some(token);
        server
    }
}

/// Text replacements in the repository's `roles.toml` and `fields.toml`
/// (`TestEnv::with_policy_edited`).
pub struct PolicyEdits<'a> {
    pub roles: &'a [(&'a str, &'a str)],
    pub fields: &'a [(&'a str, &'a str)],
}

/// A policy under which a role reads financial and subject records only in part: HSI_AGENT
/// loses TRADE_PII, and the subject's identity in FinCEN reports and the person's name in TECS
/// records become TRADE_PII. No shipped role has such a view (each of those record types is one
/// category), so without it a filter on a hidden field of theirs could not be tried.
pub const AGENT_WITHOUT_PII: PolicyEdits<'static> = PolicyEdits {
    roles: &[(
        "description = \"HSI special agent\"\nallow = [\"TRADE\", \"TRADE_PII\", \"FINANCIAL\"",
        "description = \"HSI special agent\"\nallow = [\"TRADE\", \"FINANCIAL\"",
    )],
    fields: &[
        (
            "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\n",
            "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\nsubjectName = \"TRADE_PII\"\nsubjectTin = \"TRADE_PII\"\naccountNumber = \"TRADE_PII\"\n",
        ),
        (
            "[SubjectRecord]\n\"*\" = \"LAW_ENFORCEMENT\"\n",
            "[SubjectRecord]\n\"*\" = \"LAW_ENFORCEMENT\"\nname = \"TRADE_PII\"\n",
        ),
    ],
};

/// A policy under which HSI_ANALYST may read financial and subject records but not the fields
/// `financialTransactions` and `subjectRecords` order their pages by (`transactionDate`,
/// `recordId`, made TRADE_PII here): the order alone would rank the hidden values. The same
/// for two analysis connections, whose cursors carry their keys' values: a mirror pair's HS
/// code and a mismatch's subject TIN.
pub const ANALYST_WITHOUT_SORT_FIELDS: PolicyEdits<'static> = PolicyEdits {
    roles: &[(
        "description = \"HSI intelligence / trade analyst\"\nallow = [\"TRADE\", \"TRADE_PII\", \"FINANCIAL\"",
        "description = \"HSI intelligence / trade analyst\"\nallow = [\"TRADE\", \"FINANCIAL\"",
    )],
    fields: &[
        (
            "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\n",
            "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\ntransactionDate = \"TRADE_PII\"\n",
        ),
        (
            "[SubjectRecord]\n\"*\" = \"LAW_ENFORCEMENT\"\n",
            "[SubjectRecord]\n\"*\" = \"LAW_ENFORCEMENT\"\nrecordId = \"TRADE_PII\"\n",
        ),
        (
            "[MirrorDiscrepancy]\n\"*\" = \"TRADE\"\n",
            "[MirrorDiscrepancy]\n\"*\" = \"TRADE\"\nhsCode = \"TRADE_PII\"\n",
        ),
        (
            "[TradeFinanceMismatch]\n\"*\" = \"FINANCIAL\"\n",
            "[TradeFinanceMismatch]\n\"*\" = \"FINANCIAL\"\nsubjectTin = \"TRADE_PII\"\n",
        ),
    ],
};

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The key id the server derives for its local key (first 8 bytes of its SHA-256, in hex).
pub fn key_id(key: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A compact JWS, HS256, written out by hand so the tests depend on no JWT library's choices.
pub fn sign_hs256(key: &[u8], header: &Value, claims: &Value) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::Mac;
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("hmac key");
    mac.update(format!("{h}.{c}").as_bytes());
    format!(
        "{h}.{c}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}_{:x}", nanos, std::process::id())
}

#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The id of the batch a successful `dartts load` reports first ("batch N: …").
    pub fn batch_id(&self) -> i64 {
        self.stdout
            .strip_prefix("batch ")
            .and_then(|rest| rest.split(':').next())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no batch id in {:?}", self.stdout))
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            ok: o.status.success(),
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}
