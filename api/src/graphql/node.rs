//! `node(id:)`: Relay refetching by global id, within the caller's row scope.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Interface, Object};

use super::batch::{Batch, BatchLoader, DatasetKind};
use super::financial::FinancialTransaction;
use super::guard::principal;
use super::ids::{self, NodeType};
use super::records_by_id::{FinancialRow, RecordsById, SdnRow, SubjectRow, TradeRow};
use super::sdn::SdnEntry;
use super::subjects::SubjectRecord;
use super::trade::TradeRecord;
use crate::error::ApiError;
use crate::freshness::warning::mark;
use crate::policy::Policy;

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
        // Read through the request's loaders: the lookups of one document, however many
        // aliases, are one statement per type.
        let by_id = ctx.data::<DataLoader<RecordsById>>()?;
        Ok(match kind {
            NodeType::TradeRecord => by_id.load_one(TradeRow(row)).await?.map(Node::TradeRecord),
            NodeType::FinancialTransaction => by_id
                .load_one(FinancialRow(row))
                .await?
                .map(Node::FinancialTransaction),
            NodeType::SubjectRecord => {
                mark(ctx, DatasetKind::Subjects);
                by_id
                    .load_one(SubjectRow(row))
                    .await?
                    .map(Node::SubjectRecord)
            }
            NodeType::SdnEntry => {
                mark(ctx, DatasetKind::Sdn);
                by_id.load_one(SdnRow(row)).await?.map(Node::SdnEntry)
            }
            NodeType::Batch => ctx
                .data::<DataLoader<BatchLoader>>()?
                .load_one(row)
                .await?
                .map(Node::Batch),
        })
    }
}
