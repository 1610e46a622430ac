//! A TECS subject record created by ICE or CBP. Victim records never reach this table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "subject_records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub batch_id: i64,
    /// The line of the delivered file the row was read from (from migration 000027; earlier rows
    /// have none): where a load names a row it rejects after writing it.
    pub source_line: Option<i64>,
    pub record_id: String,
    /// `PERSON`, `VEHICLE`, `VESSEL`, `AIRCRAFT`, `THING`, `BUSINESS` or `ORGANIZATION`.
    pub kind: String,
    /// `ICE` or `CBP`.
    pub creating_agency: String,
    /// `OPEN` or `CLOSED`.
    pub case_status: String,
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

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
