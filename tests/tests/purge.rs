//! `dartts purge` (DESIGN §3 retention, §6 audit): batches loaded before the cutoff lose their
//! rows, rejections and unshared raw files, keep their `batches` row marked purged, and every
//! run is audited before anything is deleted.

use std::path::PathBuf;

use dartts_tests::{BACKENDS, Backend, TestEnv, fixture, path};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;
use sha2::Digest;

/// Where the raw store keeps `content`, relative to the data directory.
fn raw_path(content: &[u8]) -> String {
    let sha: String = sha2::Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("raw/{}/{sha}", &sha[..2])
}

fn raw_file(env: &TestEnv, content: &[u8]) -> PathBuf {
    env.dir.path().join("data").join(raw_path(content))
}

/// The batch id `dartts load` printed (`batch N: …`).
/// Moves a batch's load time eleven years back, as if it had been loaded then.
async fn age(env: &TestEnv, batch: i64) {
    let sql = match env.backend {
        Backend::Postgres => format!(
            "UPDATE batches SET loaded_at = loaded_at - INTERVAL '11 years' WHERE id = {batch}"
        ),
        // The text form sqlx writes for a UTC timestamp, which the purge compares against.
        Backend::Sqlite => format!(
            "UPDATE batches SET loaded_at = strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '-11 years') \
             WHERE id = {batch}"
        ),
    };
    let db = env.db().await;
    let done = db.execute_unprepared(&sql).await.expect("age batch");
    assert_eq!(done.rows_affected(), 1);
    db.close().await.ok();
}

async fn rows_of(env: &TestEnv, table: &str, batch: i64) -> i64 {
    env.scalar(&format!(
        "SELECT COUNT(*) FROM {table} WHERE batch_id = {batch}"
    ))
    .await
}

async fn purge_events(env: &TestEnv, outcome: &str) -> i64 {
    env.scalar(&format!(
        "SELECT COUNT(*) FROM audit_events WHERE event_type = 'purge' AND outcome = '{outcome}'"
    ))
    .await
}

/// A small OFAC set: sdn.csv with two entries, a remarks continuation, their alias and address.
const SDN: &str = "36,\"AEROCARIBBEAN AIRLINES\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n\
                   173,\"ANGLO-CARIBBEAN CO., LTD.\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n";
const ALT: &str = "36,12,\"aka\",\"AERO-CARIBBEAN\",-0- \n";
const ADD: &str =
    "173,129,\"Ibex House, The Minories\",\"London EC3N 1DY\",\"United Kingdom\",-0- \n";
const COMMENTS: &str = "36,\"Listed 1996.\"\n";
/// The young set's own aliases and addresses (the list shares sdn.csv and comments).
const ALT_YOUNG: &str = "173,57,\"aka\",\"AVIA IMPORT\",-0- \n";
const ADD_YOUNG: &str = "36,25,\"Avenida 1\",\"Havana\",\"Cuba\",-0- \n";

struct Loaded {
    /// Trade rows with one rejected line; aged.
    old_trade: i64,
    old_trade_content: Vec<u8>,
    /// A whole set; aged. Shares sdn.csv and sdn_comments.csv with `young_sdn`.
    old_sdn: i64,
    /// Financial rows; young.
    young_financial: i64,
    /// The same list with other aliases and addresses; young.
    young_sdn: i64,
}

async fn load_and_age(env: &TestEnv) -> Loaded {
    let inputs = env.dir.path().join("inputs");
    std::fs::create_dir_all(inputs.join("set")).expect("dirs");
    std::fs::create_dir_all(inputs.join("young")).expect("dirs");

    let mut old_trade_content = std::fs::read(fixture("trade_canonical.csv")).expect("fixture");
    old_trade_content.extend_from_slice(
        b"US-9999,1,not-a-date,IMPORT,8471300100,x,,,,,,,CN,CN,US,US,CN,4601,SEA,1,NO,1,1,USD,\n",
    );
    let trade = inputs.join("old_trade.csv");
    std::fs::write(&trade, &old_trade_content).expect("write");
    let run = env
        .load_ok(&["trade", path(&trade), "--provider", "US"])
        .await;
    assert!(run.stdout.contains(", 1 rejected"), "{}", run.stdout);
    let old_trade = run.batch_id();

    for (dir, files) in [
        (
            "set",
            &[
                ("sdn.csv", SDN),
                ("sdn_comments.csv", COMMENTS),
                ("alt.csv", ALT),
                ("add.csv", ADD),
            ][..],
        ),
        (
            "young",
            &[
                ("sdn.csv", SDN),
                ("sdn_comments.csv", COMMENTS),
                ("alt.csv", ALT_YOUNG),
                ("add.csv", ADD_YOUNG),
            ][..],
        ),
    ] {
        for (name, content) in files {
            std::fs::write(inputs.join(dir).join(name), content).expect("write");
        }
    }
    let old_sdn = env
        .load_ok(&["sdn", path(&inputs.join("set"))])
        .await
        .batch_id();
    let young_sdn = env
        .load_ok(&["sdn", path(&inputs.join("young"))])
        .await
        .batch_id();
    let young_financial = env
        .load_ok(&["financial", path(&fixture("financial.csv"))])
        .await
        .batch_id();

    age(env, old_trade).await;
    age(env, old_sdn).await;
    Loaded {
        old_trade,
        old_trade_content,
        old_sdn,
        young_financial,
        young_sdn,
    }
}

