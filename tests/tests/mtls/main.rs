//! The foreign partners' sign-in as a partner (and an attacker) meets it: the mTLS listener's
//! handshake, `login` with a password, the token bound to the client certificate, throttling
//! and lockout, and what a request without a token may ask for.
//!
//! The PKI is made at test time with rcgen: a server CA and the server's certificate, a partner
//! CA with a Korean and a Chinese partner certificate (C=KR, C=CN), and a rogue CA whose client
//! certificate the server must not trust. Withdrawing a certificate: `revocation`.

mod revocation;

use std::time::{Duration, Instant};

use dartts_tests::{Backend, TestEnv, error_codes};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const LOGIN: &str = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token expiresIn tokenType } }";
const ME: &str = "{ me { username nation } }";

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed CA");
    (cert.pem(), Issuer::new(params, key))
}

/// Serial numbers of the partner certificates, which revocation lists name.
const KR_SERIAL: u64 = 0x1001;
const CN_SERIAL: u64 = 0x1002;

/// A leaf certificate with serial number `serial`, and its key, both PEM.
fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    serial: u64,
    names: &[&str],
    cn: &str,
    country: Option<&str>,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    params.serial_number = Some(serial.into());
    params.distinguished_name.push(DnType::CommonName, cn);
    if let Some(c) = country {
        params.distinguished_name.push(DnType::CountryName, c);
    }
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("signed leaf");
    (cert.pem(), key.serialize_pem())
}

struct Pki {
    server_ca: String,
    /// Signs the partner certificates and their revocation lists.
    partner_ca: Issuer<'static, KeyPair>,
    rogue_ca: Issuer<'static, KeyPair>,
    kr: reqwest::Identity,
    cn: reqwest::Identity,
    rogue: reqwest::Identity,
    /// The test's directory, where the server's files are.
    dir: std::path::PathBuf,
}

/// Writes the server's files into `env`'s directory, sets `DARTTS_TLS_*`, and returns the
/// client side.
fn with_pki(env: TestEnv) -> (TestEnv, Pki) {
    let (server_ca, server_issuer) = ca("DARTTS test server CA");
    let (partner_ca, partner_issuer) = ca("DARTTS test partner CA");
    let (_, rogue_issuer) = ca("Someone else's CA");
    let (server_cert, server_key) = leaf(
        &server_issuer,
        1,
        &["localhost", "127.0.0.1"],
        "dartts.test",
        None,
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let identity = |issuer: &Issuer<'static, KeyPair>, serial: u64, cn: &str, country: &str| {
        let (cert, key) = leaf(
            issuer,
            serial,
            &[],
            cn,
            Some(country),
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        reqwest::Identity::from_pem(format!("{key}{cert}").as_bytes()).expect("identity")
    };
    let pki = Pki {
        server_ca,
        kr: identity(
            &partner_issuer,
            KR_SERIAL,
            "KCS trade transparency unit",
            "KR",
        ),
        cn: identity(
            &partner_issuer,
            CN_SERIAL,
            "GACC trade transparency unit",
            "CN",
        ),
        rogue: identity(&rogue_issuer, 0x1003, "KCS trade transparency unit", "KR"),
        partner_ca: partner_issuer,
        rogue_ca: rogue_issuer,
        dir: env.dir.path().to_owned(),
    };
    let write = |name: &str, pem: &str| {
        let path = env.dir.path().join(name);
        std::fs::write(&path, pem).expect("write pem");
        path.to_str().expect("utf-8 path").to_owned()
    };
    let (cert, key, ca) = (
        write("server.pem", &server_cert),
        write("server.key", &server_key),
        write("partner-ca.pem", &partner_ca),
    );
    let env = env
        .with_env("DARTTS_INSTANCE", "foreign")
        .with_env("DARTTS_TLS_LISTEN", "127.0.0.1:0")
        .with_env("DARTTS_TLS_CERT", &cert)
        .with_env("DARTTS_TLS_KEY", &key)
        .with_env("DARTTS_TLS_CLIENT_CA", &ca);
    (env, pki)
}

impl Pki {
    /// An HTTPS client trusting only the test server CA, presenting `identity` if given.
    fn client(&self, identity: Option<&reqwest::Identity>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.server_ca.as_bytes()).expect("server CA"),
            );
        if let Some(identity) = identity {
            builder = builder.identity(identity.clone());
        }
        builder.build().expect("client")
    }
}

struct Answer {
    status: u16,
    body: Value,
    cache_control: Option<String>,
}

impl Answer {
    fn codes(&self) -> Vec<String> {
        error_codes(&self.body)
    }
}

