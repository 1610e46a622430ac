use super::*;
use sea_orm::ColumnTrait;
use sea_orm::sea_query::ExprTrait;

fn all_dimensions() -> Vec<Dimension> {
    Dimension::items().iter().map(|i| i.value).collect()
}

#[test]
fn every_dimension_and_measure_has_one_reads_entry() {
    for item in Dimension::items() {
        assert_eq!(
            DIMENSION_READS
                .iter()
                .filter(|(m, _)| *m == item.name)
                .count(),
            1,
            "{}",
            item.name
        );
        assert!(!item.value.fields_read().is_empty(), "{}", item.name);
    }
    assert_eq!(DIMENSION_READS.len(), Dimension::items().len());
    for item in Measure::items() {
        assert_eq!(
            MEASURE_READS
                .iter()
                .filter(|(m, _)| *m == item.name)
                .count(),
            1
        );
    }
    assert_eq!(MEASURE_READS.len(), Measure::items().len());
    assert_eq!(Measure::RecordCount.fields_read(), &[] as &[&str]);
    assert_eq!(Dimension::Hs6.fields_read(), &["hsCode"]);
}

#[test]
fn groupings_are_checked() {
    use Dimension::*;
    assert!(Grouping::new(vec![Hs2, Hs6], vec![]).is_err());
    assert!(Grouping::new(vec![Year, Year], vec![]).is_err());
    // Messages name the GraphQL values, not the Rust variants.
    let twice = Grouping::new(vec![Hs2, Hs2], vec![])
        .err()
        .unwrap_or_default();
    assert!(twice.contains("HS2 twice"), "{twice}");
    let missing = Grouping::new(vec![Hs2], vec![(SortKey::Dimension(Port), Order::Asc)])
        .err()
        .unwrap_or_default();
    assert!(missing.contains("dimension PORT is"), "{missing}");
    assert!(Grouping::new(all_dimensions(), vec![]).is_err());
    assert!(Grouping::new(vec![Year], vec![(SortKey::Dimension(Month), Order::Asc)]).is_err());
    let g = Grouping::new(
        vec![ImporterName, Year],
        vec![(SortKey::Measure(Measure::Quantity), Order::Desc)],
    )
    .unwrap();
    assert_eq!(
        g.fields_read(),
        vec![
            "importerName",
            "declarationDate",
            "quantity",
            "quantityUnit"
        ]
    );
    assert!(Grouping::new(vec![], vec![]).is_ok());
}

#[test]
fn the_statement_groups_in_sql_per_backend() {
    let g = Grouping::new(
        vec![Dimension::Hs4, Dimension::Month],
        vec![(SortKey::Measure(Measure::ValueUsd), Order::Desc)],
    )
    .unwrap();
    let cond = Condition::all().add(Column::ProviderCountry.eq("KR"));
    let pg = DbBackend::Postgres
        .build(&g.statement(
            DbBackend::Postgres,
            Source::Records,
            cond.clone(),
            Some(Condition::all().add(Expr::col(Alias::new("value_usd")).lt(10.0))),
            Some(5),
        ))
        .to_string();
    assert!(
        pg.contains("to_char(\"declaration_date\", 'YYYY-MM')"),
        "{pg}"
    );
    assert!(pg.contains("GROUP BY substr(\"hs_code\", 1, 4)"), "{pg}");
    assert!(pg.contains("\"value_usd\" DESC NULLS LAST"), "{pg}");
    assert!(pg.contains("\"provider_country\" = 'KR'"), "{pg}");
    assert!(pg.contains("LIMIT 5"), "{pg}");
    assert!(
        pg.contains("AS \"grouped\" WHERE \"value_usd\" < 10"),
        "{pg}"
    );
    let lite = DbBackend::Sqlite
        .build(&g.statement(DbBackend::Sqlite, Source::Records, cond.clone(), None, None))
        .to_string();
    assert!(
        lite.contains("substr(\"declaration_date\", 1, 7)"),
        "{lite}"
    );
    assert!(!lite.contains("LIMIT"), "{lite}");
    // The rollup under the records' name, so the condition's qualified columns resolve.
    let rolled = DbBackend::Postgres
        .build(&g.statement(
            DbBackend::Postgres,
            Source::Rollup(&crate::analysis::rollup::IMPORTER_YEARS),
            cond,
            None,
            Some(5),
        ))
        .to_string();
    assert!(
        rolled.contains("FROM \"trade_importer_years\" AS \"trade_records\""),
        "{rolled}"
    );
    assert!(
        rolled.contains("\"trade_records\".\"provider_country\" = 'KR'"),
        "{rolled}"
    );
    assert!(
        rolled.contains("CAST(COALESCE(SUM(\"record_count\"), 0) AS BIGINT)"),
        "{rolled}"
    );
    // Every sum, for a caller that reads them all: no sort, no window, only the cap.
    let all = DbBackend::Postgres
        .build(&g.all_sums(
            DbBackend::Postgres,
            Source::Rollup(&crate::analysis::rollup::HS6_YEARS),
            Condition::all(),
            7,
        ))
        .to_string();
    assert!(
        all.contains("FROM \"trade_hs6_years\" AS \"trade_records\""),
        "{all}"
    );
    assert!(all.contains("GROUP BY substr(\"hs_code\", 1, 4)"), "{all}");
    assert!(!all.contains("ORDER BY") && !all.contains("OVER"), "{all}");
    assert!(all.ends_with("LIMIT 7"), "{all}");
}

#[test]
fn the_order_is_the_requested_keys_then_every_dimension() {
    let g = Grouping::new(
        vec![Dimension::Hs4, Dimension::Month],
        vec![
            (SortKey::Dimension(Dimension::Month), Order::Desc),
            (SortKey::Measure(Measure::RecordCount), Order::Asc),
        ],
    )
    .unwrap();
    let keys: Vec<(&str, String, bool)> = g
        .order_keys()
        .into_iter()
        .map(|k| (k.name, k.alias, k.desc))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("MONTH", "d1".to_owned(), true),
            ("RECORD_COUNT", "record_count".to_owned(), false),
            ("HS4", "d0".to_owned(), false),
            ("MONTH", "d1".to_owned(), false),
        ]
    );
    let pg = DbBackend::Postgres
        .build(&g.statement(
            DbBackend::Postgres,
            Source::Records,
            Condition::all(),
            None,
            Some(3),
        ))
        .to_string();
    assert!(
        pg.ends_with(
            "ORDER BY \"d1\" DESC NULLS LAST, \"record_count\" ASC NULLS LAST, \
             \"d0\" ASC NULLS LAST, \"d1\" ASC NULLS LAST LIMIT 3"
        ),
        "{pg}"
    );
    // The grand total: one group, no key to break ties on.
    let grand = Grouping::new(vec![], vec![]).unwrap();
    assert!(grand.order_keys().is_empty());
}
