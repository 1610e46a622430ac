//! Keeping `peer_profiles` in step with `trade_records`: after a load (for the HS codes it
//! touched) and after a purge or on demand (every HS code). Each HS code's groups are
//! recomputed whole from its rows, with the same Rust functions the scoped on-the-fly path
//! uses, and replaced in one transaction, so a reader sees the old or the new profiles of a
//! code, never a mix.

use std::collections::BTreeSet;
use std::sync::Arc;

use entities::{peer_profile, trade_record};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
    RuntimeErr,
};

use crate::ingest::sink::{Cell, LoadTx, Table};

use super::peers::{self, GroupKey, PeerFacts, Profile};

/// HS codes recomputed per round trip: bounds the rows held in memory to those codes' rows.
/// Each round is a read, a delete, inserts and a commit: with 50 codes, refreshing the 6,000
/// codes of 200,000 generated rows took 12 s in 120 rounds; with 400, 4.4 s in 15 rounds and
/// about 100 MB resident (a round holds the facts of 400 codes' rows: at 10M rows of 6,000
/// codes, about 670,000).
const CODES_PER_ROUND: usize = 400;

/// The columns of a record that its peer groups need, in `PeerFacts` order.
pub type FactRow = (
    String,
    Option<String>,
    Option<i32>,
    Option<String>,
    Option<f64>,
    Option<f64>,
);

pub fn fact_columns() -> [trade_record::Column; 6] {
    use trade_record::Column;
    [
        Column::HsCode,
        Column::QuantityUnit,
        Column::PeerYear,
        Column::CountryOfOrigin,
        Column::LogUnitPrice,
        Column::LogValuePerKg,
    ]
}

pub fn to_facts(row: FactRow) -> PeerFacts {
    let (hs_code, unit, year, origin, log_unit_price, log_value_per_kg) = row;
    PeerFacts {
        hs_code,
        unit,
        year,
        origin,
        log_unit_price,
        log_value_per_kg,
    }
}

/// The facts of the records matching `condition` (which must carry the caller's row scope
/// when it is used for a caller).
pub async fn facts(db: &DatabaseConnection, condition: Condition) -> Result<Vec<PeerFacts>, DbErr> {
    let rows: Vec<FactRow> = trade_record::Entity::find()
        .select_only()
        .columns(fact_columns())
        .filter(condition)
        .filter(trade_record::Column::PeerYear.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(to_facts).collect())
}

/// Recomputes the profiles of `hs_codes`; returns how many profiles were written.
///
/// While a round's profiles are written, the next round's facts are read (a second
/// connection) and their profiles computed (a blocking thread): on a first load of 1M rows
/// the reads were about 40 % of the refresh and the writes about half, one after the other,
/// and then the computing came after both.
pub async fn refresh(db: &DatabaseConnection, hs_codes: &BTreeSet<String>) -> Result<u64, DbErr> {
    let codes: Vec<String> = hs_codes.iter().cloned().collect();
    let rounds: Vec<&[String]> = codes.chunks(CODES_PER_ROUND).collect();
    let Some(first) = rounds.first() else {
        return Ok(0);
    };
    let mut profiles = profiles_of(db, first).await?;
    let mut written = 0;
    for (i, round) in rounds.iter().enumerate() {
        let write = replace(db, round, &profiles);
        let next = match rounds.get(i + 1) {
            Some(following) => {
                let (wrote, next) = tokio::join!(write, profiles_of(db, following));
                wrote?;
                next?
            }
            None => {
                write.await?;
                Vec::new()
            }
        };
        written += profiles.len() as u64;
        profiles = next;
    }
    Ok(written)
}

/// The profiles of the groups of `codes`' records. The facts are dropped once summed.
async fn profiles_of(
    db: &DatabaseConnection,
    codes: &[String],
) -> Result<Vec<(GroupKey, Profile)>, DbErr> {
    let records = facts_of(db, codes).await?;
    tokio::task::spawn_blocking(move || peers::profiles(&records).into_iter().collect())
        .await
        .map_err(|e| DbErr::Custom(format!("computing peer profiles: {e}")))
}

async fn facts_of(db: &DatabaseConnection, codes: &[String]) -> Result<Vec<PeerFacts>, DbErr> {
    facts(
        db,
        Condition::all().add(trade_record::Column::HsCode.is_in(codes.iter().cloned())),
    )
    .await
}

/// Replaces the profiles of `round`'s codes with `profiles` in one transaction, written the
/// way a load writes its rows (`ingest::sink`): one `COPY` on PostgreSQL, multi-row `INSERT`s
/// with bound parameters on SQLite. Of the 4.0 s a 1M-row first load spent inserting its
/// 368,000 profiles as JSON parameters (`json_to_recordset`, 3,000 a statement), the same rows
/// took 1.8 s by `COPY` and 3.1 s by `json_to_recordset`, measured apart on one server.
async fn replace(
    db: &DatabaseConnection,
    round: &[String],
    profiles: &[(GroupKey, Profile)],
) -> Result<(), DbErr> {
    let rows = profiles
        .iter()
        .map(profile_row)
        .collect::<Result<Vec<_>, _>>()?;
    let mut tx = LoadTx::begin(db).await.map_err(db_err)?;
    tx.delete_where_in(PROFILES.name, "hs_code", round)
        .await
        .map_err(db_err)?;
    tx.write(&PROFILES, &rows).await.map_err(db_err)?;
    tx.commit().await.map_err(db_err)
}

/// The columns of `peer_profiles` a refresh writes, in `profile_row`'s order.
const PROFILES: Table = Table {
    name: "peer_profiles",
    columns: &[
        "measure",
        "hs_code",
        "quantity_unit",
        "year",
        "origin",
        "peer_count",
        "median",
        "q1",
        "q3",
        "mad",
    ],
};

/// One profile as `PROFILES`' cells. Summaries of finite logarithms are finite; a value that
/// is not fails the refresh rather than reaching the table (whose columns would take it).
fn profile_row((key, p): &(GroupKey, Profile)) -> Result<Vec<Cell>, DbErr> {
    if ![p.median, p.q1, p.q3, p.mad].iter().all(|v| v.is_finite()) {
        return Err(DbErr::Custom(format!(
            "a profile of HS code {} is not finite",
            key.hs_code
        )));
    }
    Ok(vec![
        Cell::Text(key.measure.as_str().to_owned()),
        Cell::Text(key.hs_code.clone()),
        Cell::Text(key.unit.clone()),
        Cell::Int(i64::from(key.year)),
        Cell::Text(key.origin.clone()),
        Cell::Int(i64::try_from(p.peer_count).unwrap_or(i64::MAX)),
        Cell::Float(p.median),
        Cell::Float(p.q1),
        Cell::Float(p.q3),
        Cell::Float(p.mad),
    ])
}

fn db_err(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
}

/// Recomputes every profile: the codes that have rows, and drops those of codes that have none.
pub async fn refresh_all(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let mut codes: BTreeSet<String> = trade_record::Entity::find()
        .select_only()
        .column(trade_record::Column::HsCode)
        .distinct()
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let profiled: Vec<String> = peer_profile::Entity::find()
        .select_only()
        .column(peer_profile::Column::HsCode)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    codes.extend(profiled);
    // A code with no rows left gets no profiles back: `refresh` deletes before it inserts.
    refresh(db, &codes).await
}
