//! `dartts refresh sdn --from URL|DIR` against a local HTTP server serving the sample OFAC files:
//! fetched, checked, loaded once, audited; a bad download loads nothing.

use dartts_tests::http_stub::HttpStub;
use dartts_tests::{Backend, TestEnv, samples};

fn ofac_stub_handler(request: &dartts_tests::http_stub::Request) -> (u16, Vec<u8>) {
    let dir = samples().join("ofac/2021-07_watchman_bench");
    let name = request.path.rsplit('/').next().unwrap_or_default();
    match request.path.split('/').nth(1) {
        // An outage page answered with 200, as some CDNs do.
        Some("broken") if name == "sdn.csv" => (
            200,
            b"<html><body>Service unavailable</body></html>".to_vec(),
        ),
        // A mirror that moved, on the same loopback host.
        Some("moved") => (302, format!("/ofac/{name}").into_bytes()),
        // Sends the fetch to plain http on another network's host.
        Some("away") => (302, format!("http://10.255.255.1/ofac/{name}").into_bytes()),
        Some("ofac" | "broken") => match std::fs::read(dir.join(name)) {
            Ok(bytes) => (200, bytes),
            Err(_) => (404, Vec::new()),
        },
        _ => (404, Vec::new()),
    }
}

#[tokio::test]
async fn refresh_fetches_checks_and_loads_the_list_once() {
    let stub = HttpStub::start(ofac_stub_handler).await;
    let env = TestEnv::new(Backend::Postgres).await;
    let url = format!(
        "{}/ofac/downloads",
        stub.base.replace("127.0.0.1", "localhost")
    );

    let run = env.run(&["refresh", "sdn", "--from", &url]).await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("34723 rows accepted, 0 rejected"),
        "{}",
        run.stdout
    );
    let paths: Vec<String> = stub.requests().iter().map(|r| r.path.clone()).collect();
    for file in ["sdn.csv", "add.csv", "alt.csv", "sdn_comments.csv"] {
        assert!(
            paths.contains(&format!("/ofac/downloads/{file}")),
            "{paths:?}"
        );
    }
    assert_eq!(env.count("sdn_entries").await, 8_976);

    // Unchanged list: a no-op, whether fetched again or read from a directory.
    let again = env.run(&["refresh", "sdn", "--from", &url]).await;
    assert!(
        again.ok && again.stdout.contains("already loaded as batch"),
        "{}",
        again.stdout
    );
    let dir = samples().join("ofac/2021-07_watchman_bench");
    let local = env
        .run(&["refresh", "sdn", "--from", dir.to_str().expect("path")])
        .await;
    assert!(
        local.ok && local.stdout.contains("already loaded as batch"),
        "{}",
        local.stdout
    );
    assert_eq!(env.count("batches").await, 1);

    // A download that is not the list is refused before anything is written.
    let broken = env
        .run(&[
            "refresh",
            "sdn",
            "--from",
            &format!("{}/broken/", stub.base),
        ])
        .await;
    assert_eq!(broken.code, Some(1), "{broken:?}");
    assert!(broken.stderr.contains("sdn.csv"), "{}", broken.stderr);
    let missing = env
        .run(&[
            "refresh",
            "sdn",
            "--from",
            &format!("{}/nothing/", stub.base),
        ])
        .await;
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("404"), "{}", missing.stderr);
    // Plain http is for loopback test servers only.
    let remote = env
        .run(&["refresh", "sdn", "--from", "http://example.org/ofac/"])
        .await;
    assert_eq!(remote.code, Some(1));
    assert!(remote.stderr.contains("https"), "{}", remote.stderr);
    assert_eq!(env.count("batches").await, 1);
    assert_eq!(env.count("sdn_entries").await, 8_976);

    // Every attempt is audited before it runs, then its outcome.
    let audited = |outcome: &'static str| {
        format!(
            "SELECT COUNT(*) FROM audit_events WHERE event_type = 'ingest' AND outcome = '{outcome}'"
        )
    };
    assert_eq!(env.scalar(&audited("attempted")).await, 6);
    assert_eq!(env.scalar(&audited("ok")).await, 3);
    assert_eq!(env.scalar(&audited("failed")).await, 3);
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM audit_events WHERE detail LIKE '%refreshFrom%'")
            .await,
        6
    );
}

#[tokio::test]
async fn every_redirect_is_held_to_the_https_or_loopback_rule() {
    let stub = HttpStub::start(ofac_stub_handler).await;
    let env = TestEnv::new(Backend::Sqlite).await;
    // Plain http off loopback: refused by the redirect policy, before any connection to it.
    let away = env
        .run(&["refresh", "sdn", "--from", &format!("{}/away/", stub.base)])
        .await;
    assert_eq!(away.code, Some(1), "{away:?}");
    assert!(
        away.stderr
            .contains("redirected to http://10.255.255.1/ofac/sdn.csv: plain http is only allowed for a loopback host"),
        "{}",
        away.stderr
    );
    assert_eq!(stub.requests().len(), 1);
    // A redirect within the rule is followed.
    let moved = env
        .run(&["refresh", "sdn", "--from", &format!("{}/moved/", stub.base)])
        .await;
    assert!(
        moved.ok && moved.stdout.contains("34723 rows accepted, 0 rejected"),
        "{moved:?}"
    );
}
