//! The state every handler shares.

use std::sync::Arc;

use mcpg_license_core::Clock;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::http::denials::DenialLog;
use crate::http::tenants_status::TenantsStatus;
use crate::infra::certwatch::ExpiryWatch;
use crate::infra::issuer::Issuer;
use crate::infra::keyring::Keyring;
use crate::infra::limiter::Limiter;
use crate::infra::oidc::OidcVerifier;
use crate::infra::peers::PeerStatus;
use crate::infra::replicas::Heartbeat;
use crate::infra::store::Store;
use crate::infra::usage_flush::UsageFlusher;
use crate::infra::usage_meter::UsageMeter;

/// Facts about this deployment that the metadata document publishes.
#[derive(Debug, Clone)]
pub(crate) struct ServiceInfo {
    /// Issuer URL.
    pub(crate) issuer_url: String,
    /// Key ids of the roots that certify this service's keys.
    pub(crate) root_kids: Vec<String>,
    /// Host suffix of subdomain routing, if enabled.
    pub(crate) subdomain_suffix: Option<String>,
    /// Most objects a tenants document may declare.
    pub(crate) tenants_max_objects: usize,
    /// How long a grant is cached: how late another replica's change takes effect here
    /// while the change listener is down.
    pub(crate) grant_cache_ttl: std::time::Duration,
    /// How long a deleted org's archive is kept before it is purged.
    pub(crate) retention: std::time::Duration,
    /// How long usage is kept per day before it is rolled up into months.
    pub(crate) usage_retention: std::time::Duration,
    /// How often the usage meter is flushed.
    pub(crate) usage_flush_interval: std::time::Duration,
}

/// Shared state: one reference count to clone (axum clones it into every request).
#[derive(Clone)]
pub(crate) struct AppState(Arc<SharedState>);

impl AppState {
    /// Wraps the shared parts.
    pub(crate) fn new(shared: SharedState) -> Self {
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
pub(crate) struct SharedState {
    /// Storage.
    pub(crate) store: Store,
    /// Signing keys.
    pub(crate) keyring: Arc<Keyring>,
    /// The token hot path.
    pub(crate) issuer: Arc<Issuer>,
    /// Per-org and admin request rate limits.
    pub(crate) limiter: Arc<Limiter>,
    /// Whether this replica hears the other replicas' changes (PostgreSQL).
    pub(crate) peers: Arc<PeerStatus>,
    /// This replica's membership (heartbeat row, replicas alive).
    pub(crate) heartbeat: Arc<Heartbeat>,
    /// Deployment facts.
    pub(crate) info: Arc<ServiceInfo>,
    /// Renders `/metrics`.
    pub(crate) metrics: PrometheusHandle,
    /// Time source.
    pub(crate) clock: Arc<dyn Clock>,
    /// Verifies operators' identity tokens from the orgs' OIDC providers.
    pub(crate) oidc: Arc<OidcVerifier>,
    /// What the tenants file reloader did last.
    pub(crate) tenants: Arc<TenantsStatus>,
    /// When the certificate expiry warning was last logged.
    pub(crate) expiry_watch: Arc<ExpiryWatch>,
    /// The log budgets of refused requests and cross-tenant probes.
    pub(crate) denials: Arc<DenialLog>,
    /// Usage counted on the token path, waiting for the flush.
    pub(crate) usage: Arc<UsageMeter>,
    /// Writes the usage meter's counts and checks the orgs' limits.
    pub(crate) usage_flusher: Arc<UsageFlusher>,
    /// The operator console's caches.
    pub(crate) console: Arc<crate::http::console::ConsoleState>,
}

impl SharedState {
    /// The current Unix time.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Writes the usage counted since the last flush (see `infra::usage_flush`).
    pub(crate) async fn flush_usage(&self) -> Result<usize, crate::infra::store::StoreError> {
        self.usage_flusher
            .flush(&self.usage, &self.store, self.now())
            .await
    }
}