async fn try_post(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    variables: Value,
    token: Option<&str>,
) -> Result<Answer, reqwest::Error> {
    let mut request = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let cache_control = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.json().await?;
    Ok(Answer {
        status,
        body,
        cache_control,
    })
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    variables: Value,
    token: Option<&str>,
) -> Answer {
    try_post(client, base, query, variables, token)
        .await
        .unwrap_or_else(|e| panic!("POST {base}/graphql: {e:?}"))
}

async fn login(client: &reqwest::Client, base: &str, username: &str, password: &str) -> Answer {
    post(
        client,
        base,
        LOGIN,
        json!({ "u": username, "p": password }),
        None,
    )
    .await
}

/// Creates a partner account with `PASSWORD`, through the operator's CLI.
async fn partner(env: &TestEnv, username: &str, nation: &str) {
    let run = env
        .run(&[
            "user",
            "add",
            username,
            "--role",
            "FOREIGN_PARTNER",
            "--nation",
            nation,
        ])
        .await;
    assert!(run.ok, "user add {username}: {}", run.stderr);
    let run = env
        .run_with_input(
            &["user", "set-password", username],
            &format!("{PASSWORD}\n"),
        )
        .await;
    assert!(run.ok, "set-password {username}: {}", run.stderr);
}

#[tokio::test]
async fn the_handshake_needs_a_certificate_from_the_partner_ca() {
    let (env, pki) = with_pki(TestEnv::new(Backend::Sqlite).await);
    let (_server, mtls) = env.serve_mtls().await;

    for (name, client) in [
        ("no client certificate", pki.client(None)),
        (
            "a certificate from another CA",
            pki.client(Some(&pki.rogue)),
        ),
    ] {
        let result = try_post(&client, &mtls, ME, json!({}), None).await;
        assert!(
            result.is_err(),
            "{name}: reached a handler ({:?})",
            result.ok().map(|a| a.body)
        );
    }
    // A partner certificate gets through the handshake, and still needs a token for data.
    let answer = post(&pki.client(Some(&pki.kr)), &mtls, ME, json!({}), None).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.codes(), vec!["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn a_partner_token_works_only_with_its_own_certificate() {
    let (env, pki) = with_pki(TestEnv::new(Backend::Postgres).await);
    partner(&env, "kr-partner", "KR").await;
    partner(&env, "cn-partner", "CN").await;
    let admin = env.user("admin", "ADMIN", None).await;
    let (server, mtls) = env.serve_mtls().await;
    let kr = pki.client(Some(&pki.kr));
    let cn = pki.client(Some(&pki.cn));

    let answer = login(&kr, &mtls, "kr-partner", PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.get("errors").is_none(), "{}", answer.body);
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    let result = &answer.body["data"]["login"];
    assert_eq!(result["tokenType"], "Bearer");
    assert_eq!(result["expiresIn"], 3600);
    let token = result["token"].as_str().expect("token").to_owned();
    assert_eq!(
        env.scalar(
            "SELECT COUNT(*) FROM users WHERE username = 'kr-partner' AND last_login_at IS NOT NULL"
        )
        .await,
        1
    );

    // The same certificate: the partner's own account and nation.
    let me = post(&kr, &mtls, ME, json!({}), Some(&token)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(
        me.body["data"]["me"],
        json!({ "username": "kr-partner", "nation": "KR" })
    );
    // Another partner's certificate (same CA, valid handshake): the token is not theirs.
    let stolen = post(&cn, &mtls, ME, json!({}), Some(&token)).await;
    assert_eq!(stolen.status, 401, "{}", stolen.body);
    assert_eq!(stolen.codes(), vec!["UNAUTHENTICATED"]);
    // Plain HTTP: no certificate at all.
    let (status, body) = server.session(Some(&token)).post(ME, json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(error_codes(&body), vec!["UNAUTHENTICATED"]);

    // A partner certificate cannot be used with another nation's password.
    let crossed = login(&cn, &mtls, "kr-partner", PASSWORD).await;
    assert_eq!(crossed.codes(), vec!["UNAUTHENTICATED"], "{}", crossed.body);
    let own = login(&cn, &mtls, "cn-partner", PASSWORD).await;
    assert!(own.body.get("errors").is_none(), "{}", own.body);

    // Without a token, the mTLS listener runs `login` and nothing else.
    for query in [
        "{ tradeRecords { totalCount } }",
        r#"mutation { login(username: "kr-partner", password: "x") { token } disableUser(username: "cn-partner") { id } }"#,
        r#"mutation { login(username: "kr-partner", password: "x") { token } __typename }"#,
        r#"mutation { ... on Mutation { disableUser(username: "cn-partner") { id } } }"#,
        r#"query { login(username: "kr-partner", password: "x") { token } }"#,
    ] {
        let answer = post(&kr, &mtls, query, json!({}), None).await;
        assert_eq!(answer.status, 401, "{query}: {}", answer.body);
        assert_eq!(answer.codes(), vec!["UNAUTHENTICATED"], "{query}");
        assert_eq!(answer.body["data"], Value::Null, "{query}");
    }
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM users WHERE status = 'ACTIVE'")
            .await,
        3,
        "nothing was disabled"
    );
    // The plain listener has no certificate, so `login` needs a token there, and with one it
    // is still refused: signing in with a password is for the partners' listener only.
    let (status, body) = server
        .session(None)
        .post(LOGIN, json!({ "u": "kr-partner", "p": PASSWORD }))
        .await;
    assert_eq!(
        (status, error_codes(&body)),
        (401, vec!["UNAUTHENTICATED".to_owned()])
    );
    let body = server
        .session(Some(&admin))
        .gql(LOGIN, json!({ "u": "kr-partner", "p": PASSWORD }))
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN_FIELD"], "{body}");
    // An expired or foreign Authorization header does not stand in the way of signing in.
    let again = post(
        &kr,
        &mtls,
        LOGIN,
        json!({ "u": "kr-partner", "p": PASSWORD }),
        Some("not-a-token"),
    )
    .await;
    assert!(again.body.get("errors").is_none(), "{}", again.body);
}

#[tokio::test]
async fn failed_sign_ins_are_slow_alike_and_lock_the_account() {
    let (env, pki) = with_pki(
        TestEnv::new(Backend::Postgres)
            .await
            .with_env("DARTTS_LOGIN_MAX_FAILURES", "3"),
    );
    partner(&env, "kr-partner", "KR").await;
    partner(&env, "kr-other", "KR").await;
    let (_server, mtls) = env.serve_mtls().await;
    let kr = pki.client(Some(&pki.kr));

    // An unknown username and a wrong password: the same code, the same message, both slowed.
    let timed = |username: &'static str| {
        let kr = kr.clone();
        let mtls = mtls.clone();
        async move {
            let started = Instant::now();
            let answer = login(&kr, &mtls, username, "wrong password!").await;
            (answer, started.elapsed())
        }
    };
    let (unknown, unknown_took) = timed("nobody").await;
    let (wrong, wrong_took) = timed("kr-other").await;
    assert_eq!(unknown.codes(), vec!["UNAUTHENTICATED"], "{}", unknown.body);
    assert_eq!(wrong.codes(), vec!["UNAUTHENTICATED"], "{}", wrong.body);
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(
        unknown.body["errors"][0]["message"],
        wrong.body["errors"][0]["message"]
    );
    for took in [unknown_took, wrong_took] {
        assert!(
            took >= Duration::from_millis(900),
            "{took:?}: not throttled"
        );
    }

    // A token from before the lock.
    let before = login(&kr, &mtls, "kr-partner", PASSWORD).await;
    let token = before.body["data"]["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned();

    // Three aliased guesses in one request: three attempts, one after the other, each slowed.
    let guesses = r#"mutation {
        a: login(username: "kr-partner", password: "guess one") { token }
        b: login(username: "kr-partner", password: "guess two") { token }
        c: login(username: "kr-partner", password: "guess three") { token }
    }"#;
    let started = Instant::now();
    let answer = post(&kr, &mtls, guesses, json!({}), None).await;
    let took = started.elapsed();
    assert_eq!(
        answer.codes(),
        vec!["UNAUTHENTICATED"; 3],
        "{}",
        answer.body
    );
    assert!(
        took >= Duration::from_millis(2700),
        "{took:?}: aliases not throttled one by one"
    );
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM users WHERE username = 'kr-partner' AND status = 'LOCKED' AND failed_logins = 3")
            .await,
        1
    );

    // Locked: the right password does not open it, and the earlier token stops working.
    let locked = login(&kr, &mtls, "kr-partner", PASSWORD).await;
    assert_eq!(locked.codes(), vec!["ACCOUNT_LOCKED"], "{}", locked.body);
    let me = post(&kr, &mtls, ME, json!({}), Some(&token)).await;
    assert_eq!(
        (me.status, me.codes()),
        (403, vec!["ACCOUNT_LOCKED".to_owned()])
    );
    // Another account is not affected, and its one failure above is forgotten on success.
    let other = login(&kr, &mtls, "kr-other", PASSWORD).await;
    assert!(other.body.get("errors").is_none(), "{}", other.body);
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM users WHERE username = 'kr-other' AND failed_logins = 0")
            .await,
        1
    );

    // A new password clears the count but not the lock: unlocking is an administrator's act.
    let run = env
        .run_with_input(
            &["user", "set-password", "kr-partner"],
            "another long passphrase\n",
        )
        .await;
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM users WHERE username = 'kr-partner' AND status = 'LOCKED' AND failed_logins = 0")
            .await,
        1
    );

    // Every attempt is in the audit log, and no password ever is.
    assert!(env.scalar("SELECT COUNT(*) FROM audit_events WHERE event_type = 'login_failed' AND actor = 'kr-partner'").await >= 3);
    assert_eq!(
        env.scalar(
            "SELECT COUNT(*) FROM audit_events WHERE event_type = 'login_ok' AND actor = 'kr-other'"
        )
        .await,
        1
    );
    assert_eq!(
        env.scalar(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE detail LIKE '%{PASSWORD}%'"
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn set_password_refuses_weak_input_and_unknown_accounts() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.user("kr-partner", "FOREIGN_PARTNER", Some("KR")).await;
    for (args, input, message) in [
        (
            vec!["user", "set-password", "kr-partner"],
            "short\n",
            "at least 12 characters",
        ),
        (
            vec!["user", "set-password", "kr-partner"],
            "",
            "no password on standard input",
        ),
        (
            vec!["user", "set-password", "nobody"],
            "long enough password\n",
            "no account named",
        ),
        (
            vec!["user", "set-password", "kr-partner"],
            "long enough\0password\n",
            "without control characters",
        ),
        (
            vec!["user", "set-password", "kr-partner"],
            "long enough password\nand another one\n",
            "more than one line",
        ),
    ] {
        let run = env.run_with_input(&args, input).await;
        assert!(!run.ok, "{args:?} {input:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    let run = env
        .run_with_input(
            &["user", "set-password", "kr-partner"],
            "long enough password\r\n\n",
        )
        .await;
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM users WHERE password_hash LIKE '$argon2id$%'")
            .await,
        1
    );
}

#[tokio::test]
async fn tls_settings_are_checked_at_start_up() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let garbage = env.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");
    let garbage = garbage.to_str().expect("utf-8").to_owned();
    let (good, _) = with_pki(TestEnv::new(Backend::Sqlite).await);
    let setting = |key: &str| {
        good.extra_env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .expect("setting")
    };
    for (env, named) in [
        (
            TestEnv::new(Backend::Sqlite)
                .await
                .with_env("DARTTS_TLS_CERT", &setting("DARTTS_TLS_CERT")),
            "DARTTS_TLS_CERT",
        ),
        (
            TestEnv::new(Backend::Sqlite)
                .await
                .with_env("DARTTS_TLS_LISTEN", "127.0.0.1:0")
                .with_env("DARTTS_TLS_CERT", &setting("DARTTS_TLS_CERT"))
                .with_env("DARTTS_TLS_KEY", &setting("DARTTS_TLS_KEY"))
                .with_env("DARTTS_TLS_CLIENT_CA", &garbage),
            "DARTTS_TLS_CLIENT_CA",
        ),
        (
            TestEnv::new(Backend::Sqlite)
                .await
                .with_env("DARTTS_TLS_LISTEN", "127.0.0.1:0")
                .with_env("DARTTS_TLS_CERT", &setting("DARTTS_TLS_CERT"))
                .with_env("DARTTS_TLS_KEY", &garbage)
                .with_env("DARTTS_TLS_CLIENT_CA", &setting("DARTTS_TLS_CLIENT_CA")),
            "DARTTS_TLS_KEY",
        ),
    ] {
        let run = env.run(&["serve"]).await;
        assert_eq!(run.code, Some(1), "{named}: {run:?}");
        assert!(run.stderr.contains(named), "{named}: {}", run.stderr);
    }
    // With partners signing in over mTLS, the plain listener may leave loopback (health probes
    // and operators inside the deployment); nothing is sent to it here, it only has to start.
    let _server = good.serve_at("0.0.0.0:0").await;
}

/// The nested-fragment document inside a pre-auth `login`: before sign-in, nothing but the
/// client certificate stands in front of it, so it must be refused before validation.
#[tokio::test]
async fn a_costly_login_document_is_refused_before_validation() {
    let (env, pki) = with_pki(TestEnv::new(Backend::Sqlite).await);
    let (_server, mtls) = env.serve_mtls().await;
    let kr = pki.client(Some(&pki.kr));
    let mut attack = String::from(
        "mutation { login(username: \"x\", password: \"y\") { ...F22 } }\n\
         fragment F0 on LoginResult { token }\n",
    );
    for n in 1..=22 {
        attack.push_str(&format!(
            "fragment F{n} on LoginResult {{ ...F{m} ...F{m} }}\n",
            m = n - 1
        ));
    }
    // The handshake is not what is measured.
    post(&kr, &mtls, ME, json!({}), None).await;
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let answer = post(&kr, &mtls, &attack, json!({}), None).await;
        best = best.min(started.elapsed());
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert_eq!(answer.codes(), vec!["QUERY_TOO_COMPLEX"], "{}", answer.body);
    }
    assert!(best < Duration::from_millis(50), "refused after {best:?}");
}
