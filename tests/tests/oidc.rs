//! Domestic single sign-on against a real OpenID provider (npm `oidc-provider`, started by the
//! harness): provider tokens map to local accounts, forgeries and mis-issued tokens are refused,
//! key rotation is picked up with one key-set fetch, and the server-driven sign-in
//! (`/auth/login` → provider → `/auth/callback`) works and cannot be replayed.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dartts_tests::oidc::{self, AUDIENCE, OTHER_AUDIENCE, OidcProvider, free_port, no_redirects};
use dartts_tests::{Backend, Server, TestEnv, error_codes};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Url;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

const ME: &str = "{ me { username role nation status } }";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Creates an ACTIVE account through the CLI (`TestEnv::user` also fetches a local token,
/// which a server with SSO refuses to hand out).
async fn add_user(env: &TestEnv, username: &str, role: &str, nation: Option<&str>) {
    let mut args = vec!["user", "add", username, "--role", role];
    if let Some(n) = nation {
        args.extend(["--nation", n]);
    }
    let run = env.run(&args).await;
    assert!(run.ok, "user add {username}: {}", run.stderr);
}

async fn call(server: &Server, token: &str) -> (u16, Vec<String>, Value) {
    let (status, body) = server.session(Some(token)).post(ME, json!({})).await;
    (status, error_codes(&body), body)
}

async fn assert_refused(server: &Server, name: &str, token: &str) {
    let (status, codes, body) = call(server, token).await;
    assert_eq!(status, 401, "{name}: {body}");
    assert_eq!(codes, vec!["UNAUTHENTICATED".to_owned()], "{name}: {body}");
    assert_eq!(body["data"], Value::Null, "{name}");
}

/// Signs `claims` with a PEM private key under the given algorithm and key id.
fn sign(alg: Algorithm, pem: &Value, kid: Option<&str>, claims: &Value) -> String {
    let pem = pem.as_str().expect("PEM").as_bytes();
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    }
    .expect("private key");
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// HS256 over `header.claims` with an arbitrary secret, written by hand so any header works.
fn sign_hmac(secret: &[u8], header: &Value, claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret);
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature =
        jsonwebtoken::crypto::sign(format!("{h}.{c}").as_bytes(), &key, Algorithm::HS256)
            .expect("hmac");
    format!("{h}.{c}.{signature}")
}

#[tokio::test]
async fn provider_tokens_map_to_local_accounts() {
    let provider = OidcProvider::start().await;
    let env = TestEnv::new(Backend::Postgres).await;
    // Issued before SSO is configured, with the same key the server will hold.
    let local = env.user("alice", "HSI_ANALYST", None).await;
    let env = provider.bearer_env(env);
    add_user(&env, "kr1", "FOREIGN_PARTNER", Some("KR")).await;
    add_user(&env, "bob", "CBP_OFFICER", None).await;
    let run = env.run(&["user", "disable", "bob"]).await;
    assert!(run.ok, "{}", run.stderr);

    // `dartts token` is refused outright once a provider is configured.
    let run = env.run(&["token", "alice"]).await;
    assert!(!run.ok, "dartts token must fail with SSO configured");
    assert!(
        run.stderr.contains("DARTTS_OIDC_ISSUER") && run.stdout.is_empty(),
        "{}",
        run.stderr
    );

    let server = env.serve().await;
    let alice = provider.access_token("alice", AUDIENCE).await;
    let (status, _, body) = call(&server, &alice).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["username"], "alice");
    assert_eq!(body["data"]["me"]["role"], "HSI_ANALYST", "the local role");

    let kr = provider.access_token("kr1", AUDIENCE).await;
    let (status, _, body) = call(&server, &kr).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["role"], "FOREIGN_PARTNER");
    assert_eq!(body["data"]["me"]["nation"], "KR");

    // Signed in at the provider, but no local account: not authenticated here.
    let mallory = provider.access_token("mallory", AUDIENCE).await;
    assert_refused(&server, "no local account", &mallory).await;
    // A real token from the provider, for another API.
    let other = provider.access_token("alice", OTHER_AUDIENCE).await;
    assert_refused(&server, "wrong audience", &other).await;
    // The local account's status wins over the provider's word.
    let bob = provider.access_token("bob", AUDIENCE).await;
    let (status, codes, body) = call(&server, &bob).await;
    assert_eq!(
        (status, codes),
        (403, vec!["ACCOUNT_DISABLED".to_owned()]),
        "{body}"
    );
    // Local tokens are refused once SSO is configured, even validly signed ones.
    assert_refused(&server, "local token", &local).await;

    // Without a client configured there is no server-driven sign-in.
    let login = no_redirects()
        .get(server.url("/auth/login"))
        .send()
        .await
        .expect("GET /auth/login");
    assert_eq!(login.status(), 404);
    let body: Value = login.json().await.expect("JSON");
    assert_eq!(body["code"], "NOT_FOUND", "{body}");
}

