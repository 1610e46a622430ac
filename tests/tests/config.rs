//! Start-up configuration as an operator meets it: bad values stop the binary with the name of
//! the setting, and the embedded default says what it is.

use dartts_tests::{Backend, TestEnv};

#[tokio::test]
async fn bad_settings_stop_start_up_with_the_setting_named() {
    for (key, value) in [
        ("DARTTS_LISTEN", "localhost"),
        ("DARTTS_LISTEN", "8080"),
        ("DARTTS_GRAPHIQL", "maybe"),
        ("DARTTS_POLICY_DIR", "/no/such/dir"),
        ("DARTTS_INSTANCE", "offshore"),
        ("DARTTS_REDIS_URL", "memcached://x"),
        ("DARTTS_DATABASE_URL", "mysql://root@db/dartts"),
        ("DARTTS_REQUEST_TIME_LIMIT", "0"),
        ("DARTTS_REQUEST_TIME_LIMIT", "30s"),
        ("DARTTS_ANALYSIS_CONCURRENCY", "0"),
        ("DARTTS_ANALYSIS_CONCURRENCY", "all"),
    ] {
        let env = TestEnv::new(Backend::Sqlite).await.with_env(key, value);
        let run = env.run(&["serve"]).await;
        assert_eq!(run.code, Some(1), "{key}={value}: {run:?}");
        assert!(run.stderr.contains(key), "{key}: {}", run.stderr);
    }
}

#[tokio::test]
async fn serving_beyond_loopback_is_refused_until_access_control_exists() {
    let env = TestEnv::new(Backend::Sqlite)
        .await
        .with_env("DARTTS_LISTEN", "0.0.0.0:0");
    let run = env.run(&["serve"]).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("only listens on a loopback address"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn database_passwords_never_reach_the_console() {
    let env = TestEnv::new(Backend::Sqlite).await.with_env(
        "DARTTS_DATABASE_URL",
        "postgres://dartts:s3cret-pw@127.0.0.1:1/dartts",
    );
    let run = env.run(&["migrate"]).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("postgres://dartts:***@127.0.0.1:1/dartts"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cret-pw"), "{}", run.stderr);
}

#[tokio::test]
async fn schema_command_prints_the_committed_sdl() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let run = env.run(&["schema"]).await;
    assert!(run.ok);
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql"))
            .expect("schema.graphql");
    assert_eq!(
        run.stdout, committed,
        "schema.graphql drifted: run `cargo run -- schema > schema.graphql`"
    );
}

#[tokio::test]
async fn the_readmes_sqlite_url_given_explicitly_creates_the_database() {
    // The README's default, relative to the working directory, set by hand in a fresh one.
    let fresh = tempfile::tempdir().expect("dir");
    let run = |args: &[&str]| {
        tokio::process::Command::new(dartts_tests::bin())
            .current_dir(fresh.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DARTTS_DATABASE_URL", "sqlite://./dartts-data/dartts.db")
            .env("DARTTS_LOG", "warn")
            .args(args)
            .output()
    };
    let migrate = run(&["migrate"]).await.expect("run dartts");
    assert!(migrate.status.success(), "{migrate:?}");
    assert!(fresh.path().join("dartts-data/dartts.db").is_file());
    let subjects = dartts_tests::fixture("subjects.csv");
    let load = run(&["load", "subjects", subjects.to_str().expect("path")])
        .await
        .expect("run dartts");
    let stdout = String::from_utf8_lossy(&load.stdout);
    assert!(
        load.status.success() && stdout.contains("3 rows accepted"),
        "{load:?}"
    );
}
