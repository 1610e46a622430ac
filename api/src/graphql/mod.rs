//! The GraphQL schema: one module per domain, merged into one query root.
//!
//! Limits are set here for every request: depth, complexity (which also bounds aliases, since
//! each aliased copy counts), and no field suggestions in error messages.

mod admin;
mod agreements;
mod anomalies;
mod audit_log;
mod batch;
mod datasets;
mod entity;
pub mod filters;
pub(crate) mod financial;
pub mod guard;
mod ids;
mod keyset;
pub mod limits;
pub mod login;
mod me;
pub(crate) mod mirror;
mod node;
mod pagination;
mod per_field;
pub(crate) mod planned;
mod quota;
pub mod records;
pub mod records_by_id;
mod red_flags;
mod scalars;
pub(crate) mod scope;
pub(crate) mod screening;
mod sdn;
pub(crate) mod shape;
pub(crate) mod subjects;
mod totals;
pub(crate) mod trade;
mod trade_columns;
pub(crate) mod trade_finance;

pub use batch::{DatasetKind, loader as batch_loader};
pub use datasets::cadence_days;
pub use keyset::{CursorKey, TablePlans};

use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

use crate::state::AppState;

#[derive(MergedObject, Default)]
pub struct Query(
    trade::TradeQuery,
    anomalies::AnomalyQuery,
    red_flags::RedFlagQuery,
    financial::FinancialQuery,
    subjects::SubjectQuery,
    sdn::SdnQuery,
    batch::BatchQuery,
    datasets::DatasetQuery,
    node::NodeQuery,
    me::MeQuery,
    admin::AdminQuery,
    quota::QuotaQuery,
    audit_log::AuditQuery,
    agreements::AgreementQuery,
    totals::TotalsQuery,
    mirror::MirrorQuery,
    entity::EntityQuery,
    trade_finance::TradeFinanceQuery,
    screening::ScreeningQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    admin::AdminMutation,
    quota::QuotaMutation,
    login::LoginMutation,
    agreements::AgreementMutation,
);

pub type DarttsSchema = Schema<Query, Mutation, EmptySubscription>;

/// The standard introspection query (GraphiQL's) is 13 deep: `__schema types fields args type`,
/// seven `ofType`, then `name`. No data query comes close.
pub const MAX_DEPTH: usize = 13;
/// High enough for the standard introspection query, low enough to bound aliased fan-out.
pub const MAX_COMPLEXITY: usize = 1000;

fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .disable_suggestions()
}

/// The schema serving requests against `state`, twice: with the per-field hook (guard,
/// record count, resolver spans) and without it, for the queries `planned` decides ahead.
/// Every request must carry a `Principal`.
#[derive(Clone)]
pub struct Executors {
    pub per_field: DarttsSchema,
    planned: Option<DarttsSchema>,
    /// The served schema's output types: for planning and for `shape`.
    types: Option<std::sync::Arc<planned::Types>>,
}

pub fn build(state: AppState) -> Executors {
    let with_state = |builder: SchemaBuilder<Query, Mutation, EmptySubscription>| {
        let mut builder = builder.data(state.policy.clone());
        if !state.settings.introspection {
            builder = builder.disable_introspection();
        }
        builder.data(state.clone()).finish()
    };
    let per_field = with_state(builder().extension(per_field::PerField));
    let types = planned::Types::from_sdl(&per_field.sdl()).map(std::sync::Arc::new);
    if types.is_none() {
        // Never less guarded, only slower and in async-graphql's shape; said once, not per
        // request. The SDL is this code's own, so `planned`'s unit tests would fail first.
        tracing::error!(
            "the served SDL did not parse: every query runs with the per-field hook, unshaped"
        );
    }
    // A span per database-reading resolver needs the hook: with traces exported, every
    // request takes it.
    let planned =
        (types.is_some() && !crate::telemetry::resolvers_traced()).then(|| with_state(builder()));
    Executors {
        per_field,
        planned,
        types,
    }
}

impl Executors {
    /// The schema to run `request` on, and whether it is the one without the hook (then only
    /// `shape` counts its records; with the hook, `records::Delivered` also does).
    pub fn choose(
        &self,
        request: &mut async_graphql::Request,
        policy: &crate::policy::Policy,
        perms: &crate::policy::PermissionSet,
    ) -> (&DarttsSchema, bool) {
        let (Some(schema), Some(types)) = (&self.planned, &self.types) else {
            return (&self.per_field, false);
        };
        let operation_name = request.operation_name.clone();
        let variables = request.variables.clone();
        let planned = request
            .parsed_query()
            .is_ok_and(|doc| types.plan(doc, operation_name.as_deref(), &variables, policy, perms));
        if planned {
            (schema, true)
        } else {
            (&self.per_field, false)
        }
    }

    /// What `shape::Pending::apply` needs to put `request`'s response in the specification's
    /// shape and count its records, taken before the request goes into execution; `None` if
    /// it will not parse.
    pub fn shape(&self, request: &mut async_graphql::Request) -> Option<shape::Pending> {
        let types = self.types.clone()?;
        let operation_name = request.operation_name.clone();
        let variables = request.variables.clone();
        let doc = request.parsed_query().ok()?.clone();
        Some(shape::Pending {
            types,
            doc,
            operation_name,
            variables,
        })
    }
}

/// The SDL clients code against; `schema.graphql` at the repository root is this text.
pub fn sdl() -> String {
    builder().finish().sdl()
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_schema_matches_the_code() {
        let committed = include_str!("../../../schema.graphql");
        let current = super::sdl();
        assert!(
            committed == current,
            "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
        );
    }
}