#[tokio::test]
async fn forged_and_misissued_provider_tokens_are_refused() {
    let provider = OidcProvider::start().await;
    let env = provider.bearer_env(TestEnv::new(Backend::Sqlite).await);
    add_user(&env, "alice", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let keys = provider.keys().await;
    let (rsa, ec, outsider) = (&keys["rsa"], &keys["ec"], &keys["outsider"]);
    let rsa_kid = rsa["kid"].as_str().expect("kid");
    let ec_kid = ec["kid"].as_str().expect("kid");
    let claims = |overrides: Value| {
        let mut c = json!({
            "sub": "alice", "iss": provider.issuer, "aud": AUDIENCE,
            "exp": now() + 600, "nbf": now() - 10, "iat": now() - 10,
        });
        for (k, v) in overrides.as_object().expect("object") {
            if v.is_null() {
                c.as_object_mut().expect("object").remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };

    // Controls: the provider's own keys and the right claims pass, so each refusal below is
    // about the one thing changed.
    for (name, token) in [
        (
            "RS256",
            sign(
                Algorithm::RS256,
                &rsa["privatePem"],
                Some(rsa_kid),
                &claims(json!({})),
            ),
        ),
        (
            "ES256",
            sign(
                Algorithm::ES256,
                &ec["privatePem"],
                Some(ec_kid),
                &claims(json!({})),
            ),
        ),
        (
            // `nbf` is checked when present; many providers leave it out of access tokens.
            "no nbf",
            sign(
                Algorithm::RS256,
                &rsa["privatePem"],
                Some(rsa_kid),
                &claims(json!({ "nbf": null })),
            ),
        ),
        (
            "audience list",
            sign(
                Algorithm::RS256,
                &rsa["privatePem"],
                Some(rsa_kid),
                &claims(json!({ "aud": [OTHER_AUDIENCE, AUDIENCE] })),
            ),
        ),
        (
            // Roles in the token are ignored: the local account decides.
            "role claims",
            sign(
                Algorithm::RS256,
                &rsa["privatePem"],
                Some(rsa_kid),
                &claims(
                    json!({ "role": "ADMIN", "roles": ["ADMIN"], "nation": "KR", "groups": ["ADMIN"] }),
                ),
            ),
        ),
    ] {
        let (status, _, body) = call(&server, &token).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["data"]["me"]["role"], "HSI_ANALYST", "{name}");
        assert_eq!(body["data"]["me"]["nation"], Value::Null, "{name}");
    }

    let rs256 = |c: Value| {
        sign(
            Algorithm::RS256,
            &rsa["privatePem"],
            Some(rsa_kid),
            &claims(c),
        )
    };
    let good_claims = claims(json!({}));
    let none_token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT", "kid": rsa_kid }).to_string()),
        URL_SAFE_NO_PAD.encode(good_claims.to_string())
    );
    let hs256_header = json!({ "alg": "HS256", "typ": "JWT", "kid": rsa_kid });
    let jwks: Value = reqwest::get(format!("{}/jwks", provider.issuer))
        .await
        .expect("GET jwks")
        .json()
        .await
        .expect("JSON");
    let rsa_jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == rsa_kid)
        .expect("RSA key published")
        .clone();
    let modulus = URL_SAFE_NO_PAD
        .decode(rsa_jwk["n"].as_str().expect("n"))
        .expect("base64");
    let mut cases: Vec<(&str, String)> = vec![
        (
            "expired",
            rs256(json!({ "exp": now() - 3600, "nbf": now() - 7200 })),
        ),
        ("not yet valid", rs256(json!({ "nbf": now() + 3600 }))),
        ("no exp", rs256(json!({ "exp": null }))),
        ("wrong audience", rs256(json!({ "aud": OTHER_AUDIENCE }))),
        ("no audience", rs256(json!({ "aud": null }))),
        ("no subject", rs256(json!({ "sub": null }))),
        ("unknown subject", rs256(json!({ "sub": "mallory" }))),
        ("alg none", none_token),
        // The key-confusion forgery: HS256 keyed with what the provider publishes.
        (
            "HS256 with the SPKI PEM",
            sign_hmac(
                rsa["publicPem"].as_str().expect("pem").as_bytes(),
                &hs256_header,
                &good_claims,
            ),
        ),
        (
            "HS256 with the PKCS#1 PEM",
            sign_hmac(
                rsa["publicPkcs1Pem"].as_str().expect("pem").as_bytes(),
                &hs256_header,
                &good_claims,
            ),
        ),
        (
            "HS256 with the JWK",
            sign_hmac(rsa_jwk.to_string().as_bytes(), &hs256_header, &good_claims),
        ),
        (
            "HS256 with the modulus",
            sign_hmac(&modulus, &hs256_header, &good_claims),
        ),
        // Right key, algorithm outside the allow-list or not the key's.
        (
            "RS384",
            sign(
                Algorithm::RS384,
                &rsa["privatePem"],
                Some(rsa_kid),
                &good_claims,
            ),
        ),
        (
            "PS256",
            sign(
                Algorithm::PS256,
                &rsa["privatePem"],
                Some(rsa_kid),
                &good_claims,
            ),
        ),
        (
            "EC key named by an RSA kid",
            sign(
                Algorithm::ES256,
                &ec["privatePem"],
                Some(rsa_kid),
                &good_claims,
            ),
        ),
        (
            "RSA key named by an EC kid",
            sign(
                Algorithm::RS256,
                &rsa["privatePem"],
                Some(ec_kid),
                &good_claims,
            ),
        ),
        // A key the provider does not have.
        (
            "outsider key, provider's kid",
            sign(
                Algorithm::RS256,
                &outsider["privatePem"],
                Some(rsa_kid),
                &good_claims,
            ),
        ),
        (
            "outsider key, own kid",
            sign(
                Algorithm::RS256,
                &outsider["privatePem"],
                outsider["kid"].as_str(),
                &good_claims,
            ),
        ),
        (
            "no kid",
            sign(Algorithm::RS256, &rsa["privatePem"], None, &good_claims),
        ),
        ("tampered payload", {
            let t = rs256(json!({}));
            let parts: Vec<&str> = t.split('.').collect();
            let evil = URL_SAFE_NO_PAD.encode(claims(json!({ "sub": "admin" })).to_string());
            format!("{}.{evil}.{}", parts[0], parts[2])
        }),
    ];
    // Another issuer signing with the provider's key is not this provider.
    cases.push((
        "wrong issuer",
        rs256(json!({ "iss": format!("{}/other", provider.issuer) })),
    ));
    for (name, token) in cases {
        assert_refused(&server, name, &token).await;
    }
    // Nothing about the reason reaches the client.
    let (_, _, body) = call(&server, &rs256(json!({ "exp": now() - 3600 }))).await;
    let text = body.to_string();
    assert!(
        !text.contains("xpired") && !text.contains("signature") && !text.contains("kid"),
        "{text}"
    );
}

