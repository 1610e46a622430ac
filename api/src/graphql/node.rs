//! `node(id:)`: Relay refetching by global id, within the caller's row scope.

use std::sync::Arc;

use async_graphql::{Context, ID, Interface, Object};

use super::batch::{self, Batch, DatasetKind};
use super::financial::{self, FinancialTransaction};
use super::guard::principal;
use super::ids::{self, NodeType};
use super::sdn::{self, SdnEntry};
use super::subjects::{self, SubjectRecord};
use super::trade::{self, TradeRecord};
use crate::error::ApiError;
use crate::freshness::warning::mark;
use crate::policy::Policy;
use crate::state::AppState;

#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    TradeRecord(TradeRecord),
    FinancialTransaction(FinancialTransaction),
    SubjectRecord(SubjectRecord),
    SdnEntry(SdnEntry),
    Batch(Batch),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global id; null when there is no such object in the caller's scope.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        let state = ctx.data::<AppState>()?;
        let policy = ctx.data::<Arc<Policy>>()?;
        let perms = &principal(ctx)?.permissions;
        let (kind, row) = ids::decode(&id)?;
        // The type's own category decides, exactly as if its query field had been used.
        let type_name = kind.type_name();
        let category = policy.field_category(type_name, "id");
        if !perms.allows(category) {
            return Err(ApiError::ForbiddenField(format!(
                "{type_name} carries {} data, which your role may not read",
                category.as_str()
            ))
            .into());
        }
        Ok(match kind {
            NodeType::TradeRecord => trade::by_id(state, perms, row)
                .await?
                .map(Node::TradeRecord),
            NodeType::FinancialTransaction => financial::by_id(state, perms, row)
                .await?
                .map(Node::FinancialTransaction),
            NodeType::SubjectRecord => {
                mark(ctx, DatasetKind::Subjects);
                subjects::by_id(state, perms, row)
                    .await?
                    .map(Node::SubjectRecord)
            }
            NodeType::SdnEntry => {
                mark(ctx, DatasetKind::Sdn);
                sdn::by_id(state, perms, row).await?.map(Node::SdnEntry)
            }
            NodeType::Batch => batch::by_id(state, perms, row).await?.map(Node::Batch),
        })
    }
}