#[tokio::test]
async fn old_batches_are_purged_young_ones_kept_and_the_purge_is_audited() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let b = load_and_age(&env).await;
        let old_trade_rows = rows_of(&env, "trade_records", b.old_trade).await;
        assert!(old_trade_rows > 0);
        assert_eq!(rows_of(&env, "batch_rejections", b.old_trade).await, 1);
        let young_financial_rows = rows_of(&env, "financial_transactions", b.young_financial).await;
        let young_sdn_rows = rows_of(&env, "sdn_entries", b.young_sdn).await;
        let old_raw = raw_file(&env, &b.old_trade_content);
        let sdn_raw = raw_file(&env, SDN.as_bytes());
        let comments_raw = raw_file(&env, COMMENTS.as_bytes());
        let alt_raw = raw_file(&env, ALT.as_bytes());
        let add_raw = raw_file(&env, ADD.as_bytes());
        let financial_raw = raw_file(
            &env,
            &std::fs::read(fixture("financial.csv")).expect("read"),
        );
        for f in [
            &old_raw,
            &sdn_raw,
            &comments_raw,
            &alt_raw,
            &add_raw,
            &financial_raw,
        ] {
            assert!(f.exists(), "{backend:?}: {} not stored", f.display());
        }

        let run = env.run(&["purge"]).await;
        assert!(run.ok, "{backend:?}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stdout
                .contains(&format!("purged batch {} (trade", b.old_trade))
                && run
                    .stdout
                    .contains(&format!("purged batch {} (sdn", b.old_sdn))
                && run.stdout.contains("2 batch(es) loaded before")
                && run.stdout.contains("raw files: 3 removed, 2 kept"),
            "{backend:?}: {}",
            run.stdout
        );

        // The old batches' rows and rejections are gone; their rows stay, marked.
        for (table, batch) in [
            ("trade_records", b.old_trade),
            ("batch_rejections", b.old_trade),
            ("sdn_entries", b.old_sdn),
            ("sdn_aliases", b.old_sdn),
            ("sdn_addresses", b.old_sdn),
        ] {
            assert_eq!(rows_of(&env, table, batch).await, 0, "{backend:?}: {table}");
        }
        assert_eq!(
            env.scalar(&format!(
                "SELECT COUNT(*) FROM batches WHERE id IN ({}, {}) AND purged_at IS NOT NULL",
                b.old_trade, b.old_sdn
            ))
            .await,
            2,
            "{backend:?}"
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM batches WHERE purged_at IS NULL")
                .await,
            2,
            "{backend:?}"
        );
        // The young ones are untouched, and so is the sdn.csv they share with a purged set.
        assert_eq!(
            rows_of(&env, "financial_transactions", b.young_financial).await,
            young_financial_rows
        );
        assert_eq!(
            rows_of(&env, "sdn_entries", b.young_sdn).await,
            young_sdn_rows
        );
        assert!(!old_raw.exists(), "{backend:?}: purged raw file kept");
        assert!(!alt_raw.exists() && !add_raw.exists(), "{backend:?}");
        assert!(
            sdn_raw.exists() && comments_raw.exists(),
            "{backend:?}: shared raw file removed"
        );
        assert!(financial_raw.exists(), "{backend:?}");

        // Audited: intent first, then the outcome with what was removed.
        assert_eq!(purge_events(&env, "attempted").await, 1, "{backend:?}");
        assert_eq!(purge_events(&env, "ok").await, 1, "{backend:?}");
        let detail: Value = serde_json::from_str(
            &env.text(
                "SELECT detail FROM audit_events WHERE event_type = 'purge' AND outcome = 'ok'",
            )
            .await,
        )
        .expect("detail is JSON");
        assert_eq!(
            detail["batchIds"],
            serde_json::json!([b.old_trade, b.old_sdn]),
            "{backend:?}: {detail}"
        );
        assert_eq!(detail["rows"]["trade_records"], old_trade_rows, "{detail}");
        assert_eq!(detail["rows"]["batch_rejections"], 1, "{detail}");
        // The batch's importer-year sums go with it, and are not counted as records below.
        assert!(
            detail["rows"]["trade_importer_years"].as_u64() > Some(0),
            "{detail}"
        );
        assert_eq!(detail["rows"]["sdn_entries"], 2, "{detail}");
        assert_eq!(detail["rows"]["sdn_aliases"], 1, "{detail}");
        assert_eq!(detail["rows"]["sdn_addresses"], 1, "{detail}");
        assert_eq!(detail["retentionYears"], 10, "{detail}");
        let mut shared = vec![raw_path(SDN.as_bytes()), raw_path(COMMENTS.as_bytes())];
        shared.sort();
        assert_eq!(
            detail["rawFilesShared"],
            serde_json::json!(shared),
            "{detail}"
        );
        assert_eq!(
            detail["rawFilesRemoved"].as_array().map(Vec::len),
            Some(3),
            "{detail}"
        );
        assert_eq!(
            env.scalar(
                "SELECT records FROM audit_events WHERE event_type = 'purge' AND outcome = 'ok'"
            )
            .await,
            old_trade_rows + 1 + 4,
            "{backend:?}"
        );
        let verify = env.run(&["audit", "verify"]).await;
        assert!(verify.ok, "{backend:?}: {}", verify.stdout);

        // Clients see which batches are gone, with the counts of their load.
        let token = env.user("reader", "HSI_ANALYST", None).await;
        let server = env.serve().await;
        let batches = server
            .session(Some(&token))
            .data(
                "{ batches(filter: { dataset: TRADE }) { edges { node { acceptedRows purgedAt } } } }",
                serde_json::json!({}),
            )
            .await;
        let edges = batches["batches"]["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), 1, "{backend:?}: {batches}");
        assert_eq!(
            edges[0]["node"]["acceptedRows"], old_trade_rows,
            "{batches}"
        );
        assert!(edges[0]["node"]["purgedAt"].is_string(), "{batches}");
        drop(server);

        // A second run finds nothing due, deletes nothing, and is audited all the same.
        let again = env.run(&["purge"]).await;
        assert!(again.ok, "{backend:?}: {}", again.stderr);
        assert!(
            again.stdout.contains("nothing to purge"),
            "{backend:?}: {}",
            again.stdout
        );
        assert_eq!(purge_events(&env, "ok").await, 2, "{backend:?}");
        assert_eq!(
            rows_of(&env, "financial_transactions", b.young_financial).await,
            young_financial_rows
        );
        assert!(sdn_raw.exists());

        // The purged file can be loaded again: a new batch, with its raw file back.
        let trade = env.dir.path().join("inputs/old_trade.csv");
        let reload = env
            .load_ok(&["trade", path(&trade), "--provider", "US"])
            .await;
        let new_id = reload.batch_id();
        assert_ne!(new_id, b.old_trade, "{backend:?}");
        assert_eq!(rows_of(&env, "trade_records", new_id).await, old_trade_rows);
        assert!(old_raw.exists(), "{backend:?}");
        let verify = env.run(&["audit", "verify"]).await;
        assert!(verify.ok, "{backend:?}: {}", verify.stdout);
    }
}

