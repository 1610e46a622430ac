//! An SDN list is current whole or not at all: `dartts load sdn` and `dartts refresh sdn` refuse
//! a set that is incomplete (a missing file, a file cut off part-way, rows rejected), write
//! nothing, exit non-zero, and the list held before stays the one screening reads.

use std::path::{Path, PathBuf};

use dartts_tests::{BACKENDS, Run, TestEnv, fixture, path, samples};
use serde_json::json;

fn sdn_2021() -> PathBuf {
    samples().join("ofac/2021-07_watchman_bench")
}

/// A copy of the 2021 set in `name` under the test's directory, with `edit` applied to it.
fn broken_set(env: &TestEnv, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    for file in ["sdn.csv", "sdn_comments.csv", "add.csv", "alt.csv"] {
        std::fs::copy(sdn_2021().join(file), dir.join(file)).expect("copy");
    }
    edit(&dir);
    dir
}

fn refused(run: &Run, what: &str, expected: &str) {
    assert_eq!(run.code, Some(1), "{what}: {run:?}");
    assert!(run.stderr.contains(expected), "{what}: {}", run.stderr);
    assert!(run.stderr.contains("nothing was"), "{what}: {}", run.stderr);
}

#[tokio::test]
async fn an_incomplete_sdn_set_is_refused_and_the_held_list_stays_current() {
    let whole = std::fs::read(sdn_2021().join("sdn.csv")).expect("sdn.csv");
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        env.load_ok(&["sdn", path(&sdn_2021())]).await;

        // Cut off mid-record, as an interrupted download leaves it.
        let truncated = broken_set(&env, "truncated", |dir| {
            std::fs::write(dir.join("sdn.csv"), &whole[..1_000_000]).expect("write");
        });
        // Cut off after a whole record: the aliases and addresses of the lost entries remain.
        let cut_on_a_record = broken_set(&env, "cut", |dir| {
            let end = whole[1_000_000..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("a line end")
                + 1_000_002;
            std::fs::write(dir.join("sdn.csv"), &whole[..end]).expect("write");
        });
        let no_aliases = broken_set(&env, "no_alt", |dir| {
            std::fs::remove_file(dir.join("alt.csv")).expect("rm");
        });
        // OFAC's layout, but no row is a valid entry (and so no alias or address has one).
        let all_invalid = broken_set(&env, "invalid", |dir| {
            let rows: String = (1..=500)
                .map(|n| format!("{n},\"NAME {n}\",\"robot\",\"X\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n"))
                .collect();
            std::fs::write(dir.join("sdn.csv"), rows).expect("write");
        });
        let financial = fixture("financial.csv");
        let cases: [(&str, Vec<&str>, &str); 6] = [
            (
                "truncated",
                vec!["load", "sdn", path(&truncated)],
                "sdn.csv: the last record is incomplete",
            ),
            (
                "cut on a record",
                vec!["load", "sdn", path(&cut_on_a_record)],
                "row(s) of the SDN list rejected",
            ),
            (
                "missing alt.csv",
                vec!["load", "sdn", path(&no_aliases)],
                "alt.csv: missing",
            ),
            (
                "every row invalid",
                vec!["load", "sdn", path(&all_invalid)],
                "row(s) of the SDN list rejected",
            ),
            (
                "another data set's file",
                vec!["load", "sdn", path(&financial)],
                "is not a folder holding OFAC's sdn.csv",
            ),
            (
                "refresh of a truncated set",
                vec!["refresh", "sdn", "--from", path(&truncated)],
                "sdn.csv: the last record is incomplete",
            ),
        ];
        for (what, args, expected) in &cases {
            let run = env.run(args).await;
            refused(&run, &format!("{backend:?} {what}"), expected);
        }
        let cut = env.run(&cases[1].1).await;
        assert!(
            cut.stdout.contains("rejected add.csv line ")
                && cut.stdout.contains("is not in sdn.csv"),
            "{backend:?}: {}",
            cut.stdout
        );

        // Nothing was written: one batch, the whole list, and screening still finds its entries.
        assert_eq!(env.count("batches").await, 1, "{backend:?}");
        assert_eq!(env.count("batch_rejections").await, 0, "{backend:?}");
        assert_eq!(env.count("sdn_entries").await, 8_976, "{backend:?}");
        assert_eq!(env.count("sdn_aliases").await, 11_910, "{backend:?}");
        let token = env.user("hsi", "HSI_ANALYST", None).await;
        let server = env.serve().await;
        let data = server
            .session(Some(&token))
            .data(
                r#"query($n: String!) { sdnEntries(first: 1) { totalCount }
                    screen(input: { name: $n }) { hits { source sdnEntry { entNum } } } }"#,
                // Past the cut of `truncated`: lost from the list a truncated load would make current.
                json!({ "n": "Ousmane Illiassou DJIBO" }),
            )
            .await;
        assert_eq!(
            data["sdnEntries"]["totalCount"], 8_976,
            "{backend:?}: {data}"
        );
        assert_eq!(
            data["screen"]["hits"][0]["source"], "SDN",
            "{backend:?}: {data}"
        );
    }
}
