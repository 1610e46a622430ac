//! GraphQL over HTTP: npm `graphql-http`'s server audit (tests/graphql-http/audit.mjs) against
//! the real server, as an analyst. Every MUST and SHOULD audit must pass; MAY audits are
//! reported only (GET is refused on purpose: see `server::graphiql`).

use std::path::PathBuf;

use dartts_tests::{Backend, TestEnv};

#[tokio::test]
async fn graphql_http_server_audit_passes_every_must_and_should() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("graphql-http");
    assert!(
        dir.join("node_modules/graphql-http").is_dir(),
        "graphql-http is not installed: run `npm ci --prefix tests/graphql-http` (scripts/test does)"
    );
    let env = TestEnv::new(Backend::Postgres).await;
    let server = env.serve_as_analyst().await;
    let output = tokio::process::Command::new("node")
        .arg(dir.join("audit.mjs"))
        .current_dir(&dir)
        .env("DARTTS_URL", server.url("/graphql"))
        .env("DARTTS_TOKEN", server.token.as_deref().expect("token"))
        .output()
        .await
        .expect("run node tests/graphql-http/audit.mjs (is Node.js installed?)");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.contains("all MUST and SHOULD audits pass"),
        "{report}"
    );
    // The audit really ran its checks (a broken import would print nothing).
    assert!(
        report.lines().filter(|l| l.starts_with("OK")).count() >= 30,
        "{report}"
    );
}