#[tokio::test]
async fn the_username_claim_is_configurable() {
    let provider = OidcProvider::start().await;
    let env = provider
        .bearer_env(TestEnv::new(Backend::Sqlite).await)
        .with_env("DARTTS_OIDC_USERNAME_CLAIM", "preferred_username");
    add_user(&env, "alice", "CBP_OFFICER", None).await;
    let server = env.serve().await;
    let keys = provider.keys().await;
    let rsa = &keys["rsa"];
    let claims = |extra: Value| {
        let mut c = json!({
            "sub": "f3a9-opaque-id", "iss": provider.issuer, "aud": AUDIENCE,
            "exp": now() + 600, "nbf": now() - 10,
        });
        for (k, v) in extra.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    let kid = rsa["kid"].as_str();
    let token = sign(
        Algorithm::RS256,
        &rsa["privatePem"],
        kid,
        &claims(json!({ "preferred_username": "alice" })),
    );
    let (status, _, body) = call(&server, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["username"], "alice");
    // The real provider puts preferred_username in its access tokens too.
    let real = provider.access_token("alice", AUDIENCE).await;
    assert_eq!(call(&server, &real).await.0, 200);
    let no_claim = sign(
        Algorithm::RS256,
        &rsa["privatePem"],
        kid,
        &claims(json!({})),
    );
    assert_refused(&server, "no preferred_username", &no_claim).await;
    let not_text = sign(
        Algorithm::RS256,
        &rsa["privatePem"],
        kid,
        &claims(json!({ "preferred_username": ["alice"] })),
    );
    assert_refused(&server, "preferred_username not a string", &not_text).await;
}

#[tokio::test]
async fn an_unknown_key_id_fetches_the_key_set_once() {
    let provider = OidcProvider::start().await;
    let env = provider.bearer_env(TestEnv::new(Backend::Sqlite).await);
    add_user(&env, "alice", "HSI_ANALYST", None).await;
    let before = provider.access_token("alice", AUDIENCE).await;
    let server = env.serve().await;
    let fetched = |stats: Value| stats["jwks"].as_i64().expect("count");
    let at_start = fetched(provider.stats().await);
    assert_eq!(at_start, 1, "start-up fetches the key set once");
    assert_eq!(call(&server, &before).await.0, 200);

    let new_kid = provider.rotate().await;
    let after = provider.access_token("alice", AUDIENCE).await;
    let header = jsonwebtoken::decode_header(&after).expect("header");
    assert_eq!(
        header.kid.as_deref(),
        Some(new_kid.as_str()),
        "signed with the new key"
    );
    let (status, _, body) = call(&server, &after).await;
    assert_eq!(status, 200, "a rotated key is picked up: {body}");
    assert_eq!(fetched(provider.stats().await), at_start + 1, "one refetch");
    // Known from now on: no further fetches, and the old key still works.
    assert_eq!(call(&server, &after).await.0, 200);
    assert_eq!(call(&server, &before).await.0, 200);
    assert_eq!(fetched(provider.stats().await), at_start + 1);

    // Made-up key ids right after a refetch do not make the server fetch again.
    let outsider = &provider.keys().await["outsider"];
    for i in 0..5 {
        let kid = format!("made-up-{i}");
        let claims = json!({
            "sub": "alice", "iss": provider.issuer, "aud": AUDIENCE,
            "exp": now() + 600, "nbf": now() - 10,
        });
        let token = sign(
            Algorithm::RS256,
            &outsider["privatePem"],
            Some(&kid),
            &claims,
        );
        assert_refused(&server, &kid, &token).await;
    }
    assert_eq!(
        fetched(provider.stats().await),
        at_start + 1,
        "unknown key ids are rate-limited"
    );
}

/// `GET /auth/login` on `server`: the provider URL and the binding cookie.
async fn start_login(server: &Server) -> (String, String) {
    let response = no_redirects()
        .get(server.url("/auth/login"))
        .send()
        .await
        .expect("GET /auth/login");
    assert_eq!(response.status(), 303);
    let location = response.headers()[LOCATION]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let cookie = response.headers()[SET_COOKIE]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("cookie").to_owned();
    (location, pair)
}

async fn callback(url: &str, cookie: Option<&str>) -> (u16, Value) {
    let mut request = no_redirects().get(url);
    if let Some(c) = cookie {
        request = request.header(COOKIE, c);
    }
    let response = request.send().await.expect("GET /auth/callback");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut url = Url::parse(url).expect("URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

fn param(url: &str, name: &str) -> String {
    Url::parse(url)
        .expect("URL")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

#[tokio::test]
async fn sign_in_through_the_provider() {
    let provider = OidcProvider::start().await;
    let port = free_port();
    let env = provider.login_env(TestEnv::new(Backend::Postgres).await, port);
    add_user(&env, "alice", "HSI_AGENT", None).await;
    add_user(&env, "bob", "CBP_OFFICER", None).await;
    let run = env.run(&["user", "disable", "bob"]).await;
    assert!(run.ok, "{}", run.stderr);
    let server = env.serve_at(&format!("127.0.0.1:{port}")).await;

    let (authorize, cookie) = start_login(&server).await;
    assert!(
        authorize.starts_with(&format!("{}/auth?", provider.issuer)),
        "{authorize}"
    );
    assert_eq!(param(&authorize, "client_id"), oidc::CLIENT_ID);
    assert_eq!(param(&authorize, "code_challenge_method"), "S256");
    assert_eq!(
        param(&authorize, "redirect_uri"),
        format!("http://127.0.0.1:{port}/auth/callback")
    );
    let back = provider.sign_in(&authorize, "alice").await;
    assert!(back.starts_with(&server.url("/auth/callback?")), "{back}");

    // A state this server never issued.
    let (status, body) = callback(&with_param(&back, "state", "forged-state"), Some(&cookie)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("BAD_USER_INPUT")),
        "{body}"
    );
    // The right URL from another browser (a leaked callback URL): refused, and the real
    // user's sign-in is not spoiled by it.
    let (status, body) = callback(&back, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("BAD_USER_INPUT")),
        "{body}"
    );
    let (status, _) = callback(&back, Some("dartts_login=0000")).await;
    assert_eq!(status, 400);

    let (status, body) = callback(&back, Some(&cookie)).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_owned();
    let expires_in = body["expiresIn"].as_i64().expect("expiresIn");
    assert!((1..=3600).contains(&expires_in), "{body}");
    let (status, _, me) = call(&server, &token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["me"]["username"], "alice");
    assert_eq!(me["data"]["me"]["role"], "HSI_AGENT");
    let last_login = env
        .scalar("SELECT COUNT(*) FROM users WHERE username = 'alice' AND last_login_at IS NOT NULL")
        .await;
    assert_eq!(last_login, 1, "the sign-in is recorded");

    // Replaying the callback: the state is used up.
    let (status, body) = callback(&back, Some(&cookie)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("BAD_USER_INPUT")),
        "{body}"
    );
    // Replaying the code under a fresh sign-in: the provider refuses it.
    let (authorize2, cookie2) = start_login(&server).await;
    let replay = with_param(&back, "state", &param(&authorize2, "state"));
    let (status, body) = callback(&replay, Some(&cookie2)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("UNAUTHENTICATED")),
        "{body}"
    );
    let (status, _) = callback(&replay, Some(&cookie2)).await;
    assert_eq!(status, 400, "that state is used up too");

    // The user declines at the provider.
    let (authorize3, cookie3) = start_login(&server).await;
    let declined = format!(
        "{}?error=access_denied&state={}",
        server.url("/auth/callback"),
        param(&authorize3, "state")
    );
    let (status, body) = callback(&declined, Some(&cookie3)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("UNAUTHENTICATED")),
        "{body}"
    );

    // Signed in at the provider but no local account, or a disabled one: no session.
    let (authorize4, cookie4) = start_login(&server).await;
    let back4 = provider.sign_in(&authorize4, "mallory").await;
    let (status, body) = callback(&back4, Some(&cookie4)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("FORBIDDEN")),
        "{body}"
    );
    let (authorize5, cookie5) = start_login(&server).await;
    let back5 = provider.sign_in(&authorize5, "bob").await;
    let (status, body) = callback(&back5, Some(&cookie5)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("ACCOUNT_DISABLED")),
        "{body}"
    );

    // A session ends with the account: disabling it cuts the session off at once.
    let run = env.run(&["user", "disable", "alice"]).await;
    assert!(run.ok, "{}", run.stderr);
    let (status, codes, _) = call(&server, &token).await;
    assert_eq!((status, codes), (403, vec!["ACCOUNT_DISABLED".to_owned()]));
}

