//! The state every request shares. Cheap to clone: everything inside is reference-counted.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::admission::Admission;
use crate::audit::AuditSink;
use crate::auth::local_token::LocalSigner;
use crate::auth::login::LoginFlow;
use crate::auth::oidc::OidcVerifier;
use crate::auth::partner::PartnerLogin;
use crate::config::Settings;
use crate::graphql::CursorKey;
use crate::graphql::TablePlans;
use crate::policy::Policy;
use crate::quota::QuotaStore;
use crate::screening::Screening;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub policy: Arc<Policy>,
    pub signer: Arc<LocalSigner>,
    /// The agency's OpenID provider, when `DARTTS_OIDC_ISSUER` is set.
    pub oidc: Option<Arc<OidcVerifier>>,
    /// The server-driven sign-in (`/auth/login`), when a client is configured too.
    pub login: Option<Arc<LoginFlow>>,
    /// The foreign partners' password sign-in, when the mTLS listener is configured.
    pub partner_login: Option<Arc<PartnerLogin>>,
    /// The tamper-evident audit log (a port, so tests could substitute it).
    pub audit: Arc<dyn AuditSink>,
    /// Download quotas: Redis when `DARTTS_REDIS_URL` is set, else in-process.
    pub quota: Arc<dyn QuotaStore>,
    /// The screening index over the SDN list and TECS subjects, kept current in the background.
    pub screening: Arc<Screening>,
    /// Turns to run an analysis (`DARTTS_ANALYSIS_CONCURRENCY` at once).
    pub admission: Admission,
    /// Seals the connections' cursors (derived from the audit key at start-up).
    pub cursors: Arc<CursorKey>,
    /// The whole tables' plans a default-ordered page weighs its own against.
    pub table_plans: Arc<TablePlans>,
}
