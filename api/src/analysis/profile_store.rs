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

/// HS codes recomputed per round trip, at most. Each round is a read, a delete, inserts and a
/// commit: with 50 codes, refreshing the 6,000 codes of 200,000 generated rows took 12 s in 120
/// rounds; with 400, 4.4 s in 15 rounds.
const CODES_PER_ROUND: usize = 400;

/// The records a round reads, about: a round holds its codes' facts (about 200 bytes each) and
/// the next round's are read meanwhile. A fixed number of codes held what their rows came to:
/// 400 codes of a 3M-row load took the loader to 290 MB, and 10M rows would have been about
/// 670,000 facts a round.
const RECORDS_PER_ROUND: usize = 100_000;

/// The first round's codes, before any round has told how many records a code has.
const FIRST_ROUND_CODES: usize = 100;

/// The codes of the round after one of `codes` codes that read `records` records: as many as
/// `RECORDS_PER_ROUND` holds at that round's records per code, at most twice as many as it had
/// (the next codes may have more records) and at most `CODES_PER_ROUND`.
fn next_round(codes: usize, records: usize) -> usize {
    let fit = RECORDS_PER_ROUND.saturating_mul(codes) / records.max(1);
    fit.clamp(1, codes.saturating_mul(2).clamp(1, CODES_PER_ROUND))
}

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
    let mut round = &codes[..FIRST_ROUND_CODES.min(codes.len())];
    if round.is_empty() {
        return Ok(0);
    }
    let (mut profiles, mut records) = profiles_of(db, round).await?;
    let mut done = round.len();
    let mut written = 0;
    loop {
        let write = replace(db, round, &profiles);
        let size = next_round(round.len(), records);
        let following = &codes[done..(done + size).min(codes.len())];
        let next = if following.is_empty() {
            write.await?;
            None
        } else {
            let (wrote, next) = tokio::join!(write, profiles_of(db, following));
            wrote?;
            Some(next?)
        };
        written += profiles.len() as u64;
        let Some((next_profiles, next_records)) = next else {
            return Ok(written);
        };
        (round, profiles, records) = (following, next_profiles, next_records);
        done += round.len();
    }
}

/// The profiles of the groups of `codes`' records, and how many records they came from. The
/// facts are dropped once summed.
async fn profiles_of(
    db: &DatabaseConnection,
    codes: &[String],
) -> Result<(Vec<(GroupKey, Profile)>, usize), DbErr> {
    let records = facts_of(db, codes).await?;
    let count = records.len();
    let profiles =
        tokio::task::spawn_blocking(move || peers::profiles(&records).into_iter().collect())
            .await
            .map_err(|e| DbErr::Custom(format!("computing peer profiles: {e}")))?;
    Ok((profiles, count))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_holds_about_as_many_records_as_allowed() {
        // 1M generated rows of 6,000 codes: about 167 records a code.
        assert_eq!(next_round(FIRST_ROUND_CODES, 16_700), 200);
        assert_eq!(next_round(200, 33_400), 400);
        assert_eq!(next_round(400, 66_800), 400);
        // Ten times as many a code: about 60 codes.
        assert_eq!(next_round(400, 668_000), 59);
        // A code with more records than a round allows is a round of its own.
        assert_eq!(next_round(3, 900_000), 1);
        // Codes without records left (a purge's refresh) grow the rounds.
        assert_eq!(next_round(100, 0), 200);
        assert_eq!(next_round(CODES_PER_ROUND, 0), CODES_PER_ROUND);
    }
}
