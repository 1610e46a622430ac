//! Authentication as an attacker meets it: no token, forged tokens, expired and not-yet-valid
//! tokens, wrong issuer or audience, unknown key ids, and accounts that are not active.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dartts_tests::{Backend, Server, TestEnv, error_codes, key_id, sign_hs256, unix_now};
use serde_json::{Value, json};

const ME: &str = "{ me { username role } }";

async fn refused(server: &Server, token: Option<&str>) -> (u16, Vec<String>, Value) {
    let (status, body) = server.session(token).post(ME, json!({})).await;
    (status, error_codes(&body), body)
}

#[tokio::test]
async fn forged_and_stale_tokens_are_refused() {
    let env = TestEnv::new(Backend::Postgres).await;
    let good = env.user("alice", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let (status, body) = server.session(Some(&good)).post(ME, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["username"], "alice");

    let key = std::fs::read(env.dir.path().join("data/local-token.key")).expect("key file");
    let kid = key_id(&key);
    let header = json!({ "alg": "HS256", "typ": "JWT", "kid": kid });
    let claims = |overrides: Value| {
        let mut c = json!({ "sub": "alice", "iss": "dartts-local", "aud": "dartts", "exp": unix_now() + 600, "nbf": unix_now() - 10, "iat": unix_now() - 10 });
        for (k, v) in overrides.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    // Sanity: the hand-made signer is right, so each refusal below is about the one thing changed.
    let (status, _, body) = refused(
        &server,
        Some(&sign_hs256(&key, &header, &claims(json!({})))),
    )
    .await;
    assert_eq!(status, 200, "hand-signed control token should work: {body}");

    let none_header =
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT", "kid": kid }).to_string());
    let none_claims = URL_SAFE_NO_PAD.encode(claims(json!({})).to_string());
    let cases: Vec<(&str, String)> = vec![
        ("alg none", format!("{none_header}.{none_claims}.")),
        (
            "other key",
            sign_hs256(&[9u8; 32], &header, &claims(json!({}))),
        ),
        (
            "expired",
            sign_hs256(&key, &header, &claims(json!({ "exp": unix_now() - 3600 }))),
        ),
        (
            "not yet valid",
            sign_hs256(&key, &header, &claims(json!({ "nbf": unix_now() + 3600 }))),
        ),
        (
            "wrong issuer",
            sign_hs256(
                &key,
                &header,
                &claims(json!({ "iss": "https://evil.example" })),
            ),
        ),
        (
            "wrong audience",
            sign_hs256(&key, &header, &claims(json!({ "aud": "other-api" }))),
        ),
        (
            "unknown kid",
            sign_hs256(
                &key,
                &json!({ "alg": "HS256", "typ": "JWT", "kid": "0000000000000000" }),
                &claims(json!({})),
            ),
        ),
        (
            "no kid",
            sign_hs256(
                &key,
                &json!({ "alg": "HS256", "typ": "JWT" }),
                &claims(json!({})),
            ),
        ),
        (
            "RS256 header",
            sign_hs256(
                &key,
                &json!({ "alg": "RS256", "typ": "JWT", "kid": kid }),
                &claims(json!({})),
            ),
        ),
        ("no exp", {
            let mut c = claims(json!({}));
            c.as_object_mut().expect("object").remove("exp");
            sign_hs256(&key, &header, &c)
        }),
        (
            "unknown account",
            sign_hs256(&key, &header, &claims(json!({ "sub": "mallory" }))),
        ),
        ("tampered payload", {
            let t = sign_hs256(&key, &header, &claims(json!({})));
            let parts: Vec<&str> = t.split('.').collect();
            let evil = URL_SAFE_NO_PAD.encode(claims(json!({ "sub": "admin" })).to_string());
            format!("{}.{evil}.{}", parts[0], parts[2])
        }),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    for (name, token) in cases {
        let (status, codes, body) = refused(&server, Some(&token)).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(codes, vec!["UNAUTHENTICATED".to_owned()], "{name}: {body}");
        assert_eq!(body["data"], Value::Null, "{name}");
        let text = body.to_string();
        assert!(
            !text.contains("expired") && !text.contains("signature"),
            "{name}: the reason leaks: {text}"
        );
    }
    let (status, codes, _) = refused(&server, None).await;
    assert_eq!((status, codes), (401, vec!["UNAUTHENTICATED".to_owned()]));
    let basic = server
        .http
        .post(server.url("/graphql"))
        .header("authorization", "Basic YWxpY2U6cHc=")
        .json(&json!({ "query": ME }))
        .send()
        .await
        .expect("send");
    assert_eq!(basic.status(), 401);
    assert_eq!(basic.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn only_active_accounts_get_data() {
    let env = TestEnv::new(Backend::Postgres).await;
    let token = env.user("bob", "CBP_OFFICER", None).await;
    let pending = env.user("carol", "CBP_OFFICER", None).await;
    let server = env.serve().await;
    assert_eq!(
        server.session(Some(&token)).post(ME, json!({})).await.0,
        200
    );

    let run = env.run(&["user", "disable", "bob"]).await;
    assert!(run.ok, "{}", run.stderr);
    // The very next request is refused: status is read per request, not baked into the token.
    let (status, codes, _) = refused(&server, Some(&token)).await;
    assert_eq!((status, codes), (403, vec!["ACCOUNT_DISABLED".to_owned()]));
    let run = env.run(&["token", "bob"]).await;
    assert!(!run.ok && run.stderr.contains("DISABLED"), "{}", run.stderr);

    env.db()
        .await
        .execute_unprepared("UPDATE users SET status = 'PENDING' WHERE username = 'carol'")
        .await
        .expect("update");
    let (status, codes, _) = refused(&server, Some(&pending)).await;
    assert_eq!((status, codes), (403, vec!["FORBIDDEN".to_owned()]));
}

#[tokio::test]
async fn account_rules_are_enforced_by_the_cli() {
    let env = TestEnv::new(Backend::Sqlite).await;
    for (args, message) in [
        (
            vec!["user", "add", "x", "--role", "SUPERUSER"],
            "unknown role",
        ),
        (
            vec!["user", "add", "x", "--role", "FOREIGN_PARTNER"],
            "give --nation",
        ),
        (
            vec!["user", "add", "x", "--role", "HSI_AGENT", "--nation", "KR"],
            "does not apply",
        ),
        (
            vec![
                "user",
                "add",
                "x",
                "--role",
                "FOREIGN_PARTNER",
                "--nation",
                "Korea",
            ],
            "not an ISO 3166",
        ),
        // As "US" a nation scope would read every US declaration, real importers included.
        (
            vec![
                "user",
                "add",
                "x",
                "--role",
                "FOREIGN_PARTNER",
                "--nation",
                "us",
            ],
            "US is this system's own nation",
        ),
        (
            vec!["user", "add", "a b", "--role", "HSI_AGENT"],
            "username must be",
        ),
        // Letters that look like ASCII ones (full-width S, Cyrillic a) would make look-alikes.
        (
            vec!["user", "add", "\u{ff33}qana", "--role", "HSI_AGENT"],
            "username must be",
        ),
        (
            vec!["user", "add", "sq\u{430}na", "--role", "HSI_AGENT"],
            "username must be",
        ),
        (vec!["token", "nobody"], "no account named"),
    ] {
        let run = env.run(&args).await;
        assert!(!run.ok, "{args:?} should fail");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    env.user("kr1", "FOREIGN_PARTNER", Some("kr")).await;
    for name in ["kr1", "KR1", "Kr1"] {
        let run = env.run(&["user", "add", name, "--role", "ADMIN"]).await;
        assert!(
            !run.ok && run.stderr.contains("\"kr1\" already exists"),
            "{name}: {}",
            run.stderr
        );
    }
    env.user("first.last+tt@agency.test", "ADMIN", None).await;
    let list = env.run(&["user", "list"]).await;
    assert!(
        list.stdout.contains("kr1")
            && list.stdout.contains("FOREIGN_PARTNER")
            && list.stdout.contains("KR"),
        "{}",
        list.stdout
    );
    // `dartts token` prints the token alone on stdout, ready for `$(dartts token kr1)`.
    let token = env.run(&["token", "kr1"]).await;
    assert_eq!(token.stdout.trim().split('.').count(), 3);
    assert_eq!(token.stdout.lines().count(), 1);
}

#[tokio::test]
async fn introspection_follows_configuration() {
    let env = TestEnv::new(Backend::Postgres).await;
    let token = env.user("dana", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    // PostgreSQL configured: not the embedded default, so introspection is off by default.
    let body = server
        .session(Some(&token))
        .gql(r#"{ __schema { types { name } } __type(name: "FinancialTransaction") { fields { name } } }"#, json!({}))
        .await;
    assert_eq!(body["data"]["__schema"], Value::Null, "{body}");
    assert_eq!(body["data"]["__type"], Value::Null, "{body}");
    assert!(!body.to_string().contains("amountUsd"), "{body}");
    drop(server);
    let open = env.with_env("DARTTS_INTROSPECTION", "true");
    let server = open.serve().await;
    let body = server
        .session(Some(&token))
        .data("{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(body["__schema"]["queryType"]["name"], "Query");
}

use sea_orm::ConnectionTrait;
