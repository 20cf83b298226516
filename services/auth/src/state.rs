//! The state every handler shares.

use std::sync::Arc;

use mcpg_license_core::Clock;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::issuer::Issuer;
use crate::keyring::Keyring;
use crate::ratelimit::RateLimits;
use crate::store::Store;

/// Facts about this deployment that the metadata document publishes.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// Issuer URL.
    pub issuer: String,
    /// Key ids of the roots that certify this service's keys.
    pub root_kids: Vec<String>,
    /// Host suffix of subdomain routing, if enabled.
    pub subdomain_suffix: Option<String>,
}

/// Shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
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
}

impl AppState {
    /// The current Unix time.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
