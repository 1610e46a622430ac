//! An alias from `alt.csv`; joined to its entry by `(batch_id, ent_num)` so bulk loads need no ids.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sdn_aliases")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub batch_id: i64,
    pub ent_num: i64,
    pub alt_num: i64,
    /// `aka`, `fka` or `nka`.
    pub alt_type: String,
    pub name: String,
    pub remarks: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
