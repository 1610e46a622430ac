//! TECS subject records: `subjectRecords` and `SubjectRecord` (LAW_ENFORCEMENT data).

use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use entities::subject_record::{self, Column};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};

use super::batch::DatasetKind;
use super::filters::{RecordFilter, check_text, contains, read_if_set};
use super::guard::{principal, require_readable};
use super::ids::{self, NodeType};
use super::keyset::{KeyKind, Keyset, KeysetConnection, SortKey, fetch};
use super::pagination::CONNECTION_COST;
use super::scalars::Date;
use super::scope;
use crate::error::ApiResult;
use crate::policy::PermissionSet;
use crate::state::AppState;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectKind {
    Person,
    Vehicle,
    Vessel,
    Aircraft,
    Thing,
    Business,
    Organization,
}

impl SubjectKind {
    fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Person => "PERSON",
            SubjectKind::Vehicle => "VEHICLE",
            SubjectKind::Vessel => "VESSEL",
            SubjectKind::Aircraft => "AIRCRAFT",
            SubjectKind::Thing => "THING",
            SubjectKind::Business => "BUSINESS",
            SubjectKind::Organization => "ORGANIZATION",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "VEHICLE" => SubjectKind::Vehicle,
            "VESSEL" => SubjectKind::Vessel,
            "AIRCRAFT" => SubjectKind::Aircraft,
            "THING" => SubjectKind::Thing,
            "BUSINESS" => SubjectKind::Business,
            "ORGANIZATION" => SubjectKind::Organization,
            _ => SubjectKind::Person,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseStatus {
    Open,
    Closed,
}

/// A TECS record created by ICE or CBP.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct SubjectRecord {
    #[graphql(skip)]
    row_id: i64,
    pub record_id: String,
    pub kind: SubjectKind,
    /// `ICE` or `CBP`.
    pub creating_agency: String,
    pub case_status: CaseStatus,
    pub created_date: Option<Date>,
    pub name: Option<String>,
    pub business_name: Option<String>,
    pub address: Option<String>,
    pub date_of_birth: Option<Date>,
    pub ssn_tin: Option<String>,
    pub passport_number: Option<String>,
    pub passport_country: Option<String>,
    pub bank_accounts: Option<String>,
    pub phones: Option<String>,
    pub drivers_license: Option<String>,
    pub drivers_license_state: Option<String>,
    pub a_number: Option<String>,
    pub plate: Option<String>,
    pub vessel_name: Option<String>,
    pub aircraft_tail_number: Option<String>,
    pub description: Option<String>,
}

#[ComplexObject]
impl SubjectRecord {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::SubjectRecord, self.row_id)
    }
}

impl From<subject_record::Model> for SubjectRecord {
    fn from(m: subject_record::Model) -> Self {
        SubjectRecord {
            row_id: m.id,
            record_id: m.record_id,
            kind: SubjectKind::parse(&m.kind),
            creating_agency: m.creating_agency,
            case_status: if m.case_status == "CLOSED" {
                CaseStatus::Closed
            } else {
                CaseStatus::Open
            },
            created_date: m.created_date.map(Date),
            name: m.name,
            business_name: m.business_name,
            address: m.address,
            date_of_birth: m.date_of_birth.map(Date),
            ssn_tin: m.ssn_tin,
            passport_number: m.passport_number,
            passport_country: m.passport_country,
            bank_accounts: m.bank_accounts,
            phones: m.phones,
            drivers_license: m.drivers_license,
            drivers_license_state: m.drivers_license_state,
            a_number: m.a_number,
            plate: m.plate,
            vessel_name: m.vessel_name,
            aircraft_tail_number: m.aircraft_tail_number,
            description: m.description,
        }
    }
}

#[derive(InputObject, Default)]
pub struct SubjectRecordFilter {
    pub kind: Option<SubjectKind>,
    pub case_status: Option<CaseStatus>,
    /// Substring (any letter in either case) of the person's or the business's name.
    pub name_contains: Option<String>,
    pub record_id: Option<String>,
}

impl RecordFilter for SubjectRecordFilter {
    const RECORD: &'static str = "SubjectRecord";

    fn fields_read(&self) -> Vec<&'static str> {
        let name = self.name_contains.is_some();
        read_if_set(&[
            (self.kind.is_some(), "kind"),
            (self.case_status.is_some(), "caseStatus"),
            // One predicate over both names: either hidden name would leak through it.
            (name, "name"),
            (name, "businessName"),
            (self.record_id.is_some(), "recordId"),
        ])
    }

    fn condition(&self) -> ApiResult<Condition> {
        let mut c = Condition::all();
        if let Some(k) = self.kind {
            c = c.add(Column::Kind.eq(k.as_str()));
        }
        if let Some(s) = self.case_status {
            c = c.add(Column::CaseStatus.eq(if s == CaseStatus::Closed {
                "CLOSED"
            } else {
                "OPEN"
            }));
        }
        if let Some(name) = &self.name_contains {
            check_text("nameContains", name)?;
            c = c.add(
                Condition::any()
                    .add(contains(Column::Name, name))
                    .add(contains(Column::BusinessName, name)),
            );
        }
        if let Some(id) = &self.record_id {
            check_text("recordId", id)?;
            c = c.add(Column::RecordId.eq(id.as_str()));
        }
        Ok(c)
    }
}

#[derive(Default)]
pub struct SubjectQuery;

#[Object]
impl SubjectQuery {
    /// TECS subject records by record id.
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    async fn subject_records(
        &self,
        ctx: &Context<'_>,
        filter: Option<SubjectRecordFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<KeysetConnection<SubjectRecord>>> {
        let state = ctx.data::<AppState>()?;
        let col = |c: Column| Expr::col((subject_record::Entity, c));
        let page = Keyset::new(
            "subjectRecords",
            vec![
                SortKey::new("recordId", col(Column::RecordId), KeyKind::Text),
                SortKey::new("id", col(Column::Id), KeyKind::Int),
            ],
        )
        .page(&state.cursors, first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        // The fixed page order reads a field too: `DERIVED` in the policy module.
        let read = filter.fields_read();
        require_readable(ctx, SubjectRecordFilter::RECORD, &read)?;
        let c = filter.condition()?.add(scope::all_or_nothing(
            &principal(ctx)?.permissions,
            Column::Id,
        ));
        crate::freshness::warning::mark(ctx, DatasetKind::Subjects);
        let (rows, total) = fetch(
            ctx,
            &state.db,
            &page,
            subject_record::Entity::find().filter(c),
        )
        .await?;
        let edges = page.edges(
            rows,
            |m| vec![m.record_id.clone().into(), m.id.into()],
            SubjectRecord::from,
        );
        Ok(Some(page.connection(edges, total)))
    }
}

/// The records with these row ids that the caller may read, by row id, in one query.
pub async fn by_ids(
    state: &AppState,
    perms: &PermissionSet,
    ids: &[i64],
) -> ApiResult<HashMap<i64, SubjectRecord>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(subject_record::Entity::find()
        .filter(Column::Id.is_in(ids.iter().copied()))
        .filter(scope::all_or_nothing(perms, Column::Id))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|m| (m.id, SubjectRecord::from(m)))
        .collect())
}
