//! Entity screening: fuzzy matching of trade parties against the SDN list and TECS subjects.
//!
//! Pure matching lives in `normalize` (names to tokens), `score` (pairs of names, evidence) and
//! `index` (candidates without scanning the list); `eval` measures it on labelled pairs. This
//! module holds the served index: built from the database at start-up and rebuilt in the
//! background when a process (`dartts load`, possibly on another host) loads or purges an SDN
//! or subjects batch — each replica notices through a cheap query on `batches` and swaps in the
//! new index, so queries never wait for a rebuild nor scan the list.

pub mod abjad;
pub mod eval;
pub mod index;
pub mod listcheck;
pub mod normalize;
pub mod score;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use entities::{batch, sdn_address, sdn_alias, sdn_entry, subject_record};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};

use crate::error::ApiResult;
use crate::freshness::{self, Freshness, SDN_CADENCE_DAYS, SUBJECTS_CADENCE_DAYS};
use index::{Index, Kind, Listed, Source};
use score::Facts;

/// How often a replica asks whether a batch was loaded or purged.
const CHECK_EVERY: Duration = Duration::from_secs(3);

/// Which batches the index was built from: the newest SDN batch held and the number of
/// subjects batches held (a load adds one, a purge marks one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Signature {
    sdn: Option<i64>,
    subjects: u64,
    newest_subjects: Option<i64>,
}

/// The served index and what it was built from.
#[derive(Debug, Default)]
pub struct Screening {
    current: RwLock<Arc<Index>>,
    /// `None` until the first build: an empty list is a valid index, not a reason to rebuild.
    built_from: RwLock<Option<Signature>>,
    /// As-of dates of the SDN list and TECS subjects the index holds, read when it was built:
    /// every screening answer reports them, and asking the database per call cost more than
    /// the search.
    as_of: RwLock<(Option<NaiveDate>, Option<NaiveDate>)>,
}

impl Screening {
    /// The index as it is now (cheap: an `Arc` clone).
    pub fn index(&self) -> Arc<Index> {
        self.current
            .read()
            .map(|i| Arc::clone(&i))
            .unwrap_or_default()
    }

    /// Builds the index from the database before serving, then keeps it current.
    pub async fn start(db: DatabaseConnection) -> ApiResult<Arc<Screening>> {
        let screening = Arc::new(Screening::default());
        screening.refresh(&db).await?;
        let watcher = Arc::clone(&screening);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(CHECK_EVERY).await;
                if let Err(e) = watcher.refresh(&db).await {
                    tracing::warn!(error = ?e, "screening index refresh failed; keeping the old one");
                }
            }
        });
        Ok(screening)
    }

    /// How old the SDN list and the TECS subjects screened against are, as of today.
    pub fn freshness(&self) -> (Freshness, Freshness) {
        let (sdn, subjects) = self.as_of.read().map(|a| *a).unwrap_or_default();
        let today = chrono::Utc::now().date_naive();
        (
            freshness::assess(sdn, Some(SDN_CADENCE_DAYS), today),
            freshness::assess(subjects, Some(SUBJECTS_CADENCE_DAYS), today),
        )
    }

    /// Rebuilds when the batches changed; returns whether it did.
    pub async fn refresh(&self, db: &DatabaseConnection) -> ApiResult<bool> {
        let now = signature(db).await?;
        if self.built_from.read().is_ok_and(|s| *s == Some(now)) {
            return Ok(false);
        }
        let started = Instant::now();
        // The SDN list indexed is the newest batch loaded, which need not be the one with the
        // newest as-of date: report the date of the list actually screened against.
        let sdn_as_of = match now.sdn {
            Some(id) => batch::Entity::find_by_id(id)
                .one(db)
                .await?
                .map(|b| b.as_of),
            None => None,
        };
        let as_of = (sdn_as_of, freshness::of(db, "subjects", None).await?.as_of);
        let listed = load(db, now.sdn).await?;
        let index = tokio::task::spawn_blocking(move || Index::build(listed))
            .await
            .map_err(|e| crate::error::ApiError::Internal(format!("index build: {e}").into()))?;
        tracing::info!(
            parties = index.len(),
            names = index.names(),
            ms = started.elapsed().as_millis(),
            "screening index built"
        );
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(index);
        }
        if let Ok(mut built) = self.built_from.write() {
            *built = Some(now);
        }
        if let Ok(mut dates) = self.as_of.write() {
            *dates = as_of;
        }
        Ok(true)
    }
}

/// The newest SDN batch held: the list screening uses.
pub async fn current_batches(db: &DatabaseConnection) -> ApiResult<Option<i64>> {
    Ok(signature(db).await?.sdn)
}