/// Pending sign-ins are held in memory until they expire, so their number is capped; past the
/// cap a new one is refused as a temporary condition (503 `UNAVAILABLE`, "try again"), never
/// as an internal error, and the sign-ins already started still complete.
#[tokio::test]
async fn sign_ins_past_the_pending_cap_are_refused_as_unavailable() {
    use futures_util::stream::{self, StreamExt};
    let provider = OidcProvider::start().await;
    let port = free_port();
    let env = provider.login_env(TestEnv::new(Backend::Sqlite).await, port);
    add_user(&env, "alice", "HSI_AGENT", None).await;
    let server = env.serve_at(&format!("127.0.0.1:{port}")).await;
    let (first, cookie) = start_login(&server).await;

    let client = no_redirects();
    let statuses: Vec<u16> = stream::iter(1..dartts::auth::login::MAX_PENDING)
        .map(|_| {
            let request = client.get(server.url("/auth/login")).send();
            async move { request.await.expect("GET /auth/login").status().as_u16() }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == 303),
        "below the cap, every sign-in starts"
    );

    let response = client
        .get(server.url("/auth/login"))
        .send()
        .await
        .expect("GET /auth/login");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], "UNAVAILABLE", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("try again")),
        "{body}"
    );

    let back = provider.sign_in(&first, "alice").await;
    let (status, body) = callback(&back, Some(&cookie)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn start_up_fails_without_a_usable_provider() {
    let provider = OidcProvider::start().await;
    let closed = free_port();
    for (issuer, expected) in [
        (
            format!("http://127.0.0.1:{closed}"),
            "cannot reach the OpenID provider",
        ),
        // The discovery document names the issuer without the trailing slash.
        (format!("{}/", provider.issuer), "must match it exactly"),
    ] {
        let env = TestEnv::new(Backend::Sqlite)
            .await
            .with_env("DARTTS_OIDC_ISSUER", &issuer)
            .with_env("DARTTS_OIDC_AUDIENCE", AUDIENCE)
            // Never reached: start-up must fail before listening.
            .with_env("DARTTS_LISTEN", &format!("127.0.0.1:{}", free_port()));
        let run = tokio::time::timeout(Duration::from_secs(30), env.run(&["serve"]))
            .await
            .expect("dartts serve should exit");
        assert!(!run.ok, "{issuer}: serve should fail");
        assert!(run.stderr.contains(expected), "{issuer}: {}", run.stderr);
    }
    // A half-configured provider is a configuration error naming the setting.
    let env = TestEnv::new(Backend::Sqlite)
        .await
        .with_env("DARTTS_OIDC_ISSUER", &provider.issuer);
    let run = env.run(&["serve"]).await;
    assert!(
        !run.ok && run.stderr.contains("DARTTS_OIDC_AUDIENCE"),
        "{}",
        run.stderr
    );
}
