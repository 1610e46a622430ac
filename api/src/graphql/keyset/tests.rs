use super::*;
use crate::audit::AuditKey;
use crate::graphql::pagination::MAX_PAGE;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;

fn keys() -> Vec<SortKey> {
    keys_with(false, false)
}

/// The test's keys, with the nullable text key in either direction and NULL placement.
fn keys_with(name_desc: bool, nulls_last: bool) -> Vec<SortKey> {
    let name = SortKey::new("name", Expr::col("n"), KeyKind::Text)
        .nullable(true)
        .desc(name_desc);
    vec![
        SortKey::new("value", Expr::col("v"), KeyKind::Float).desc(true),
        if nulls_last { name.nulls_last() } else { name },
        SortKey::new("id", Expr::col("id"), KeyKind::Int),
    ]
}

/// The cursor key of a deployment whose audit key is `secret`.
fn key_of(secret: u8) -> Arc<CursorKey> {
    Arc::new(CursorKey::derive(&AuditKey::new([secret; 32])).unwrap())
}

fn key() -> Arc<CursorKey> {
    key_of(7)
}

fn page(after: Option<&str>) -> Result<KeysetPage, ApiError> {
    Keyset::new("things", keys()).page(&key(), Some(10), after)
}

/// The default order (the id alone) reads the page's ids first and then only their rows;
/// an explicit order is one query, which an index on filter and order answers directly.
#[test]
fn only_the_id_order_is_a_deferred_join() {
    use entities::trade_record::{Column, Entity};
    use sea_orm::{DbBackend, QueryTrait};
    let id = SortKey::new("id", Expr::col((Entity, Column::Id)), KeyKind::Int);
    let value = SortKey::new(
        "value",
        Expr::col((Entity, Column::DeclaredValueUsd)),
        KeyKind::Float,
    )
    .desc(true);
    let sql = |keys: Vec<SortKey>, walk| {
        let page = Keyset::new("tradeRecords", keys)
            .page(&key(), Some(20), None)
            .unwrap();
        page.apply(Entity::find().filter(Column::HsCode.gte("84")), walk)
            .build(DbBackend::Postgres)
            .to_string()
    };
    let deferred = sql(vec![id.clone()], IdWalk::Key);
    assert!(
        deferred.contains("\"id\" IN (SELECT \"trade_records\".\"id\" FROM \"trade_records\""),
        "{deferred}"
    );
    assert!(
        deferred.contains("ORDER BY \"trade_records\".\"id\" ASC NULLS LAST LIMIT 21)"),
        "{deferred}"
    );
    // Sorting the matches: the subquery's order is one no index serves; the page's order is
    // the id's, as before.
    let sorted = sql(vec![id.clone()], IdWalk::SortMatches);
    assert!(
        sorted.contains("ORDER BY \"trade_records\".\"id\" + 0 ASC LIMIT 21)"),
        "{sorted}"
    );
    assert!(
        sorted.ends_with(") ORDER BY \"trade_records\".\"id\" ASC NULLS LAST"),
        "{sorted}"
    );
    // An explicit order is read directly, whatever the walk.
    for walk in [IdWalk::Key, IdWalk::SortMatches] {
        let direct = sql(vec![value.clone(), id.clone()], walk);
        assert!(!direct.contains("IN (SELECT"), "{direct}");
        assert!(!direct.contains("+ 0"), "{direct}");
        assert!(direct.ends_with("LIMIT 21"), "{direct}");
    }
}

#[test]
fn nulls_sort_largest_unless_last_is_asked_for() {
    let names = |name_desc, nulls_last| {
        let keys = keys_with(name_desc, nulls_last);
        let mut rows: Vec<Vec<KeyValue>> = [None, Some("a"), Some("b")]
            .into_iter()
            .map(|n| vec![KeyValue::Float(1.0), n.map(str::to_owned).into(), 0.into()])
            .collect();
        rows.sort_by(|a, b| compare(&keys, a, b));
        rows.into_iter().map(|r| r[1].clone()).collect::<Vec<_>>()
    };
    let (a, b) = (KeyValue::Text("a".into()), KeyValue::Text("b".into()));
    assert_eq!(names(false, false), [a.clone(), b.clone(), KeyValue::Null]);
    assert_eq!(names(true, false), [KeyValue::Null, b.clone(), a.clone()]);
    assert_eq!(names(false, true), [a.clone(), b.clone(), KeyValue::Null]);
    assert_eq!(names(true, true), [b, a, KeyValue::Null]);
}