async fn signature(db: &DatabaseConnection) -> ApiResult<Signature> {
    let held = |dataset: &'static str| {
        batch::Entity::find()
            .filter(batch::Column::Dataset.eq(dataset))
            .filter(batch::Column::PurgedAt.is_null())
    };
    let sdn = held("sdn")
        .order_by_desc(batch::Column::Id)
        .one(db)
        .await?
        .map(|b| b.id);
    let newest_subjects = held("subjects")
        .order_by_desc(batch::Column::Id)
        .one(db)
        .await?
        .map(|b| b.id);
    let subjects = held("subjects").count(db).await?;
    Ok(Signature {
        sdn,
        subjects,
        newest_subjects,
    })
}

/// The parties to index: the newest SDN list held (entries, aliases, address countries) and
/// every TECS subject record held.
pub async fn load(db: &DatabaseConnection, sdn_batch: Option<i64>) -> ApiResult<Vec<Listed>> {
    let mut listed = Vec::new();
    if let Some(batch_id) = sdn_batch {
        let entries = sdn_entry::Entity::find()
            .filter(sdn_entry::Column::BatchId.eq(batch_id))
            .order_by_asc(sdn_entry::Column::EntNum)
            .all(db)
            .await?;
        let aliases = sdn_alias::Entity::find()
            .filter(sdn_alias::Column::BatchId.eq(batch_id))
            .order_by_asc(sdn_alias::Column::AltNum)
            .all(db)
            .await?;
        let addresses = sdn_address::Entity::find()
            .filter(sdn_address::Column::BatchId.eq(batch_id))
            .all(db)
            .await?;
        let mut by_ent: std::collections::HashMap<i64, Vec<String>> = Default::default();
        for a in aliases {
            by_ent.entry(a.ent_num).or_default().push(a.name);
        }
        let mut countries: std::collections::HashMap<i64, Vec<String>> = Default::default();
        for a in addresses {
            if let Some(c) = a.country {
                countries.entry(a.ent_num).or_default().push(c);
            }
        }
        for e in entries {
            let ent = e.ent_num;
            listed.push(sdn_party(
                e,
                by_ent.remove(&ent).unwrap_or_default(),
                countries.remove(&ent).unwrap_or_default(),
            ));
        }
    }
    for s in subject_record::Entity::find()
        .order_by_asc(subject_record::Column::Id)
        .all(db)
        .await?
    {
        listed.push(subject_party(s));
    }
    Ok(listed)
}

fn split(field: Option<&String>) -> impl Iterator<Item = String> + '_ {
    field
        .into_iter()
        .flat_map(|f| f.split(';'))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn sdn_party(e: sdn_entry::Model, aliases: Vec<String>, countries: Vec<String>) -> Listed {
    let kind = match e.sdn_type.as_str() {
        "INDIVIDUAL" => Some(Kind::Person),
        "VESSEL" => Some(Kind::Vessel),
        "AIRCRAFT" => Some(Kind::Aircraft),
        _ => Some(Kind::Organization),
    };
    let mut names = vec![e.name];
    names.extend(aliases);
    Listed {
        source: Source::Sdn,
        row_id: e.id,
        kind,
        names,
        facts: Facts {
            dates_of_birth: split(e.date_of_birth.as_ref()).collect(),
            identifiers: split(e.passports.as_ref())
                .chain(split(e.id_numbers.as_ref()))
                .chain(split(e.call_sign.as_ref()))
                .collect(),
            countries: split(e.nationality.as_ref())
                .chain(split(e.citizenship.as_ref()))
                .chain(split(e.vessel_flag.as_ref()))
                .chain(countries)
                .collect(),
        },
    }
}

fn subject_party(s: subject_record::Model) -> Listed {
    let kind = match s.kind.as_str() {
        "PERSON" => Some(Kind::Person),
        "BUSINESS" | "ORGANIZATION" => Some(Kind::Organization),
        "VESSEL" => Some(Kind::Vessel),
        "AIRCRAFT" => Some(Kind::Aircraft),
        _ => None,
    };
    let names = [s.name, s.business_name, s.vessel_name]
        .into_iter()
        .flatten()
        .filter(|n| !n.trim().is_empty())
        .collect();
    Listed {
        source: Source::Tecs,
        row_id: s.id,
        kind,
        names,
        facts: Facts {
            dates_of_birth: s.date_of_birth.map(|d| d.to_string()).into_iter().collect(),
            identifiers: [
                s.passport_number,
                s.ssn_tin,
                s.a_number,
                s.aircraft_tail_number,
                s.plate,
                s.drivers_license,
            ]
            .into_iter()
            .flatten()
            .collect(),
            countries: s.passport_country.into_iter().collect(),
        },
    }
}
