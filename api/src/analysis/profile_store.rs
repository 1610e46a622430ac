//! Keeping `peer_profiles` in step with `trade_records`: after a load (for the HS codes it
//! touched) and after a purge or on demand (every HS code). Each HS code's groups are
//! recomputed whole from its rows, with the same Rust functions the scoped on-the-fly path
//! uses, and replaced in one transaction, so a reader sees the old or the new profiles of a
//! code, never a mix.

use std::collections::BTreeSet;

use entities::{peer_profile, trade_record};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QuerySelect, Statement, TransactionTrait,
};

use super::peers::{self, GroupKey, PeerFacts, Profile};

/// HS codes recomputed per round trip: bounds the rows held in memory to those codes' rows.
/// Each round is a read, a delete, inserts and a commit: with 50 codes, refreshing the 6,000
/// codes of 200,000 generated rows took 12 s in 120 rounds; with 400, 4.4 s in 15 rounds and
/// about 100 MB resident (a round holds the facts of 400 codes' rows: at 10M rows of 6,000
/// codes, about 670,000).
const CODES_PER_ROUND: usize = 400;
/// Profiles per INSERT (SQLite allows 32,766 bound parameters; a profile has 10).
const PROFILES_PER_INSERT: usize = 3_000;

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
/// Each round reads its codes' facts while the previous round's profiles are being written
/// (two connections). On a first load of 1M rows the reads were about 40 % of the refresh and
/// the writes about half, one after the other.
pub async fn refresh(db: &DatabaseConnection, hs_codes: &BTreeSet<String>) -> Result<u64, DbErr> {
    let codes: Vec<String> = hs_codes.iter().cloned().collect();
    let rounds: Vec<&[String]> = codes.chunks(CODES_PER_ROUND).collect();
    let Some(first) = rounds.first() else {
        return Ok(0);
    };
    let mut records = facts_of(db, first).await?;
    let mut written = 0;
    for (i, round) in rounds.iter().enumerate() {
        // Taken: the round's facts are dropped before the next round's are read.
        let profiles: Vec<(GroupKey, Profile)> = peers::profiles(&std::mem::take(&mut records))
            .into_iter()
            .collect();
        let write = replace(db, round, &profiles);
        if let Some(following) = rounds.get(i + 1) {
            let (wrote, read) = tokio::join!(write, facts_of(db, following));
            wrote?;
            records = read?;
        } else {
            write.await?;
        }
        written += profiles.len() as u64;
    }
    Ok(written)
}

async fn facts_of(db: &DatabaseConnection, codes: &[String]) -> Result<Vec<PeerFacts>, DbErr> {
    facts(
        db,
        Condition::all().add(trade_record::Column::HsCode.is_in(codes.iter().cloned())),
    )
    .await
}

/// Replaces the profiles of `round`'s codes with `profiles` in one transaction.
async fn replace(
    db: &DatabaseConnection,
    round: &[String],
    profiles: &[(GroupKey, Profile)],
) -> Result<(), DbErr> {
    let tx = db.begin().await?;
    peer_profile::Entity::delete_many()
        .filter(peer_profile::Column::HsCode.is_in(round.iter().cloned()))
        .exec(&tx)
        .await?;
    for chunk in profiles.chunks(PROFILES_PER_INSERT) {
        match tx.get_database_backend() {
            DbBackend::Postgres => {
                tx.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    POSTGRES_INSERT,
                    [rows_json(chunk)?.into()],
                ))
                .await?;
            }
            _ => {
                peer_profile::Entity::insert_many(chunk.iter().map(active_model))
                    .exec_without_returning(&tx)
                    .await?;
            }
        }
    }
    tx.commit().await
}

/// On PostgreSQL a chunk is one text parameter: the statement is prepared once per connection,
/// where a multi-row `INSERT` of 3,000 profiles binds 30,000 parameters and is parsed anew for
/// each chunk size (about 40 ms a chunk, a third of a first load's refresh). JSON numbers
/// carry the shortest representation that reads back as the same `f64`, so the stored
/// profiles are bit-for-bit those computed (SQLite keeps bound parameters).
const POSTGRES_INSERT: &str = "\
    INSERT INTO peer_profiles \
        (measure, hs_code, quantity_unit, year, origin, peer_count, median, q1, q3, mad) \
    SELECT measure, hs_code, quantity_unit, year, origin, peer_count, median, q1, q3, mad \
    FROM json_to_recordset($1::json) AS r(measure text, hs_code text, quantity_unit text, \
        year integer, origin text, peer_count bigint, median float8, q1 float8, q3 float8, \
        mad float8)";

#[derive(serde::Serialize)]
struct ProfileJson<'a> {
    measure: &'static str,
    hs_code: &'a str,
    quantity_unit: &'a str,
    year: i32,
    origin: &'a str,
    peer_count: i64,
    median: f64,
    q1: f64,
    q3: f64,
    mad: f64,
}

fn rows_json(chunk: &[(GroupKey, Profile)]) -> Result<String, DbErr> {
    let rows: Vec<ProfileJson<'_>> = chunk
        .iter()
        .map(|(key, p)| ProfileJson {
            measure: key.measure.as_str(),
            hs_code: &key.hs_code,
            quantity_unit: &key.unit,
            year: key.year,
            origin: &key.origin,
            peer_count: peer_count(p),
            median: p.median,
            q1: p.q1,
            q3: p.q3,
            mad: p.mad,
        })
        .collect();
    // Summaries of finite logarithms are finite, and JSON has no NaN: a non-finite value
    // would be written as null and refused by the NOT NULL columns, never stored wrong.
    serde_json::to_string(&rows).map_err(|e| DbErr::Custom(format!("encoding profiles: {e}")))
}

fn peer_count(p: &Profile) -> i64 {
    i64::try_from(p.peer_count).unwrap_or(i64::MAX)
}

fn active_model((key, p): &(GroupKey, Profile)) -> peer_profile::ActiveModel {
    peer_profile::ActiveModel {
        id: NotSet,
        measure: Set(key.measure.as_str().to_owned()),
        hs_code: Set(key.hs_code.clone()),
        quantity_unit: Set(key.unit.clone()),
        year: Set(key.year),
        origin: Set(key.origin.clone()),
        peer_count: Set(peer_count(p)),
        median: Set(p.median),
        q1: Set(p.q1),
        q3: Set(p.q3),
        mad: Set(p.mad),
    }
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
