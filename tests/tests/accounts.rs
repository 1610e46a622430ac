//! The account lifecycle over HTTP: access request → supervisor → a different administrator →
//! ACTIVE; access review; role changes; disabling. Roles come only from these records.

use dartts_tests::{Backend, Server, TestEnv, error_codes};
use serde_json::{Value, json};

async fn request_access(server: &Server, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = server
        .http
        .post(server.url("/auth/request-access"))
        .json(&body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

const APPROVE: &str = "mutation($u: String!) { approveAccess(username: $u) { step } }";

#[tokio::test]
async fn access_request_needs_supervisor_then_a_different_admin() {
    let env = TestEnv::new(Backend::Postgres).await;
    let admin = env.user("root", "ADMIN", None).await;
    let admin2 = env.user("root2", "ADMIN", None).await;
    let supervisor = env.user("sup", "HSI_AGENT", None).await;
    let bystander = env.user("peer", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let newbie = env.local_token_for("newbie");

    // Before asking: a verified identity without an account gets nothing from GraphQL.
    let (status, body) = server
        .session(Some(&newbie))
        .post("{ me { role } }", json!({}))
        .await;
    assert_eq!(
        (status, error_codes(&body)),
        (401, vec!["UNAUTHENTICATED".to_owned()])
    );

    let ask = json!({ "role": "CBP_OFFICER", "supervisor": "sup", "justification": "Port of Newark targeting unit" });
    for (token, body, status) in [
        (None, ask.clone(), 401),
        (Some(newbie.as_str()), json!({ "role": "CBP_OFFICER" }), 400),
        (
            Some(newbie.as_str()),
            json!({ "role": "CBP_OFFICER", "supervisor": "ghost", "justification": "x" }),
            400,
        ),
        (
            Some(newbie.as_str()),
            json!({ "role": "CBP_OFFICER", "supervisor": "newbie", "justification": "x" }),
            400,
        ),
        (
            Some(newbie.as_str()),
            json!({ "role": "GOD", "supervisor": "sup", "justification": "x" }),
            400,
        ),
        (
            Some(newbie.as_str()),
            json!({ "role": "CBP_OFFICER", "supervisor": "sup", "justification": "  " }),
            400,
        ),
        (Some(supervisor.as_str()), ask.clone(), 409),
    ] {
        let (got, response) = request_access(&server, token, body.clone()).await;
        assert_eq!(got, status, "{body}: {response}");
        assert!(response["code"].is_string(), "{response}");
    }
    let (status, created) = request_access(&server, Some(&newbie), ask.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "PENDING");
    let (status, _) = request_access(&server, Some(&newbie), ask).await;
    assert_eq!(status, 409, "a second request while pending");

    // Pending: no data yet.
    let (status, body) = server
        .session(Some(&newbie))
        .post("{ me { role } }", json!({}))
        .await;
    assert_eq!(
        (status, error_codes(&body)),
        (403, vec!["FORBIDDEN".to_owned()])
    );

    let approve = |token: String| {
        let server = &server;
        async move {
            server
                .session(Some(&token))
                .gql(APPROVE, json!({ "u": "newbie" }))
                .await
        }
    };
    // An admin cannot skip the supervisor; a colleague is not the supervisor.
    assert_eq!(
        error_codes(&approve(admin.clone()).await),
        vec!["BAD_USER_INPUT"]
    );
    assert_eq!(
        error_codes(&approve(bystander.clone()).await),
        vec!["FORBIDDEN"]
    );
    // Nor does a colleague learn which accounts exist or their status: an active account and
    // a name nobody has get the same refusal (the name aside).
    let refusal = |username: &str| {
        let (server, bystander) = (&server, bystander.clone());
        let username = username.to_owned();
        async move {
            let r = server
                .session(Some(&bystander))
                .gql(APPROVE, json!({ "u": username }))
                .await;
            assert_eq!(error_codes(&r), vec!["FORBIDDEN"], "{r}");
            r["errors"][0]["message"]
                .as_str()
                .expect("message")
                .replace(&format!("{username:?}"), "X")
        }
    };
    assert_eq!(refusal("sup").await, refusal("nobody-at-all").await);
    let vouched = approve(supervisor.clone()).await;
    assert_eq!(
        vouched["data"]["approveAccess"]["step"], "SUPERVISOR",
        "{vouched}"
    );
    // The supervisor cannot also grant.
    assert_eq!(
        error_codes(&approve(supervisor.clone()).await),
        vec!["FORBIDDEN"]
    );
    let granted = approve(admin.clone()).await;
    assert_eq!(
        granted["data"]["approveAccess"]["step"], "GRANTED",
        "{granted}"
    );
    assert_eq!(
        error_codes(&approve(admin2.clone()).await),
        vec!["BAD_USER_INPUT"],
        "already active"
    );

    let me = server
        .session(Some(&newbie))
        .data("{ me { role status } }", json!({}))
        .await;
    assert_eq!(
        me["me"],
        json!({ "role": "CBP_OFFICER", "status": "ACTIVE" })
    );
}

#[tokio::test]
async fn administrators_review_change_and_disable_accounts() {
    let env = TestEnv::new(Backend::Postgres).await;
    let admin = env.user("root", "ADMIN", None).await;
    let cbp = env.user("officer", "CBP_OFFICER", None).await;
    env.run(&["user", "add", "dormant", "--role", "HSI_ANALYST"])
        .await;
    let server = env.serve().await;
    let admin_session = server.session(Some(&admin));

    let review =
        "{ accessReview(notReviewedDays: 90, notSignedInDays: 45) { username lastLoginAt } }";
    let names = |data: &Value| -> Vec<String> {
        data["accessReview"]
            .as_array()
            .expect("list")
            .iter()
            .map(|a| a["username"].as_str().expect("name").to_owned())
            .collect()
    };
    // Nobody has been reviewed yet; `dormant` has never signed in.
    assert_eq!(
        names(&admin_session.data(review, json!({})).await),
        vec!["dormant", "officer", "root"]
    );
    for user in ["officer", "root", "dormant"] {
        admin_session
            .data(
                "mutation($u: String!) { markReviewed(username: $u) { lastReviewedAt } }",
                json!({ "u": user }),
            )
            .await;
    }
    // Reviewed, but never signed in is still due.
    assert_eq!(
        names(&admin_session.data(review, json!({})).await),
        vec!["dormant"]
    );

    let changed = admin_session
        .data(r#"mutation { changeRole(username: "officer", role: "FOREIGN_PARTNER", nation: "mx") { role nation } }"#, json!({}))
        .await;
    assert_eq!(
        changed["changeRole"],
        json!({ "role": "FOREIGN_PARTNER", "nation": "MX" })
    );
    for change in [
        r#"mutation { changeRole(username: "officer", role: "FOREIGN_PARTNER") { role } }"#,
        // The nation scope as "US" would read every US declaration.
        r#"mutation { changeRole(username: "officer", role: "FOREIGN_PARTNER", nation: "US") { role } }"#,
    ] {
        let bad = admin_session.gql(change, json!({})).await;
        assert_eq!(error_codes(&bad), vec!["BAD_USER_INPUT"], "{change}: {bad}");
    }
    let own = admin_session
        .gql(
            r#"mutation { changeRole(username: "root", role: "HSI_AGENT") { role } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&own), vec!["BAD_USER_INPUT"], "{own}");
    // The role change applies from the officer's next request, with the same token.
    let me = server
        .session(Some(&cbp))
        .data("{ me { role nation } }", json!({}))
        .await;
    assert_eq!(
        me["me"],
        json!({ "role": "FOREIGN_PARTNER", "nation": "MX" })
    );

    // Non-admins cannot see or touch accounts.
    let (_, body) = server
        .session(Some(&cbp))
        .post(r#"{ users { username } } "#, json!({}))
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN_FIELD"]);
    let body = server
        .session(Some(&cbp))
        .gql(
            r#"mutation { disableUser(username: "root") { status } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN_FIELD"]);

    let disabled = admin_session
        .data(
            r#"mutation { disableUser(username: "officer") { status } }"#,
            json!({}),
        )
        .await;
    assert_eq!(disabled["disableUser"]["status"], "DISABLED");
    let (status, body) = server
        .session(Some(&cbp))
        .post("{ me { role } }", json!({}))
        .await;
    assert_eq!(
        (status, error_codes(&body)),
        (403, vec!["ACCOUNT_DISABLED".to_owned()])
    );
    let missing = admin_session
        .gql(
            r#"mutation { disableUser(username: "nobody") { status } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&missing), vec!["NOT_FOUND"]);
}
