//! The OFAC SDN list: `sdnEntries` and the `SdnEntry` type with aliases and addresses.

use std::collections::{HashMap, HashSet};

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use entities::{batch, sdn_address, sdn_alias, sdn_entry};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder};

use super::batch::DatasetKind;
use super::filters::{check_text, contains, like};
use super::guard::principal;
use super::ids::{self, NodeType};
use super::keyset::{KeyKind, Keyset, KeysetConnection, SortKey, fetch, wants_total};
use super::pagination::CONNECTION_COST;
use super::scope;
use crate::error::{ApiError, ApiResult};
use crate::policy::PermissionSet;
use crate::state::AppState;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdnType {
    Individual,
    Entity,
    Vessel,
    Aircraft,
}

impl SdnType {
    fn as_str(self) -> &'static str {
        match self {
            SdnType::Individual => "INDIVIDUAL",
            SdnType::Entity => "ENTITY",
            SdnType::Vessel => "VESSEL",
            SdnType::Aircraft => "AIRCRAFT",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "INDIVIDUAL" => SdnType::Individual,
            "VESSEL" => SdnType::Vessel,
            "AIRCRAFT" => SdnType::Aircraft,
            _ => SdnType::Entity,
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct SdnAlias {
    pub name: String,
    /// `aka`, `fka` or `nka`.
    #[graphql(name = "type")]
    pub alias_type: String,
    pub remarks: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct SdnAddress {
    pub address: Option<String>,
    /// OFAC's combined city / state / province / postal code.
    pub city: Option<String>,
    pub country: Option<String>,
    pub remarks: Option<String>,
}

#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct SdnEntry {
    #[graphql(skip)]
    row_id: i64,
    #[graphql(skip)]
    batch_id: i64,
    /// OFAC's entry number.
    pub ent_num: i64,
    pub name: String,
    pub sdn_type: SdnType,
    pub programs: Vec<String>,
    pub title: Option<String>,
    pub call_sign: Option<String>,
    pub vessel_type: Option<String>,
    pub vessel_flag: Option<String>,
    pub vessel_owner: Option<String>,
    pub tonnage: Option<String>,
    pub grt: Option<String>,
    pub remarks: Option<String>,
    /// As written by OFAC; several are separated by `; `.
    pub date_of_birth: Option<String>,
    pub place_of_birth: Option<String>,
    pub nationality: Option<String>,
    pub citizenship: Option<String>,
    pub passports: Option<String>,
    pub id_numbers: Option<String>,
    pub gender: Option<String>,
    pub aliases: Vec<SdnAlias>,
    pub addresses: Vec<SdnAddress>,
}

#[ComplexObject]
impl SdnEntry {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::SdnEntry, self.row_id)
    }

    // Through the request's batch loader: a page of entries is one statement, not one each.
    async fn batch(&self, ctx: &Context<'_>) -> async_graphql::Result<super::batch::Batch> {
        ctx.data::<DataLoader<super::batch::BatchLoader>>()?
            .load_one(self.batch_id)
            .await?
            .ok_or_else(|| ApiError::Internal("SDN entry without batch".into()).into())
    }
}

/// Builds entries with their aliases and addresses: two queries per page, not two per entry.
async fn with_children(state: &AppState, rows: Vec<sdn_entry::Model>) -> ApiResult<Vec<SdnEntry>> {
    let batches: HashSet<i64> = rows.iter().map(|r| r.batch_id).collect();
    let ents: HashSet<i64> = rows.iter().map(|r| r.ent_num).collect();
    let mut aliases: HashMap<(i64, i64), Vec<SdnAlias>> = HashMap::new();
    let mut addresses: HashMap<(i64, i64), Vec<SdnAddress>> = HashMap::new();
    if !rows.is_empty() {
        for a in sdn_alias::Entity::find()
            .filter(sdn_alias::Column::BatchId.is_in(batches.iter().copied()))
            .filter(sdn_alias::Column::EntNum.is_in(ents.iter().copied()))
            .order_by_asc(sdn_alias::Column::AltNum)
            .all(&state.db)
            .await?
        {
            aliases
                .entry((a.batch_id, a.ent_num))
                .or_default()
                .push(SdnAlias {
                    name: a.name,
                    alias_type: a.alt_type,
                    remarks: a.remarks,
                });
        }
        for a in sdn_address::Entity::find()
            .filter(sdn_address::Column::BatchId.is_in(batches.iter().copied()))
            .filter(sdn_address::Column::EntNum.is_in(ents.iter().copied()))
            .order_by_asc(sdn_address::Column::AddNum)
            .all(&state.db)
            .await?
        {
            addresses
                .entry((a.batch_id, a.ent_num))
                .or_default()
                .push(SdnAddress {
                    address: a.address,
                    city: a.city,
                    country: a.country,
                    remarks: a.remarks,
                });
        }
    }
    Ok(rows
        .into_iter()
        .map(|m| {
            let key = (m.batch_id, m.ent_num);
            SdnEntry {
                row_id: m.id,
                batch_id: m.batch_id,
                ent_num: m.ent_num,
                name: m.name,
                sdn_type: SdnType::parse(&m.sdn_type),
                programs: m
                    .programs
                    .split(';')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
                title: m.title,
                call_sign: m.call_sign,
                vessel_type: m.vessel_type,
                vessel_flag: m.vessel_flag,
                vessel_owner: m.vessel_owner,
                tonnage: m.tonnage,
                grt: m.grt,
                remarks: m.remarks,
                date_of_birth: m.date_of_birth,
                place_of_birth: m.place_of_birth,
                nationality: m.nationality,
                citizenship: m.citizenship,
                passports: m.passports,
                id_numbers: m.id_numbers,
                gender: m.gender,
                aliases: aliases.remove(&key).unwrap_or_default(),
                addresses: addresses.remove(&key).unwrap_or_default(),
            }
        })
        .collect())
}

