//! Sharing agreements for administrators: list, create, revoke (all ADMIN data).

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entities::sharing_agreement::Model;
use serde_json::json;

use super::admin::audit_change;
use super::guard::principal;
use super::scalars::Date;
use crate::agreements::{self, AgreementError, NewAgreement};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(SimpleObject)]
pub struct SharingAgreement {
    pub id: ID,
    pub grantee_nation: String,
    pub provider_country: String,
    pub partner_country: Option<String>,
    pub hs_prefix: Option<String>,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

impl From<Model> for SharingAgreement {
    fn from(m: Model) -> Self {
        SharingAgreement {
            id: ID(m.id.to_string()),
            grantee_nation: m.grantee_nation,
            provider_country: m.provider_country,
            partner_country: m.partner_country,
            hs_prefix: m.hs_prefix,
            valid_from: Date(m.valid_from),
            valid_to: m.valid_to.map(Date),
            reason: m.reason,
            created_by: m.created_by,
            created_at: m.created_at,
            revoked_at: m.revoked_at,
            revoked_by: m.revoked_by,
        }
    }
}

/// Rows provided by `providerCountry` (optionally only with `partnerCountry`, only HS codes
/// starting with `hsPrefix`, declared between the dates) become visible to the partner
/// accounts of `granteeNation`.
#[derive(InputObject)]
pub struct SharingAgreementInput {
    pub grantee_nation: String,
    pub provider_country: String,
    pub partner_country: Option<String>,
    pub hs_prefix: Option<String>,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    pub reason: String,
}

fn agreement_error(e: AgreementError) -> async_graphql::Error {
    match e {
        AgreementError::Database(db) => ApiError::from(db).into(),
        AgreementError::NotFound(_) => ApiError::NotFound(e.to_string()).into(),
        other => ApiError::bad_input(other.to_string()).into(),
    }
}

fn parse_id(id: &ID) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .map_err(|_| ApiError::bad_input(format!("{:?} is not an agreement id", id.as_str())))
}

#[derive(Default)]
pub struct AgreementQuery;

#[Object]
impl AgreementQuery {
    /// Every sharing agreement, revoked ones included, oldest first.
    async fn sharing_agreements(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<SharingAgreement>> {
        let state = ctx.data::<AppState>()?;
        let rows = agreements::list(&state.db).await.map_err(ApiError::from)?;
        Ok(rows.into_iter().map(SharingAgreement::from).collect())
    }
}

#[derive(Default)]
pub struct AgreementMutation;

#[Object]
impl AgreementMutation {
    async fn create_sharing_agreement(
        &self,
        ctx: &Context<'_>,
        input: SharingAgreementInput,
    ) -> async_graphql::Result<SharingAgreement> {
        audit_change(
            ctx,
            json!({
                "action": "create_sharing_agreement",
                "granteeNation": input.grantee_nation,
                "providerCountry": input.provider_country,
                "partnerCountry": input.partner_country,
                "hsPrefix": input.hs_prefix,
                "reason": input.reason,
            }),
        )
        .await?;
        let state = ctx.data::<AppState>()?;
        let me = principal(ctx)?;
        let new = NewAgreement {
            grantee_nation: &input.grantee_nation,
            provider_country: &input.provider_country,
            partner_country: input.partner_country.as_deref(),
            hs_prefix: input.hs_prefix.as_deref(),
            valid_from: input.valid_from.0,
            valid_to: input.valid_to.map(|d| d.0),
            reason: &input.reason,
        };
        Ok(agreements::create(&state.db, new, &me.username)
            .await
            .map_err(agreement_error)?
            .into())
    }

    /// Ends an agreement now; the grantee stops seeing its rows from the next request on.
    async fn revoke_sharing_agreement(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
    ) -> async_graphql::Result<SharingAgreement> {
        let agreement_id = parse_id(&id)?;
        if reason.trim().is_empty() {
            return Err(ApiError::bad_input("a reason is required").into());
        }
        audit_change(
            ctx,
            json!({ "action": "revoke_sharing_agreement", "id": agreement_id, "reason": reason }),
        )
        .await?;
        let state = ctx.data::<AppState>()?;
        let me = principal(ctx)?;
        Ok(agreements::revoke(&state.db, agreement_id, &me.username)
            .await
            .map_err(agreement_error)?
            .into())
    }
}
