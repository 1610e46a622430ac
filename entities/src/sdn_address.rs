//! An address from `add.csv`; joined to its entry by `(batch_id, ent_num)`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sdn_addresses")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub batch_id: i64,
    pub ent_num: i64,
    pub add_num: i64,
    pub address: Option<String>,
    /// OFAC's combined `City/State/Province/Postal Code` column.
    pub city: Option<String>,
    pub country: Option<String>,
    pub remarks: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