#[derive(InputObject, Default)]
pub struct SdnEntryFilter {
    /// Which loaded list; the most recently loaded one when absent.
    pub batch_id: Option<ID>,
    /// Substring (any letter in either case) of the primary name.
    pub name_contains: Option<String>,
    pub sdn_type: Option<SdnType>,
    /// A program tag such as `SDGT` or `IRAN`.
    pub program: Option<String>,
    pub ent_num: Option<i64>,
}

#[derive(Default)]
pub struct SdnQuery;

#[Object]
impl SdnQuery {
    /// Entries of one loaded SDN list, by entry number.
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    async fn sdn_entries(
        &self,
        ctx: &Context<'_>,
        filter: Option<SdnEntryFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<KeysetConnection<SdnEntry>>> {
        let state = ctx.data::<AppState>()?;
        let col = |c: sdn_entry::Column| Expr::col((sdn_entry::Entity, c));
        let page = Keyset::new(
            "sdnEntries",
            vec![
                SortKey::new("entNum", col(sdn_entry::Column::EntNum), KeyKind::Int),
                SortKey::new("id", col(sdn_entry::Column::Id), KeyKind::Int),
            ],
        )
        .page(&state.cursors, first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let batch_id = match &filter.batch_id {
            Some(id) => {
                let id = ids::decode_as(id, NodeType::Batch)?;
                let found = batch::Entity::find_by_id(id)
                    .one(&state.db)
                    .await
                    .map_err(ApiError::from)?;
                match found {
                    Some(b) if b.dataset == "sdn" => Some(b.id),
                    _ => {
                        return Err(
                            ApiError::NotFound("no SDN list with that batchId".into()).into()
                        );
                    }
                }
            }
            None => batch::Entity::find()
                .filter(batch::Column::Dataset.eq("sdn"))
                .order_by_desc(batch::Column::Id)
                .one(&state.db)
                .await
                .map_err(ApiError::from)?
                .map(|b| b.id),
        };
        let Some(batch_id) = batch_id else {
            return Ok(Some(
                page.connection(Vec::new(), wants_total(ctx).then_some(0)),
            ));
        };
        crate::freshness::warning::mark(ctx, DatasetKind::Sdn);
        let mut c = scope::all_or_nothing(&principal(ctx)?.permissions, sdn_entry::Column::Id)
            .add(sdn_entry::Column::BatchId.eq(batch_id));
        if let Some(name) = &filter.name_contains {
            check_text("nameContains", name)?;
            c = c.add(contains(sdn_entry::Column::Name, name));
        }
        if let Some(t) = filter.sdn_type {
            c = c.add(sdn_entry::Column::SdnType.eq(t.as_str()));
        }
        if let Some(p) = &filter.program {
            check_text("program", p)?;
            // Programs are stored `A;B;C`; match a whole tag, not a substring of one.
            let p = p.trim().to_ascii_uppercase();
            c = c.add(
                Condition::any()
                    .add(sdn_entry::Column::Programs.eq(p.as_str()))
                    .add(like(sdn_entry::Column::Programs, "", &format!("{p};"), "%"))
                    .add(like(sdn_entry::Column::Programs, "%", &format!(";{p}"), ""))
                    .add(like(
                        sdn_entry::Column::Programs,
                        "%",
                        &format!(";{p};"),
                        "%",
                    )),
            );
        }
        if let Some(n) = filter.ent_num {
            c = c.add(sdn_entry::Column::EntNum.eq(n));
        }
        let (rows, total) =
            fetch(ctx, &state.db, &page, sdn_entry::Entity::find().filter(c)).await?;
        let cursors: Vec<_> = rows
            .iter()
            .map(|m| page.cursor(vec![m.ent_num.into(), m.id.into()]))
            .collect();
        let nodes = with_children(state, rows).await?;
        Ok(Some(page.connection(
            cursors.into_iter().zip(nodes).collect(),
            total,
        )))
    }
}

/// The entries with these row ids that the caller may read, by row id: one query for the
/// entries and one per kind of child, however many ids.
pub async fn by_ids(
    state: &AppState,
    perms: &PermissionSet,
    ids: &[i64],
) -> ApiResult<HashMap<i64, SdnEntry>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sdn_entry::Entity::find()
        .filter(sdn_entry::Column::Id.is_in(ids.iter().copied()))
        .filter(scope::all_or_nothing(perms, sdn_entry::Column::Id))
        .all(&state.db)
        .await?;
    Ok(with_children(state, rows)
        .await?
        .into_iter()
        .map(|entry| (entry.row_id, entry))
        .collect())
}
