//! `node(id:)`: Relay refetching by global id.

use async_graphql::{Context, ID, Interface, Object};

use super::batch::{self, Batch};
use super::ids::{self, NodeType};
use super::sdn::{self, SdnEntry};
use super::trade::{self, TradeRecord};
use crate::state::AppState;

#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    TradeRecord(TradeRecord),
    SdnEntry(SdnEntry),
    Batch(Batch),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global id; null when there is no such object.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        let state = ctx.data::<AppState>()?;
        let (kind, row) = ids::decode(&id)?;
        Ok(match kind {
            NodeType::TradeRecord => trade::by_id(state, row).await?.map(Node::TradeRecord),
            NodeType::SdnEntry => sdn::by_id(state, row).await?.map(Node::SdnEntry),
            NodeType::Batch => batch::by_id(state, row).await?.map(Node::Batch),
        })
    }
}