#[tokio::test]
async fn a_dry_run_deletes_nothing_and_the_period_can_be_set() {
    let mut env = TestEnv::new(Backend::Postgres).await;
    let b = load_and_age(&env).await;
    let trade_rows = env.count("trade_records").await;
    let all_rows = trade_rows
        + env.count("sdn_entries").await
        + env.count("financial_transactions").await
        + env.count("batch_rejections").await;
    let old_raw = raw_file(&env, &b.old_trade_content);

    let dry = env.run(&["purge", "--dry-run"]).await;
    assert!(dry.ok, "{}", dry.stderr);
    assert!(
        dry.stdout
            .contains(&format!("would purge batch {} (trade", b.old_trade))
            && dry.stdout.contains("raw files: 3 would be removed, 2 kept")
            && dry.stdout.contains("dry run: nothing was deleted"),
        "{}",
        dry.stdout
    );
    let after = env.count("trade_records").await
        + env.count("sdn_entries").await
        + env.count("financial_transactions").await
        + env.count("batch_rejections").await;
    assert_eq!(after, all_rows);
    assert!(old_raw.exists());
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM batches WHERE purged_at IS NOT NULL")
            .await,
        0
    );
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM audit_events WHERE event_type = 'purge'")
            .await,
        0,
        "a dry run writes no purge event"
    );

    // Eleven years old is inside a twelve-year retention, from the flag or the setting.
    let longer = env.run(&["purge", "--older-than-years", "12"]).await;
    assert!(longer.ok, "{}", longer.stderr);
    assert!(
        longer.stdout.contains("nothing to purge"),
        "{}",
        longer.stdout
    );
    env.extra_env
        .push(("DARTTS_RETENTION_YEARS".into(), "12".into()));
    let longer = env.run(&["purge"]).await;
    env.extra_env.pop();
    assert!(longer.ok, "{}", longer.stderr);
    assert!(
        longer.stdout.contains("retention 12 years"),
        "{}",
        longer.stdout
    );
    assert_eq!(env.count("trade_records").await, trade_rows);

    // Bad periods are refused before anything happens, naming the setting or flag.
    let zero = env.run(&["purge", "--older-than-years", "0"]).await;
    assert!(!zero.ok);
    assert!(
        zero.stderr.contains("--older-than-years"),
        "{}",
        zero.stderr
    );
    env.extra_env
        .push(("DARTTS_RETENTION_YEARS".into(), "0".into()));
    let bad = env.run(&["purge"]).await;
    env.extra_env.pop();
    assert!(!bad.ok);
    assert!(
        bad.stderr.contains("DARTTS_RETENTION_YEARS"),
        "{}",
        bad.stderr
    );
    assert_eq!(env.count("trade_records").await, trade_rows);
    assert!(old_raw.exists());
}

