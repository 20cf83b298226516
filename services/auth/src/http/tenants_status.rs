//! What the tenants file reloader did last: the status `GET /v1/admin/tenants/status`
//! shows and the gauges it sets. Shared state, apart from the reloader itself
//! (`tenants_watch`).

use std::sync::Mutex;

use mcpg_license_core::clock::to_rfc3339;
use serde::Serialize;

use crate::domain::tenants_file::{ChangeAction, Plan};
use crate::infra::telemetry::{TENANTS_APPLIED_AT, TENANTS_FAILURES, TENANTS_GENERATION};

/// What the reloader did last, for `GET /v1/admin/tenants/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct StatusView {
    /// The watched file, if any.
    pub(crate) file: Option<String>,
    /// Whether managed objects absent from the file are deleted.
    pub(crate) prune: bool,
    /// Applied generations (0: none).
    pub(crate) generation: u64,
    /// SHA-256 of the applied content.
    pub(crate) applied_sha256: Option<String>,
    /// When it was applied.
    pub(crate) applied_at: Option<String>,
    /// Counts of the last applied plan by action.
    pub(crate) last_changes: Option<serde_json::Value>,
    /// Why the last changed content was not applied (cleared by the next success).
    pub(crate) last_error: Option<String>,
    /// When that happened.
    pub(crate) last_error_at: Option<String>,
}

/// Shared reloader status.
#[derive(Debug, Default)]
pub(crate) struct TenantsStatus(Mutex<StatusView>);

impl TenantsStatus {
    /// A snapshot.
    pub(crate) fn view(&self) -> StatusView {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut StatusView)) {
        if let Ok(mut view) = self.0.lock() {
            change(&mut view);
        }
    }

    pub(crate) fn applied(&self, hash: &[u8; 32], plan: &Plan, now: i64) -> u64 {
        let mut generation = 0;
        self.update(|view| {
            view.generation += 1;
            generation = view.generation;
            view.applied_sha256 = Some(hex::encode(hash));
            view.applied_at = Some(to_rfc3339(now));
            view.last_changes = Some(serde_json::json!({
                "create": plan.count(ChangeAction::Create),
                "update": plan.count(ChangeAction::Update),
                "delete": plan.count(ChangeAction::Delete),
                "keep": plan.count(ChangeAction::Keep),
            }));
            view.last_error = None;
            view.last_error_at = None;
        });
        metrics::gauge!(TENANTS_GENERATION).set(generation as f64);
        metrics::gauge!(TENANTS_APPLIED_AT).set(now as f64);
        generation
    }

    pub(crate) fn failed(&self, error: &str, now: i64) {
        metrics::counter!(TENANTS_FAILURES).increment(1);
        self.update(|view| {
            view.last_error = Some(error.to_owned());
            view.last_error_at = Some(to_rfc3339(now));
        });
    }
}
