//! The state every handler shares.

use std::sync::Arc;

use mcpg_license_core::Clock;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::certwatch::ExpiryWatch;
use crate::issuer::Issuer;
use crate::keyring::Keyring;
use crate::oidc::OidcVerifier;
use crate::ratelimit::RateLimits;
use crate::store::Store;
use crate::tenants::watch::TenantsStatus;

/// Facts about this deployment that the metadata document publishes.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// Issuer URL.
    pub issuer: String,
    /// Key ids of the roots that certify this service's keys.
    pub root_kids: Vec<String>,
    /// Host suffix of subdomain routing, if enabled.
    pub subdomain_suffix: Option<String>,
    /// Most objects a tenants document may declare.
    pub tenants_max_objects: usize,
}

/// Shared state: one reference count to clone (axum clones it into every request).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: SharedState) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What every handler shares.
pub struct SharedState {
    /// Storage.
    pub store: Store,
    /// Signing keys.
    pub keyring: Arc<Keyring>,
    /// The token hot path.
    pub issuer: Arc<Issuer>,
    /// Per-org and admin request rate limits.
    pub limits: Arc<RateLimits>,
    /// Deployment facts.
    pub info: Arc<ServiceInfo>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Verifies operators' identity tokens from the orgs' OIDC providers.
    pub oidc: Arc<OidcVerifier>,
    /// What the tenants file reloader did last.
    pub tenants: Arc<TenantsStatus>,
    /// When the certificate expiry warning was last logged.
    pub expiry_watch: Arc<ExpiryWatch>,
}

impl SharedState {
    /// The current Unix time.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
