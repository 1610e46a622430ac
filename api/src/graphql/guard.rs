//! Field-level authorization, applied to every field the executor resolves.
//!
//! Because it runs on resolution, not on the query text, it holds however a field is reached:
//! directly, nested, under an alias, through a fragment or `@include`. The category of each
//! field comes from `policies/fields.toml`; the answer comes from the request's
//! `PermissionSet`. A refused field is null with a `FORBIDDEN_FIELD` error; its siblings resolve.
//! A query whose every field this would allow, on object types only, is decided on its document
//! instead (`planned`, asking the same `Policy::missing_category`) and runs without the hook.
//!
//! A request without a principal resolves nothing, except in one case: a partner signing in
//! over mTLS (`auth::partner::PreAuth`) may resolve PRE_AUTH fields, and only those.

use std::sync::Arc;

use async_graphql::extensions::{ExtensionContext, ResolveInfo};
use async_graphql::{Context, PathSegment, ServerError, ServerResult};

use crate::audit::{AuditEvent, EventType};
use crate::auth::Principal;
use crate::auth::partner::PreAuth;
use crate::error::ApiError;
use crate::policy::{Category, PermissionSet, Policy};

/// Decides whether the field being resolved may be resolved for this request: `Ok` to resolve
/// it, else the `FORBIDDEN_FIELD` (or `UNAUTHENTICATED`) error it resolves to. Called for every
/// field by `per_field::PerField`.
pub fn check(ctx: &ExtensionContext<'_>, info: &ResolveInfo<'_>) -> ServerResult<()> {
    // Introspection is governed by its own switch; list items (`[T!]`) were decided when
    // the list field itself was resolved.
    if info.is_for_introspection
        || info.parent_type.starts_with("__")
        || info.parent_type.starts_with('[')
        || info.name.starts_with("__")
    {
        return Ok(());
    }

    let Ok(policy) = ctx.data::<Arc<Policy>>() else {
        return Err(ServerError::new(
            "policy missing",
            Some(info.field.name.pos),
        ));
    };
    let category = policy.field_category(info.parent_type, info.name);
    let Some(principal) = ctx.data_opt::<Principal>() else {
        if category == Category::PreAuth && ctx.data_opt::<PreAuth>().is_some() {
            return Ok(());
        }
        // No principal (and not a sign-in) means the request bypassed authentication:
        // refuse everything.
        let err: async_graphql::Error =
            ApiError::Unauthenticated("not authenticated".into()).into();
        let mut server_error = err.into_server_error(info.field.name.pos);
        server_error.path = path_of(info);
        return Err(server_error);
    };
    let Some(missing) =
        policy.missing_category(&principal.permissions, info.parent_type, info.name)
    else {
        return Ok(());
    };
    let (ty, field) = (info.parent_type, info.name);
    let err: async_graphql::Error = ApiError::ForbiddenField(if missing == category {
        format!(
            "{ty}.{field} carries {} data, which your role may not read",
            missing.as_str()
        )
    } else {
        format!(
            "{ty}.{field} compares fields that need {} access, which your role does not have",
            missing.as_str()
        )
    })
    .into();
    let mut server_error = err.into_server_error(info.field.name.pos);
    server_error.path = path_of(info);
    Err(server_error)
}

/// The response path of the field being resolved (`["tradeRecords", "edges", 0, "node", …]`).
fn path_of(info: &ResolveInfo<'_>) -> Vec<PathSegment> {
    info.path_node
        .to_string_vec()
        .into_iter()
        .map(|segment| match segment.parse::<usize>() {
            // GraphQL names cannot start with a digit, so a number is always a list index.
            Ok(index) => PathSegment::Index(index),
            Err(_) => PathSegment::Field(segment),
        })
        .collect()
}

/// Refuses filters and sort keys on fields the caller may not read: a predicate on a hidden
/// field leaks its values one comparison at a time. `fields` are field names of `type_name`.
pub fn require_readable(
    ctx: &Context<'_>,
    type_name: &str,
    fields: &[&str],
) -> Result<(), ApiError> {
    let policy = ctx
        .data::<Arc<Policy>>()
        .map_err(|_| ApiError::Internal("policy missing".into()))?;
    readable(policy, &principal(ctx)?.permissions, type_name, fields)
}

/// `require_readable` outside GraphQL (the CSV exports use the same rule).
pub fn readable(
    policy: &Policy,
    perms: &PermissionSet,
    type_name: &str,
    fields: &[&str],
) -> Result<(), ApiError> {
    for field in fields {
        if let Some(missing) = policy.missing_category(perms, type_name, field) {
            return Err(ApiError::ForbiddenField(format!(
                "filtering or sorting on {type_name}.{field} needs {} access, which your role does not have",
                missing.as_str()
            )));
        }
    }
    Ok(())
}

/// Where the request came from (the client's address), for the audit events its resolvers
/// write; `delivery` puts it into every request.
#[derive(Clone, Debug)]
pub struct RequestSource(pub Option<String>);

/// An audit event of an action by this request's principal, with the request's source.
pub fn audit_event(
    ctx: &Context<'_>,
    event_type: EventType,
    outcome: &'static str,
) -> Result<AuditEvent, ApiError> {
    let mut event = AuditEvent::new(event_type, outcome).actor(principal(ctx)?.username.clone());
    if let Some(RequestSource(Some(source))) = ctx.data_opt::<RequestSource>() {
        event = event.source(source.clone());
    }
    Ok(event)
}

pub fn principal<'a>(ctx: &'a Context<'_>) -> Result<&'a Principal, ApiError> {
    ctx.data_opt::<Principal>()
        .ok_or_else(|| ApiError::Internal("request without principal".into()))
}
