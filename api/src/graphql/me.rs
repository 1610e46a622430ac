//! `me`: the caller's own account, as the server sees it.

use async_graphql::{Context, ID, Object, SimpleObject};

use super::guard::principal;

#[derive(SimpleObject)]
pub struct Me {
    pub id: ID,
    pub username: String,
    pub role: String,
    pub nation: Option<String>,
    pub status: String,
    /// Data categories the role may read (from `policies/roles.toml`).
    pub categories: Vec<String>,
}

#[derive(Default)]
pub struct MeQuery;

#[Object]
impl MeQuery {
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let p = principal(ctx)?;
        Ok(Me {
            id: ID(p.user_id.to_string()),
            username: p.username.clone(),
            role: p.permissions.role.clone(),
            nation: p.nation.clone(),
            status: p.status.clone(),
            categories: p
                .permissions
                .categories
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
        })
    }
}
