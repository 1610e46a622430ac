//! Data freshness (DESIGN §3): the `datasets` query, the stale-data warning on responses that
//! read SDN or TECS records, and the configurable cadences.

use dartts_tests::{Backend, TestEnv, error_codes, fixture, samples};
use serde_json::{Value, json};

fn path(p: &std::path::Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

/// SDN loaded as of July 2021 (long stale), TECS subjects and US trade as of today.
async fn loaded(env: TestEnv) -> TestEnv {
    let sdn = samples().join("ofac/2021-07_watchman_bench");
    env.load_ok(&["sdn", &path(&sdn), "--as-of", "2021-07-01"])
        .await;
    env.load_ok(&["subjects", &path(&fixture("subjects.csv"))])
        .await;
    env.load_trade_fixture().await;
    env
}

fn by_dataset(data: &Value) -> Vec<(String, Value)> {
    data["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .map(|d| {
            (
                d["dataset"].as_str().expect("dataset").to_owned(),
                d.clone(),
            )
        })
        .collect()
}

const DATASETS: &str =
    "{ datasets { dataset asOf batches rows cadenceDays stale latestBatch { fileName } } }";
const SDN_PAGE: &str = "{ sdnEntries(first: 3) { edges { node { entNum } } } }";

#[tokio::test]
async fn datasets_say_how_current_each_readable_set_is_and_stale_reads_warn() {
    let env = loaded(TestEnv::new(Backend::Postgres).await).await;
    let analyst = env.user("analyst", "HSI_ANALYST", None).await;
    let partner = env.user("partner", "FOREIGN_PARTNER", Some("KR")).await;
    let admin = env.user("root", "ADMIN", None).await;
    let server = env.serve().await;
    let as_analyst = server.session(Some(&analyst));

    let sets = by_dataset(&as_analyst.data(DATASETS, json!({})).await);
    let names: Vec<&str> = sets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["TRADE", "FINANCIAL", "SUBJECTS", "SDN"]);
    let sdn = &sets[3].1;
    assert_eq!(sdn["asOf"], "2021-07-01");
    assert_eq!(sdn["rows"], 34_723);
    assert_eq!(sdn["batches"], 1);
    assert_eq!(sdn["cadenceDays"], 31);
    assert_eq!(sdn["stale"], true);
    assert_eq!(
        sdn["latestBatch"]["fileName"],
        "sdn.csv+sdn_comments.csv+add.csv+alt.csv"
    );
    let subjects = &sets[2].1;
    assert_eq!(
        (subjects["cadenceDays"].clone(), subjects["stale"].clone()),
        (json!(92), json!(false))
    );
    // Nothing loaded is stale; trade has no cadence and is never stale once loaded.
    assert_eq!(sets[1].1["stale"], true);
    assert_eq!(sets[1].1["rows"], 0);
    assert_eq!(
        (sets[0].1["cadenceDays"].clone(), sets[0].1["stale"].clone()),
        (Value::Null, json!(false))
    );

    // Reading SDN entries brings the warning with the list's date; a datasets query or trade
    // rows do not, and neither do fresh TECS records.
    let page = as_analyst.gql(SDN_PAGE, json!({})).await;
    assert_eq!(
        page["data"]["sdnEntries"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        3
    );
    let warnings = page["extensions"]["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{page:#}");
    assert_eq!(warnings[0]["code"], "STALE_DATA");
    assert_eq!(warnings[0]["dataset"], "SDN");
    assert_eq!(warnings[0]["asOf"], "2021-07-01");
    assert_eq!(warnings[0]["cadenceDays"], 31);
    for query in [
        DATASETS,
        "{ tradeRecords(first: 2) { edges { node { hsCode } } } }",
        "{ subjectRecords { edges { node { recordId } } } }",
    ] {
        let response = as_analyst.gql(query, json!({})).await;
        assert!(response.get("errors").is_none(), "{response:#}");
        assert!(
            response.get("extensions").is_none(),
            "{query}: {response:#}"
        );
    }
    // The same entry through `node` warns too.
    let id = as_analyst
        .data(
            "{ sdnEntries(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await["sdnEntries"]["edges"][0]["node"]["id"]
        .clone();
    let node = as_analyst
        .gql(
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        node["extensions"]["warnings"][0]["dataset"], "SDN",
        "{node:#}"
    );

    // A role that may not read SDN learns nothing of its freshness: not in `datasets`, and
    // the refused query carries no warning.
    let partner_sets = by_dataset(
        &server
            .session(Some(&partner))
            .data(DATASETS, json!({}))
            .await,
    );
    assert_eq!(partner_sets.len(), 1);
    assert_eq!(partner_sets[0].0, "TRADE");
    // KR loaded nothing: its scope holds no batch.
    assert_eq!(partner_sets[0].1["batches"], 0);
    let refused = server
        .session(Some(&partner))
        .gql(SDN_PAGE, json!({}))
        .await;
    assert_eq!(error_codes(&refused), ["FORBIDDEN_FIELD"]);
    assert!(refused.get("extensions").is_none(), "{refused:#}");
    let admin_sets = server.session(Some(&admin)).data(DATASETS, json!({})).await;
    assert_eq!(admin_sets["datasets"], json!([]));
}

/// The list the answers read is the last one loaded, so its date is the one that counts, even
/// when an earlier load carried a later as-of date.
#[tokio::test]
async fn the_newest_load_dates_a_data_set_not_the_latest_as_of() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.load_ok(&["sdn", &path(&fixture("sdn"))]).await;
    let sdn = samples().join("ofac/2021-07_watchman_bench");
    env.load_ok(&["sdn", &path(&sdn), "--as-of", "2021-07-01"])
        .await;
    let analyst = env.user("analyst", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let session = server.session(Some(&analyst));
    let sets = by_dataset(&session.data(DATASETS, json!({})).await);
    assert_eq!(sets[3].1["asOf"], "2021-07-01", "{:#}", sets[3].1);
    assert_eq!(sets[3].1["stale"], true);
    let page = session.gql(SDN_PAGE, json!({})).await;
    assert!(page["extensions"]["warnings"].is_array(), "{page:#}");
}

#[tokio::test]
async fn cadences_are_configurable() {
    let env = loaded(TestEnv::new(Backend::Sqlite).await)
        .await
        .with_env("DARTTS_SDN_CADENCE_DAYS", "3653")
        .with_env("DARTTS_SUBJECTS_CADENCE_DAYS", "1");
    let analyst = env.user("analyst", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let session = server.session(Some(&analyst));
    let sets = by_dataset(&session.data(DATASETS, json!({})).await);
    assert_eq!(sets[3].1["cadenceDays"], 3653);
    assert_eq!(sets[3].1["stale"], false);
    assert_eq!(sets[2].1["cadenceDays"], 1);
    let page = session.gql(SDN_PAGE, json!({})).await;
    assert!(page.get("extensions").is_none(), "{page:#}");

    let bad = TestEnv::new(Backend::Sqlite)
        .await
        .with_env("DARTTS_SDN_CADENCE_DAYS", "monthly");
    let run = bad.run(&["migrate"]).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("DARTTS_SDN_CADENCE_DAYS"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn the_quota_counts_the_entries_a_stale_answer_delivered_and_not_the_freshness_report() {
    let env = loaded(TestEnv::new(Backend::Postgres).await).await;
    let officer = env.user("officer", "CBP_OFFICER", None).await;
    let server = env.serve().await;
    let session = server.session(Some(&officer));
    let used = || async {
        session.data("{ quotaStatus { used } }", json!({})).await["quotaStatus"]["used"]
            .as_i64()
            .expect("used")
    };
    assert_eq!(used().await, 0);
    session.data(DATASETS, json!({})).await;
    assert_eq!(used().await, 0);
    let page = session.gql(SDN_PAGE, json!({})).await;
    assert_eq!(page["extensions"]["warnings"][0]["code"], "STALE_DATA");
    assert_eq!(used().await, 3);
}

#[tokio::test]
async fn an_as_of_in_the_future_or_before_1900_is_refused() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let subjects = path(&fixture("subjects.csv"));
    let tomorrow = sea_orm::prelude::DateTimeUtc::from(std::time::SystemTime::now())
        .date_naive()
        .succ_opt()
        .expect("tomorrow")
        .to_string();
    for (as_of, why) in [
        ("2999-01-01", "in the future"),
        ("0000-01-01", "before 1900"),
        ("+99999-01-01", "not a YYYY-MM-DD date"),
    ] {
        for args in [
            vec!["load", "subjects", subjects.as_str(), "--as-of", as_of],
            vec!["refresh", "sdn", "--from", "/nowhere", "--as-of", as_of],
        ] {
            let run = env.run(&args).await;
            assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
            assert!(run.stderr.contains(why), "{args:?}: {}", run.stderr);
        }
    }
    // Tomorrow is allowed (the operator's day may already have begun); nothing else loaded.
    env.load_ok(&["subjects", subjects.as_str(), "--as-of", &tomorrow])
        .await;
    assert_eq!(env.count("batches").await, 1);
}
