use super::*;
use chrono::{NaiveDate, TimeZone};

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

#[test]
fn cutoff_is_calendar_years_back() {
    assert_eq!(cutoff(at(2026, 11, 27), 10).unwrap(), at(2016, 11, 27));
    assert_eq!(cutoff(at(2026, 11, 27), 1).unwrap(), at(2025, 11, 27));
    // No 29 February in the target year: the last day of that February.
    assert_eq!(cutoff(at(2024, 2, 29), 1).unwrap(), at(2023, 2, 28));
    assert_eq!(cutoff(at(2024, 2, 29), 4).unwrap(), at(2020, 2, 29));
    assert!(matches!(
        cutoff(at(2026, 1, 1), u32::MAX),
        Err(PurgeError::Cutoff(_))
    ));
}

fn digest(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

fn store(c: char) -> String {
    let d = digest(c);
    format!("raw/{}/{d}", &d[..2])
}

#[test]
fn only_raw_store_paths_are_candidates() {
    assert!(is_store_path(&store('a')));
    let d = digest('b');
    for bad in [
        format!("raw/aa/{d}"),
        format!("raw/{}/{}", &d[..2], &d[..63]),
        format!("raw/{}/../{d}", &d[..2]),
        format!("/etc/{}/{d}", &d[..2]),
        format!("raw/{}/{}", "BB", "B".repeat(64)),
        "../../etc/passwd".to_owned(),
        String::new(),
    ] {
        assert!(!is_store_path(&bad), "{bad} accepted");
    }
    let sdn = format!("{};{};../x", store('a'), store('b'));
    assert_eq!(
        raw_files(&sdn).collect::<Vec<_>>(),
        vec![store('a'), store('b')]
    );
}

fn model(id: i64, raw_path: String, purged: bool) -> batch::Model {
    batch::Model {
        id,
        dataset: "trade".into(),
        file_name: "f.csv".into(),
        sha256: digest('0'),
        accepted_rows: 0,
        rejected_rows: 0,
        as_of: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        provider_country: None,
        profile: None,
        loaded_by: "op".into(),
        loaded_at: at(2010, 1, 1),
        raw_path,
        purged_at: purged.then(|| at(2026, 1, 1)),
    }
}

#[test]
fn a_file_a_kept_batch_uses_stays() {
    let (a, b, c) = (store('a'), store('b'), store('c'));
    let batches = vec![
        // Purged now: an SDN set sharing sdn.csv (a) with the kept batch 3.
        model(1, format!("{a};{b}"), true),
        // Purged by an earlier run that stopped before removing its file.
        model(2, c.clone(), true),
        model(3, format!("{a};{}", store('d')), false),
    ];
    let plan = raw_plan(&batches, &HashSet::new(), &HashSet::from([1]));
    assert_eq!(plan.remove, BTreeSet::from([b.clone(), c.clone()]));
    assert_eq!(plan.shared, BTreeSet::from([a.clone()]));

    // A dry run pretends batch 3 is due as well: then nothing uses `a` any more.
    let plan = raw_plan(&batches, &HashSet::from([3]), &HashSet::from([1, 3]));
    assert_eq!(plan.remove.len(), 4);
    assert!(plan.shared.is_empty());
}

#[test]
fn the_report_adds_rows_per_table() {
    let batch = |id, rows: &[(&'static str, u64)]| BatchPurge {
        id,
        dataset: "trade".into(),
        file_name: "f".into(),
        sha256: digest('0'),
        loaded_at: at(2010, 1, 1),
        rows: rows.iter().copied().collect(),
    };
    let report = PurgeReport {
        due: Due::Older {
            retention_years: 10,
        },
        cutoff: Some(at(2016, 1, 1)),
        dry_run: false,
        batches: vec![
            batch(1, &[("trade_records", 5), ("batch_rejections", 1)]),
            batch(2, &[("trade_records", 2)]),
        ],
        raw_files_removed: vec![store('a')],
        raw_files_shared: Vec::new(),
    };
    assert_eq!(report.total_rows(), 8);
    let detail = report.audit_detail(Some("boom"));
    assert_eq!(detail["rows"]["trade_records"], 7);
    assert_eq!(detail["batchIds"], json!([1, 2]));
    assert_eq!(detail["cutoff"], "2016-01-01T12:00:00Z");
    assert_eq!(detail["retentionYears"], 10);
    let withdrawn = PurgeReport {
        due: Due::Batch(2),
        cutoff: None,
        ..report.clone()
    };
    let of_one = withdrawn.audit_detail(None);
    assert_eq!(of_one["withdrawnBatch"], 2);
    assert!(of_one.get("cutoff").is_none() && of_one.get("retentionYears").is_none());
    assert_eq!(detail["error"], "boom");
    assert!(report.audit_detail(None).get("error").is_none());
}
