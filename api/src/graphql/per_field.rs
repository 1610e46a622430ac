//! The one executor extension, run for every resolved field of the operations `planned` cannot
//! decide on their document (the others run on a schema without it). It applies, in order,
//! the field guard (`guard::check`: refuse before anything resolves), the resolver span
//! (`telemetry::resolver_span`) and the delivered-record count (`records::counts`/`count`:
//! only what resolved). Each rule lives in its own module; this only sequences them.
//!
//! One extension, not three chained ones: async-graphql boxes each extension's future for each
//! field, and a page of 50 records with 10 fields resolves about 550 fields. Three boxed,
//! moved futures per field were about a tenth of such a request's time.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerResult, Value};
use tracing::Instrument;

use super::{guard, records};
use crate::telemetry;

pub struct PerField;

impl ExtensionFactory for PerField {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerFieldExtension)
    }
}

struct PerFieldExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for PerFieldExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        guard::check(ctx, &info)?;
        let counts = records::counts(&info);
        let value = match telemetry::resolver_span(&info) {
            Some(span) => next.run(ctx, info).instrument(span).await?,
            None => next.run(ctx, info).await?,
        };
        if counts {
            records::count(ctx, &value);
        }
        Ok(value)
    }
}
