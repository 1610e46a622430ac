use super::*;

fn event(n: usize) -> AuditEvent {
    AuditEvent::new(EventType::Query, "ok")
        .actor(format!("user{n}"))
        .detail(serde_json::json!({ "padding": "x".repeat(100) }))
}

/// Statements split a batch where the cap says, and the pieces chain on: hashes recompute
/// from the JSON rows, each links to the one before, across statements too.
#[test]
fn statements_split_by_size_and_chain_on() {
    let events: Vec<AuditEvent> = (0..10).map(event).collect();
    let refs: Vec<&AuditEvent> = events.iter().collect();
    let key = AuditKey::new([7; 32]);
    let genesis = Head {
        last_id: 41,
        last_hash: "0".repeat(64),
        keyed_from: 1,
    };
    let (whole, n, _) =
        rows_json(&key, Instance::Domestic, &genesis, &refs, STATEMENT_BYTES).unwrap();
    assert_eq!(n, 10, "ten small events fit one statement");
    let one_row = whole.len() / 10;

    let mut head = genesis;
    let mut rows: Vec<serde_json::Value> = Vec::new();
    let mut rest = &refs[..];
    let mut pieces = 0;
    while !rest.is_empty() {
        let (json, count, next) =
            rows_json(&key, Instance::Domestic, &head, rest, 3 * one_row).unwrap();
        assert!(json.len() <= 3 * one_row, "{} > cap", json.len());
        assert!((1..=3).contains(&count));
        rows.extend(serde_json::from_str::<Vec<serde_json::Value>>(&json).unwrap());
        head = next;
        rest = &rest[count..];
        pieces += 1;
    }
    assert!(pieces >= 4, "{pieces} statements");
    assert_eq!(head.last_id, 51);
    let mut prev = "0".repeat(64);
    for (i, row) in rows.iter().enumerate() {
        let model = audit_event::Model {
            id: row["id"].as_i64().unwrap(),
            at: row["at"].as_str().unwrap().parse().unwrap(),
            instance: row["instance"].as_str().unwrap().into(),
            source: None,
            actor: row["actor"].as_str().map(Into::into),
            event_type: row["event_type"].as_str().unwrap().into(),
            outcome: row["outcome"].as_str().unwrap().into(),
            records: row["records"].as_i64().unwrap(),
            detail: row["detail"].as_str().unwrap().into(),
            prev_hash: row["prev_hash"].as_str().unwrap().into(),
            hash: row["hash"].as_str().unwrap().into(),
        };
        assert_eq!(model.id, 42 + i as i64);
        assert_eq!(model.prev_hash, prev);
        assert_eq!(event_hash(&model, Some(&key)), model.hash);
        prev = model.hash;
    }
    assert_eq!(head.last_hash, prev);
}

#[test]
fn an_event_larger_than_the_cap_still_goes_alone() {
    let events = [event(1), event(2)];
    let refs: Vec<&AuditEvent> = events.iter().collect();
    let head = Head {
        last_id: 0,
        last_hash: "0".repeat(64),
        keyed_from: 1,
    };
    let key = AuditKey::new([7; 32]);
    let (_, count, next) = rows_json(&key, Instance::Domestic, &head, &refs, 10).unwrap();
    assert_eq!((count, next.last_id), (1, 1));
}
