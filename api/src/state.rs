//! The state every request shares. Cheap to clone: everything inside is reference-counted.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::local_token::LocalSigner;
use crate::config::Settings;
use crate::policy::Policy;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub policy: Arc<Policy>,
    pub signer: Arc<LocalSigner>,
}