#[tokio::test]
async fn without_an_audit_record_nothing_is_purged() {
    let env = TestEnv::new(Backend::Postgres).await;
    let b = load_and_age(&env).await;
    let trade_rows = env.count("trade_records").await;
    let old_raw = raw_file(&env, &b.old_trade_content);
    let db = env.db().await;
    db.execute_unprepared("ALTER TABLE audit_events RENAME TO audit_events_moved")
        .await
        .expect("rename");

    let run = env.run(&["purge"]).await;
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("cannot be audited, so nothing was purged"),
        "{}",
        run.stderr
    );
    assert_eq!(env.count("trade_records").await, trade_rows);
    assert_eq!(rows_of(&env, "batch_rejections", b.old_trade).await, 1);
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM batches WHERE purged_at IS NOT NULL")
            .await,
        0
    );
    assert!(old_raw.exists());

    db.execute_unprepared("ALTER TABLE audit_events_moved RENAME TO audit_events")
        .await
        .expect("rename back");
    let run = env.run(&["purge"]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(!old_raw.exists());
}

/// A table holding batch rows that the purge does not know would keep them forever.
#[tokio::test]
async fn the_purge_knows_every_table_with_batch_rows() {
    let env = TestEnv::new(Backend::Postgres).await;
    assert!(env.run(&["migrate"]).await.ok);
    let db = env.db().await;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT table_name::text FROM information_schema.columns \
             WHERE column_name = 'batch_id' AND table_schema = current_schema() \
             ORDER BY table_name"
                .to_owned(),
        ))
        .await
        .expect("query");
    let mut in_schema: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index(0).expect("name"))
        .collect();
    in_schema.sort();
    let mut known: Vec<String> = dartts::purge::BATCH_TABLES
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    known.sort();
    assert_eq!(in_schema, known);
}

