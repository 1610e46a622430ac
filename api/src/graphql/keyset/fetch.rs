//! Running a page against the database: the count when selected, the walk to the ids in the
//! default order (`id_walk`), then the rows.

use async_graphql::Context;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryResult, QuerySelect,
    QueryTrait, Select,
};

use super::{IdWalk, KeysetPage, id_walk};
use crate::error::ApiError;
use crate::state::AppState;

/// The page's rows of `select` (already filtered and scoped) and, when the selection asks for
/// it, the number of all its rows.
pub async fn fetch<E>(
    ctx: &Context<'_>,
    db: &DatabaseConnection,
    page: &KeysetPage,
    select: Select<E>,
) -> Result<(Vec<E::Model>, Option<u64>), ApiError>
where
    E: EntityTrait,
    E::Model: Sync,
{
    let (walk, total) = walk_and_total(ctx, db, page, &select).await?;
    Ok((page.apply(select, walk).all(db).await?, total))
}

/// `fetch` reading only `columns` of each row, in that order, for the caller to decode by
/// position (`trade_columns`).
pub async fn fetch_columns<E>(
    ctx: &Context<'_>,
    db: &DatabaseConnection,
    page: &KeysetPage,
    select: Select<E>,
    columns: impl IntoIterator<Item = E::Column>,
) -> Result<(Vec<QueryResult>, Option<u64>), ApiError>
where
    E: EntityTrait,
    E::Model: Sync,
{
    let (walk, total) = walk_and_total(ctx, db, page, &select).await?;
    let statement = page
        .apply(select, walk)
        .select_only()
        .columns(columns)
        .build(db.get_database_backend());
    Ok((db.query_all_raw(statement).await?, total))
}

/// The count, when selected, first: it is then also the exact number of matches `id_walk`
/// decides on.
async fn walk_and_total<E>(
    ctx: &Context<'_>,
    db: &DatabaseConnection,
    page: &KeysetPage,
    select: &Select<E>,
) -> Result<(IdWalk, Option<u64>), ApiError>
where
    E: EntityTrait,
    E::Model: Sync,
{
    let total = total(ctx, db, select).await?;
    let sort_up_to = page.default_order::<E>().map(|_| page.sort_up_to);
    let tables = &ctx
        .data::<AppState>()
        .map_err(|e| ApiError::Internal(e.message.into()))?
        .table_plans;
    let walk = id_walk::choose(db, tables, sort_up_to, select, total).await?;
    Ok((walk, total))
}

async fn total<E>(
    ctx: &Context<'_>,
    db: &DatabaseConnection,
    select: &Select<E>,
) -> Result<Option<u64>, ApiError>
where
    E: EntityTrait,
    E::Model: Sync,
{
    Ok(if wants_total(ctx) {
        Some(select.clone().count(db).await?)
    } else {
        None
    })
}

/// Whether the selection asks for `totalCount`: counting costs a second query over every
/// matching row, so it runs only when someone reads the answer.
pub fn wants_total(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

/// Whether the selection reads the page (its edges, nodes or whether there is a next one):
/// for a connection whose page is a statement of its own, a request for `totalCount` alone
/// (a count on a badge) need not run it.
pub fn wants_page(ctx: &Context<'_>) -> bool {
    let look = ctx.look_ahead();
    ["edges", "nodes", "pageInfo"]
        .into_iter()
        .any(|field| look.field(field).exists())
}
