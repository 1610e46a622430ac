//! Keeping `peer_profiles` in step with `trade_records`: after a load (for the HS codes it
//! touched) and after a purge or on demand (every HS code). Each HS code's groups are
//! recomputed whole from its rows, with the same Rust functions the scoped on-the-fly path
//! uses, and replaced in one transaction, so a reader sees the old or the new profiles of a
//! code, never a mix.

use std::collections::BTreeSet;

use entities::{peer_profile, trade_record};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};

use super::peers::{self, PeerFacts};

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
pub async fn refresh(db: &DatabaseConnection, hs_codes: &BTreeSet<String>) -> Result<u64, DbErr> {
    let codes: Vec<&String> = hs_codes.iter().collect();
    let mut written = 0;
    for round in codes.chunks(CODES_PER_ROUND) {
        let round: Vec<String> = round.iter().map(|c| (*c).clone()).collect();
        let records = facts(
            db,
            Condition::all().add(trade_record::Column::HsCode.is_in(round.clone())),
        )
        .await?;
        let profiles = peers::profiles(&records);
        drop(records);
        let rows: Vec<peer_profile::ActiveModel> = profiles
            .into_iter()
            .map(|(key, p)| peer_profile::ActiveModel {
                id: NotSet,
                measure: Set(key.measure.as_str().to_owned()),
                hs_code: Set(key.hs_code),
                quantity_unit: Set(key.unit),
                year: Set(key.year),
                origin: Set(key.origin),
                peer_count: Set(i64::try_from(p.peer_count).unwrap_or(i64::MAX)),
                median: Set(p.median),
                q1: Set(p.q1),
                q3: Set(p.q3),
                mad: Set(p.mad),
            })
            .collect();
        let tx = db.begin().await?;
        peer_profile::Entity::delete_many()
            .filter(peer_profile::Column::HsCode.is_in(round))
            .exec(&tx)
            .await?;
        for chunk in rows.chunks(PROFILES_PER_INSERT) {
            peer_profile::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&tx)
                .await?;
        }
        tx.commit().await?;
        written += rows.len() as u64;
    }
    Ok(written)
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
