//! One OFAC SDN entry as published in `sdn.csv`, with facts parsed out of its remarks.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sdn_entries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub batch_id: i64,
    /// OFAC's own entry number; unique within one list (batch).
    pub ent_num: i64,
    pub name: String,
    /// `INDIVIDUAL`, `ENTITY`, `VESSEL` or `AIRCRAFT`.
    pub sdn_type: String,
    /// Program tags joined with `;`.
    pub programs: String,
    pub title: Option<String>,
    pub call_sign: Option<String>,
    pub vessel_type: Option<String>,
    pub tonnage: Option<String>,
    pub grt: Option<String>,
    pub vessel_flag: Option<String>,
    pub vessel_owner: Option<String>,
    /// Full remarks, with the `sdn_comments.csv` continuation appended.
    pub remarks: Option<String>,
    /// As written by OFAC (`22 Oct 1973`, `1961`, `circa 1955`); several joined with `;`.
    pub date_of_birth: Option<String>,
    pub place_of_birth: Option<String>,
    pub nationality: Option<String>,
    pub citizenship: Option<String>,
    /// Passport numbers with issuing country, joined with `;`.
    pub passports: Option<String>,
    /// National and other identification numbers, joined with `;`.
    pub id_numbers: Option<String>,
    pub gender: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