#[tokio::test]
async fn a_refused_load_keeps_no_raw_copy_unless_a_kept_batch_shares_it() {
    // An alias of an entry the list does not hold: the whole set is refused.
    const ALT_ORPHAN: &str = "999,58,\"aka\",\"NOBODY\",-0- \n";
    const VICTIM: &str = "record_id,kind,creating_agency,involvement,case_status,name,ssn_tin\n\
                          V1,PERSON,CBP,VICTIM,OPEN,Jane Victimdoe,555-44-3333\n";
    const NO_COLUMNS: &str = "foo,bar\n1,2\n";
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let inputs = env.dir.path().join("inputs");
        for dir in ["set", "refused"] {
            std::fs::create_dir_all(inputs.join(dir)).expect("dirs");
        }
        for (dir, alt) in [("set", ALT), ("refused", ALT_ORPHAN)] {
            for (name, content) in [
                ("sdn.csv", SDN),
                ("sdn_comments.csv", COMMENTS),
                ("alt.csv", alt),
                ("add.csv", ADD),
            ] {
                std::fs::write(inputs.join(dir).join(name), content).expect("write");
            }
        }
        env.load_ok(&["sdn", path(&inputs.join("set"))]).await;
        std::fs::write(inputs.join("victim.csv"), VICTIM).expect("write");
        std::fs::write(inputs.join("columns.csv"), NO_COLUMNS).expect("write");

        for args in [
            vec![
                "load",
                "subjects",
                path(&inputs.join("victim.csv")),
                "--strict",
            ],
            vec!["load", "financial", path(&inputs.join("columns.csv"))],
            vec!["load", "sdn", path(&inputs.join("refused"))],
        ] {
            let run = env.run(&args).await;
            assert_eq!(run.code, Some(1), "{backend:?} {args:?}: {run:?}");
        }
        for gone in [VICTIM, NO_COLUMNS, ALT_ORPHAN] {
            assert!(
                !raw_file(&env, gone.as_bytes()).exists(),
                "{backend:?}: a refused load's raw copy was kept: {gone:?}"
            );
        }
        // The refused set's other files are the kept batch's: they stay.
        for kept in [SDN, COMMENTS, ALT, ADD] {
            assert!(
                raw_file(&env, kept.as_bytes()).exists(),
                "{backend:?}: {kept:?}"
            );
        }
        assert_eq!(env.count("batches").await, 1, "{backend:?}");
    }
}

/// A load that was wrong (here China's file loaded as Korea's) is withdrawn by its batch id,
/// whatever its age, the same way and as audited as the retention purge; then the same file
/// loads again, correctly, instead of being "already loaded".
#[tokio::test]
async fn a_wrong_load_is_withdrawn_by_its_batch_and_can_be_loaded_again() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let file = fixture("trade_cn.csv");
        let wrong = env
            .load_ok(&["trade", path(&file), "--provider", "KR"])
            .await;
        let wrong = wrong.batch_id();
        let held = rows_of(&env, "trade_records", wrong).await;
        assert!(held > 0);
        let kept = env.load_trade_fixture().await;
        let kept_rows = env.count("trade_records").await - held;

        let id = wrong.to_string();
        let dry = env.run(&["purge", "--batch", &id, "--dry-run"]).await;
        assert!(dry.ok, "{}", dry.stderr);
        assert!(
            dry.stdout
                .contains(&format!("would purge batch {wrong} (trade, trade_cn.csv"))
                && dry.stdout.contains("1 batch(es) withdrawn would be purged"),
            "{}",
            dry.stdout
        );
        assert_eq!(rows_of(&env, "trade_records", wrong).await, held);
        for (args, message) in [
            (
                vec!["purge", "--batch", "999999"],
                "no batch 999999 is held",
            ),
            (
                vec!["purge", "--batch", &id, "--older-than-years", "3"],
                "cannot be used with",
            ),
        ] {
            let run = env.run(&args).await;
            assert!(
                !run.ok && run.stderr.contains(message),
                "{args:?}: {}",
                run.stderr
            );
        }
        assert_eq!(
            purge_events(&env, "attempted").await,
            0,
            "refusals delete nothing"
        );

        let run = env.run(&["purge", "--batch", &id]).await;
        assert!(run.ok, "{}", run.stderr);
        assert!(
            run.stdout.contains(&format!("purged batch {wrong}")),
            "{}",
            run.stdout
        );
        assert_eq!(rows_of(&env, "trade_records", wrong).await, 0);
        assert_eq!(env.count("trade_records").await, kept_rows, "{kept:?}");
        let detail: Value = serde_json::from_str(
            &env.text(
                "SELECT detail FROM audit_events WHERE event_type = 'purge' AND outcome = 'ok'",
            )
            .await,
        )
        .expect("detail is JSON");
        assert_eq!(detail["withdrawnBatch"], wrong, "{detail}");
        assert_eq!(detail["batchIds"], serde_json::json!([wrong]), "{detail}");
        assert!(detail.get("cutoff").is_none(), "{detail}");

        let again = env
            .load_ok(&["trade", path(&file), "--provider", "CN"])
            .await;
        let right = again.batch_id();
        assert_ne!(right, wrong);
        assert_eq!(rows_of(&env, "trade_records", right).await, held);
        assert_eq!(
            env.scalar(&format!(
                "SELECT COUNT(*) FROM trade_records WHERE batch_id = {right} AND provider_country = 'CN'"
            ))
            .await,
            held
        );
        let twice = env.run(&["purge", "--batch", &id]).await;
        assert!(
            !twice.ok && twice.stderr.contains("already purged"),
            "{}",
            twice.stderr
        );
    }
}