proptest! {
    /// A float key comes back from its cursor bit for bit: the next page seeks with `=` on it.
    #[test]
    fn float_positions_round_trip_exactly(v in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
        let p = page(None).unwrap();
        let position = vec![KeyValue::Float(v), KeyValue::Null, KeyValue::Int(1)];
        let c = p.cursor(position.clone()).encode_cursor();
        let back = page(Some(&c)).unwrap().after.unwrap();
        let (KeyValue::Float(x), KeyValue::Float(y)) = (&back[0], &position[0]) else {
            panic!("{back:?}");
        };
        prop_assert_eq!(x.to_bits(), y.to_bits());
    }
}

#[test]
fn cursors_round_trip() {
    let p = page(None).unwrap();
    let position = vec![KeyValue::Float(12.5), KeyValue::Null, KeyValue::Int(7)];
    let c = p.cursor(position.clone()).encode_cursor();
    assert_eq!(page(Some(&c)).unwrap().after, Some(position));
}

/// A malformed cursor's refusal: BAD_USER_INPUT, whatever is wrong with it.
fn refused(after: &str) -> bool {
    matches!(page(Some(after)), Err(ApiError::BadUserInput(_)))
}

/// A cursor shows nothing of its position, not even its connection and order; and two cursors
/// of one row differ, so a client cannot even tell equal positions apart.
#[test]
fn cursors_are_opaque() {
    let p = page(None).unwrap();
    let position = vec![
        KeyValue::Float(48000.5),
        KeyValue::Text("Acme Imports LLC".into()),
        KeyValue::Int(20352),
    ];
    let a = p.cursor(position.clone()).encode_cursor();
    let b = p.cursor(position.clone()).encode_cursor();
    assert_ne!(a, b);
    for c in [&a, &b] {
        let bytes = URL_SAFE_NO_PAD.decode(c).unwrap();
        for plain in ["Acme", "48000", "20352", "things", "value"] {
            assert!(
                !bytes.windows(plain.len()).any(|w| w == plain.as_bytes()),
                "{plain} in {c}"
            );
        }
        assert_eq!(page(Some(c)).unwrap().after, Some(position.clone()));
    }
}

