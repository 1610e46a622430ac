//! Country codes at every door (`dartts::country::alpha2`): a file's rows and the GraphQL
//! filters take a code ISO 3166-1 assigns or leaves to users, and refuse one no country has,
//! naming the code meant where there is one. Before, only the shape was checked: a filter for
//! `UK` answered an empty page, and rows written with `UK` loaded where no filter for the
//! United Kingdom found them.

use dartts_tests::{BACKENDS, TestEnv, error_codes, fixture, path};
use serde_json::json;

#[tokio::test]
async fn a_code_no_country_has_is_refused_at_load_and_in_every_filter() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let good = std::fs::read_to_string(fixture("trade_canonical.csv")).expect("fixture");
        let mut lines: Vec<String> = good.lines().take(4).map(str::to_owned).collect();
        // Line 2 keeps its origin, CN; line 3 says UK; line 4 ZZ (customs' "unknown", a code
        // ISO leaves to users).
        lines[2] = lines[2].replacen(",CN,CN,US,US,CN,", ",UK,CN,US,US,CN,", 1);
        lines[3] = lines[3].replacen(",BD,BD,US,US,BD,", ",zz,BD,US,US,BD,", 1);
        assert!(
            lines[2].contains(",UK,") && lines[3].contains(",zz,"),
            "{lines:?}"
        );
        let file = env.dir.path().join("countries.csv");
        std::fs::write(&file, lines.join("\n") + "\n").expect("write");
        let run = env
            .load_ok(&["trade", path(&file), "--provider", "US"])
            .await;
        assert!(
            run.stdout.contains("2 rows accepted, 1 rejected"),
            "{backend:?}: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains(
                "line 3: country_of_origin \"UK\" is not an ISO 3166-1 alpha-2 country code \
                 (the United Kingdom's code is GB)"
            ),
            "{backend:?}: {}",
            run.stdout
        );

        let server = env.serve_as_analyst().await;
        let count = |origin: &str| {
            format!(
                "{{ tradeRecords(filter: {{ countryOfOrigin: [\"{origin}\"] }}) {{ totalCount }} }}"
            )
        };
        // The user-assigned code was kept, upper-cased, and a filter finds it in any case.
        for origin in ["ZZ", "zz", " Zz "] {
            let data = server.data(&count(origin), json!({})).await;
            assert_eq!(
                data["tradeRecords"]["totalCount"], 1,
                "{backend:?} {origin:?}"
            );
        }
        let data = server.data(&count("CN"), json!({})).await;
        assert_eq!(data["tradeRecords"]["totalCount"], 1, "{backend:?}");

        // Every argument that names countries refuses what no country has, and says why.
        for (query, says) in [
            (count("UK"), "countryOfOrigin: \"UK\" is not an ISO 3166-1 alpha-2 country code (the United Kingdom's code is GB)"),
            (count("chn"), "countryOfOrigin: \"chn\" is not an ISO 3166-1 alpha-2 country code (China's code is CN)"),
            (count("OO"), "countryOfOrigin: \"OO\" is not an ISO 3166-1 alpha-2 country code"),
            (
                "{ tradeRecords(filter: { partnerCountry: [\"CN\", \"EL\"] }) { totalCount } }".to_owned(),
                "partnerCountry: \"EL\" is not an ISO 3166-1 alpha-2 country code (Greece's code is GR)",
            ),
            (
                "{ mirrorDiscrepancies(filter: { nation: [\"UK\"] }) { pageInfo { hasNextPage } } }".to_owned(),
                "nation: \"UK\"",
            ),
            (
                "{ redFlags(kinds: [TRANSSHIPMENT], hubs: [\"AE\", \"YU\"]) { totalCount } }".to_owned(),
                "hubs: \"YU\" is not an ISO 3166-1 alpha-2 country code",
            ),
        ] {
            let body = server.gql(&query, json!({})).await;
            assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"], "{backend:?} {query}: {body}");
            let message = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains(says), "{backend:?} {query}: {message}");
        }
    }
}

#[tokio::test]
async fn accounts_and_exports_take_only_a_country_s_code() {
    let env = TestEnv::new(BACKENDS[0]).await;
    let run = env
        .run(&[
            "user",
            "add",
            "x",
            "--role",
            "FOREIGN_PARTNER",
            "--nation",
            "uk",
        ])
        .await;
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr.contains("nation \"uk\" is not an ISO 3166-1 alpha-2 country code (the United Kingdom's code is GB)"),
        "{}",
        run.stderr
    );
    // A code ISO leaves to users is a nation a partner may be given.
    let run = env
        .run(&[
            "user",
            "add",
            "x",
            "--role",
            "FOREIGN_PARTNER",
            "--nation",
            "XK",
        ])
        .await;
    assert!(run.ok, "{}", run.stderr);
    let run = env
        .run(&[
            "export-foreign",
            "--partner",
            "EL",
            "--out",
            "x.csv",
            "--pseudonym-key",
            "a-pseudonym-key-of-at-least-32-bytes",
        ])
        .await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("(Greece's code is GR)"),
        "{}",
        run.stderr
    );
}