/// Only a cursor sealed with this deployment's key opens: one with any byte altered, cut
/// short, sealed with another audit key's cursor key, or the plain JSON of version 1, is refused
/// as malformed. One sealed by another process with the same audit key (a replica, a restart:
/// every `page` here derives its key anew) opens.
#[test]
fn altered_foreign_and_plain_cursors_are_refused() {
    let p = page(None).unwrap();
    let position = vec![
        KeyValue::Float(1.5),
        KeyValue::Text("a".into()),
        KeyValue::Int(3),
    ];
    let c = p.cursor(position.clone()).encode_cursor();
    assert_eq!(page(Some(&c)).unwrap().after, Some(position.clone()));
    let bytes = URL_SAFE_NO_PAD.decode(&c).unwrap();
    for i in 0..bytes.len() {
        let mut altered = bytes.clone();
        altered[i] ^= 0x01;
        assert!(refused(&URL_SAFE_NO_PAD.encode(&altered)), "byte {i}");
    }
    for len in [0, 23, 24, 40, bytes.len() - 1] {
        assert!(
            refused(&URL_SAFE_NO_PAD.encode(&bytes[..len])),
            "{len} bytes"
        );
    }
    let elsewhere = Keyset::new("things", keys())
        .page(&key_of(8), None, None)
        .unwrap();
    assert!(refused(&elsewhere.cursor(position).encode_cursor()));
    let plain = format!(r#"{{"v":1,"s":"{}","k":[1.5,"a",3]}}"#, p.signature);
    assert!(refused(&URL_SAFE_NO_PAD.encode(&plain)));
    // The plain JSON sealed, as if by this key, but of the old version.
    assert!(refused(&p.key.seal(plain.as_bytes())));
}

#[test]
fn foreign_malformed_and_out_of_range_cursors_are_refused() {
    let ours = page(None).unwrap();
    let other = Keyset::new("others", keys())
        .page(&key(), None, None)
        .unwrap();
    let foreign = other
        .cursor(vec![KeyValue::Float(1.0), KeyValue::Null, KeyValue::Int(1)])
        .encode_cursor();
    assert!(page(Some(&foreign)).is_err());
    let mut flipped = keys();
    flipped[0].desc = false;
    let other_order = Keyset::new("things", flipped)
        .page(&key(), None, None)
        .unwrap();
    let c = other_order
        .cursor(vec![KeyValue::Float(1.0), KeyValue::Null, KeyValue::Int(1)])
        .encode_cursor();
    assert!(page(Some(&c)).is_err());
    for bad in [
        "",
        "bm9wZQ",
        // Old offset cursor.
        "b2Zmc2V0OjQx",
    ] {
        assert!(page(Some(bad)).is_err(), "{bad}");
    }
    // Sealed with the right key, as only the server could: the checks after opening hold too.
    let forge = |k: &str| {
        ours.key
            .seal(format!(r#"{{"v":{VERSION},"s":"{}","k":{k}}}"#, ours.signature).as_bytes())
    };
    // Well-formed, for comparison.
    assert!(page(Some(&forge(r#"[1.5,"a",3]"#))).is_ok());
    for k in [
        r#"[1.5,"a"]"#,
        r#"[1.5,"a",3,4]"#,
        r#"["x","a",3]"#,
        r#"[1.5,"a",1e30]"#,
        r#"[1.5,"a",18446744073709551615]"#,
        r#"[null,"a",3]"#,
        r#"[1.5,"a",null]"#,
        r#"[1.5,"a\u0000b",3]"#,
    ] {
        assert!(page(Some(&forge(k))).is_err(), "{k}");
    }
    assert!(
        Keyset::new("t", keys())
            .page(&key(), Some(MAX_PAGE + 1), None)
            .is_err()
    );
    assert!(
        Keyset::new("t", keys())
            .page(&key(), Some(-1), None)
            .is_err()
    );
}

/// Evaluates the seek condition's logic in Rust over one row (mirrors `after`/`equal`).
fn after_in_rust(keys: &[SortKey], row: &[KeyValue], pos: &[KeyValue]) -> bool {
    compare(keys, row, pos) == Ordering::Greater
}

fn row() -> impl Strategy<Value = Vec<KeyValue>> {
    (
        prop_oneof![Just(1.0), Just(2.0), Just(3.0)],
        prop_oneof![
            Just(KeyValue::Null),
            Just(KeyValue::Text("a".into())),
            Just(KeyValue::Text("b".into()))
        ],
        0i64..4,
    )
        .prop_map(|(v, n, id)| vec![KeyValue::Float(v), n, KeyValue::Int(id)])
}

proptest! {
    /// Paging through rows with the seek predicate, evaluated by SQLite, yields every row
    /// exactly once and in ORDER BY order, whatever the NULLs and ties.
    #[test]
    fn seek_pages_cover_every_row_once(
        rows in proptest::collection::vec(row(), 0..12),
        name_desc: bool,
        nulls_last: bool,
    ) {
        let keys = keys_with(name_desc, nulls_last);
        let mut sorted = rows.clone();
        sorted.sort_by(|a, b| compare(&keys, a, b));
        for pos in &rows {
            let expected: Vec<_> = sorted
                .iter()
                .filter(|r| after_in_rust(&keys, r, pos))
                .cloned()
                .collect();
            let got = sqlite::after(&keys, &rows, pos);
            prop_assert_eq!(got, expected);
        }
    }

    /// Paging through a result computed in memory, page by page with each page's last
    /// cursor, yields every item exactly once, in the order SQL would give.
    #[test]
    fn memory_windows_cover_every_item_once(
        rows in proptest::collection::vec(row(), 0..30),
        first in 1i32..5,
        name_desc: bool,
        nulls_last: bool,
    ) {
        // The last key must be unique, as a row id is.
        let rows: Vec<Vec<KeyValue>> = rows
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r[2] = KeyValue::Int(i64::try_from(i).unwrap());
                r
            })
            .collect();
        let keys = keys_with(name_desc, nulls_last);
        let mut expected = rows.clone();
        expected.sort_by(|a, b| compare(&keys, a, b));
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = Keyset::new("things", keys.clone())
                .page(&key(), Some(first), after.as_deref())
                .unwrap();
            let edges = page.window(rows.clone(), Clone::clone);
            let more = edges.len() > usize::try_from(first).unwrap();
            let edges: Vec<_> = edges.into_iter().take(usize::try_from(first).unwrap()).collect();
            after = edges.last().map(|(c, _)| c.encode_cursor());
            seen.extend(edges.into_iter().map(|(_, r)| r));
            if !more {
                break;
            }
        }
        prop_assert_eq!(seen, expected);
    }
}

/// The seek condition and ORDER BY as SQLite runs them, over an in-memory table.
mod sqlite {
    use super::*;
    use sea_orm::sea_query::{Alias, Query, SqliteQueryBuilder};

    pub fn after(keys: &[SortKey], rows: &[Vec<KeyValue>], pos: &[KeyValue]) -> Vec<Vec<KeyValue>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            use sea_orm::sqlx::{Connection, Row, SqliteConnection};
            let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
            sea_orm::sqlx::query("CREATE TABLE t (v REAL NOT NULL, n TEXT, id INTEGER)")
                .execute(&mut conn)
                .await
                .unwrap();
            for r in rows {
                let n = match &r[1] {
                    KeyValue::Text(s) => Some(s.clone()),
                    _ => None,
                };
                let (KeyValue::Float(v), KeyValue::Int(id)) = (&r[0], &r[2]) else {
                    unreachable!()
                };
                sea_orm::sqlx::query("INSERT INTO t VALUES (?, ?, ?)")
                    .bind(v)
                    .bind(n)
                    .bind(id)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            let p = Keyset::new("things", keys.to_vec())
                .page(&key(), Some(100), None)
                .unwrap();
            let p = KeysetPage {
                after: Some(pos.to_vec()),
                ..p
            };
            let mut q = Query::select();
            q.columns([Alias::new("v"), Alias::new("n"), Alias::new("id")])
                .from(Alias::new("t"))
                .cond_where(p.seek().unwrap());
            for key in &p.keys {
                let (order, nulls) = key.order();
                q.order_by_expr_with_nulls(key.col(), order, nulls);
            }
            let sql = q.to_string(SqliteQueryBuilder);
            // Built by sea-query from the test's own values.
            sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .into_iter()
                .map(|r| {
                    vec![
                        KeyValue::Float(r.get::<f64, _>(0)),
                        r.get::<Option<String>, _>(1).into(),
                        KeyValue::Int(r.get::<i64, _>(2)),
                    ]
                })
                .collect()
        })
    }
}

/// On the embedded default, a country's by-value index holds the declaration date (migration
/// 000024, the last column of its key: SQLite has no `INCLUDE`), so a page of a country in a
/// date range is read from the index alone: SQLite had read each of the country's records
/// from the table to test its date (1M rows, origin CN in 2024: 0.5–0.7 s a page, 25–55 ms
/// since). SQLite without statistics weighs a table by its size, and on an empty one reads it
/// anyway, so the check runs on 20,000 rows.
#[tokio::test]
async fn sqlite_pages_a_country_in_a_date_range_from_its_index() {
    use entities::trade_record::{Column, Entity};
    use sea_orm::{ConnectionTrait, DbBackend, QueryFilter, QueryTrait, Statement};
    let dir = tempfile::tempdir().unwrap();
    let db = crate::db::connect(&crate::config::Settings::embedded_in(dir.path()))
        .await
        .unwrap();
    db.execute_unprepared(
        "INSERT INTO batches (id, dataset, file_name, sha256, accepted_rows, rejected_rows, \
         as_of, loaded_by, loaded_at, raw_path) VALUES (1, 'trade', 't.csv', 'x', 20000, 0, \
         '2024-01-01', 'test', '2024-01-01T00:00:00Z', ''); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
         INSERT INTO trade_records (batch_id, provider_country, declaration_id, line_number, \
         declaration_date, direction, hs_code, reporting_country, country_of_origin, \
         partner_country, declared_value, declared_currency, declared_value_usd) \
         SELECT 1, 'US', 'D-' || i, 1, date('2021-01-01', '+' || (i % 1400) || ' days'), \
         'IMPORT', '8471300100', 'US', char(65 + i % 20, 65 + i % 7), \
         char(65 + i % 13, 65 + i % 3), i, 'USD', i FROM n",
    )
    .await
    .unwrap();
    // Without statistics SQLite sizes the table from its file; rows still in the WAL (how
    // many depends on whether another pooled connection's read held back the automatic
    // checkpoint) made it choose the non-covering plan in about one run in five.
    db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .unwrap();
    let id = SortKey::new("id", Expr::col((Entity, Column::Id)), KeyKind::Int);
    let year = || {
        sea_orm::Condition::all()
            .add(Column::DeclarationDate.gte("2024-01-01"))
            .add(Column::DeclarationDate.lte("2024-12-31"))
    };
    for (condition, index) in [
        (
            year().add(Column::CountryOfOrigin.is_in(["CN"])),
            "ix_trade_origin_value",
        ),
        (
            year().add(Column::PartnerCountry.is_in(["DE"])),
            "ix_trade_partner_value",
        ),
    ] {
        let page = Keyset::new("tradeRecords", vec![id.clone()])
            .sort_up_to(COVERED_SORT_UP_TO)
            .page(&key(), Some(50), None)
            .unwrap();
        let built = page
            .apply(Entity::find().filter(condition), IdWalk::Key)
            .build(DbBackend::Sqlite);
        let explain = Statement {
            sql: format!("EXPLAIN QUERY PLAN {}", built.sql),
            ..built
        };
        let plan: Vec<String> = db
            .query_all_raw(explain)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String>("", "detail").unwrap())
            .collect();
        let covering = format!("SEARCH trade_records USING COVERING INDEX {index}");
        assert!(
            plan.iter().any(|step| step.starts_with(&covering)),
            "{index}: {plan:?}"
        );
    }
}
