//! Observability and the background loop: a `tracing` event on every state change, gauges
//! per tenant, an hourly warning while in Grace, daily warnings in the 30 days before an
//! offline license or issuer certificate expires, and the refresh loop of `serve`. The
//! names of every metric the crate emits are here.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use mcpg_license_core::UnixTime;
use mcpg_license_core::clock::to_rfc3339;

use crate::decision::State;
use crate::entitlements::{Basis, TenantHandle};
use crate::gateway::Gateway;
use crate::sync::MutexExt;
use crate::tenant::TenantKey;

/// Gauge: a tenant's state ([`State::gauge_value`]), by tenant.
pub const STATE: &str = "mcpg_entitlements_state";
/// Gauge: seconds until a federated tenant's grace bound (0 past it), by tenant.
pub const GRACE_REMAINING: &str = "mcpg_entitlements_grace_remaining_seconds";
/// Counter: failed refreshes, by tenant (`-` before the first token) and reason code.
pub const REFRESH_FAILURES: &str = "mcpg_entitlements_refresh_failures_total";
/// Counter: admissions refused by a gateway-side limit, by limit (`max_servers`,
/// `max_concurrent_requests`).
pub const LIMIT_REFUSALS: &str = "mcpg_entitlements_limit_refusals_total";
/// Gauge: 1 for the tenant's current state, 0 for the others, by tenant and `state`
/// (`state="grace"`): alert on a label rather than on a number's meaning.
pub const TENANT_STATE: &str = "mcpg_entitlements_tenant_state";

/// Describes every metric above to the installed recorder, so an exporter can print
/// `# HELP` lines. Call it once, after installing the recorder.
pub fn describe_metrics() {
    metrics::describe_gauge!(
        STATE,
        "The tenant's entitlement state (0 unlicensed, 1 active, 2 grace, 3 lapsed, 4 revoked, 5 offline, 6 offline_expired)"
    );
    metrics::describe_gauge!(
        TENANT_STATE,
        "1 for the tenant's current entitlement state, 0 for the others (label state: unlicensed, active, grace, lapsed, revoked, offline, offline_expired)"
    );
    metrics::describe_gauge!(
        GRACE_REMAINING,
        metrics::Unit::Seconds,
        "Seconds until a federated tenant's grace bound (0 past it)"
    );
    metrics::describe_counter!(
        REFRESH_FAILURES,
        "Failed entitlement refreshes, by tenant and reason code"
    );
    metrics::describe_counter!(
        LIMIT_REFUSALS,
        "Admissions refused by a gateway-side license limit, by limit"
    );
}

/// How often the Grace warning repeats.
pub const GRACE_WARNING_EVERY: i64 = 3_600;
/// How often expiry warnings repeat.
pub const EXPIRY_WARNING_EVERY: i64 = 86_400;
/// How long before an expiry the warnings start.
pub const EXPIRY_WARNING_WINDOW: i64 = 30 * 86_400;
/// The longest the background loop sleeps, so clock jumps and state changes are seen.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// What was last reported per tenant. The [`crate::registry::Registry`] tells it of every
/// change and, on each tick, of every tenant.
#[derive(Default)]
pub(crate) struct Observer {
    seen: Mutex<HashMap<TenantKey, Reported>>,
    warnings: Mutex<u64>,
}

#[derive(Clone, Copy)]
struct Reported {
    state: State,
    grace_warned_at: Option<UnixTime>,
    expiry_warned_at: Option<UnixTime>,
}

impl Observer {
    /// Reports a state change of `key` at `now` (if any), refreshes its gauges and emits
    /// the warnings due.
    pub(crate) fn note(&self, key: &TenantKey, handle: &TenantHandle, now: UnixTime) {
        let entitlements = handle.entitlements();
        let state = entitlements.state_at(now);
        let mut seen = self.seen.lock_or_recover();
        let entry = seen.entry(key.clone()).or_insert(Reported {
            state,
            grace_warned_at: None,
            expiry_warned_at: None,
        });
        if entry.state != state {
            tracing::info!(tenant = %key, from = %entry.state, to = %state, "entitlement state changed");
            entry.state = state;
        }
        if state != State::Grace {
            entry.grace_warned_at = None;
        }
        let label = key.to_string();
        metrics::gauge!(STATE, "tenant" => label.clone()).set(state.gauge_value());
        for each in State::ALL {
            let current = f64::from(u8::from(each == state));
            metrics::gauge!(TENANT_STATE, "tenant" => label.clone(), "state" => each.as_str())
                .set(current);
        }
        let (end, grace_end) = match entitlements.basis() {
            Basis::Federated { exp, grc } => (Some(exp), Some(grc)),
            Basis::Offline { exp } => (Some(exp), None),
            _ => (None, None),
        };
        if let Some(grc) = grace_end {
            metrics::gauge!(GRACE_REMAINING, "tenant" => label.clone())
                .set(grc.saturating_sub(now).max(0) as f64);
        }
        let mut warned = 0;
        if state == State::Grace
            && entry
                .grace_warned_at
                .is_none_or(|t| now.saturating_sub(t) >= GRACE_WARNING_EVERY)
            && let Some(grc) = grace_end
        {
            tracing::warn!(tenant = %key, grace_until = %to_rfc3339(grc), remaining_s = grc.saturating_sub(now), "entitlements in grace: the federation cannot be reached; paid plugins stop at the grace bound");
            entry.grace_warned_at = Some(now);
            warned += 1;
        }
        let expiries = [
            matches!(entitlements.basis(), Basis::Offline { .. })
                .then_some(end)
                .flatten()
                .map(|t| ("offline license", t)),
            entitlements
                .details()
                .and_then(|d| d.certificate_expires_at)
                .map(|t| ("issuer certificate", t)),
        ];
        for (what, at) in expiries.into_iter().flatten() {
            if now < at
                && at - now <= EXPIRY_WARNING_WINDOW
                && entry
                    .expiry_warned_at
                    .is_none_or(|t| now.saturating_sub(t) >= EXPIRY_WARNING_EVERY)
            {
                tracing::warn!(tenant = %key, expires_at = %to_rfc3339(at), days_left = (at - now) / 86_400, "{what} expires soon");
                entry.expiry_warned_at = Some(now);
                warned += 1;
            }
        }
        drop(seen);
        *self.warnings.lock_or_recover() += warned;
    }

    /// How many warnings were emitted so far.
    pub(crate) fn warnings_emitted(&self) -> u64 {
        *self.warnings.lock_or_recover()
    }
}

impl Gateway {
    /// Re-evaluates every tenant (state changes happen by time alone), updates metrics,
    /// emits due warnings and persists the highest time seen. Cheap; call it every minute.
    pub fn tick(&self) {
        self.inner.registry.observe_all();
        let now = self.inner.time.now();
        if self.inner.time.clock_is_behind() {
            tracing::warn!(max_seen = %to_rfc3339(now), "the system clock reads earlier than a time already seen; using the later time");
        }
        if let Some(store) = &self.inner.store
            && let Err(e) = store.save_max_seen(now)
        {
            tracing::error!(error = %e, "could not persist the highest time seen");
        }
        if let Some(ledger) = &self.inner.ledger {
            let mut ledger = ledger.lock_or_recover();
            ledger.record(self.inner.catalog, &self.inner.own.handle().usage_totals());
            if let Err(e) = ledger.roll(now) {
                tracing::error!(error = %e, "could not record usage in the ledger; retrying at the next tick");
            }
        }
    }

    /// Keeps the open usage day on disk (offline mode): what the checks counted since the
    /// last tick. [`Gateway::run`] calls it when it stops; call it at a graceful shutdown.
    pub fn flush_usage(&self) {
        if let Some(ledger) = &self.inner.ledger {
            let mut ledger = ledger.lock_or_recover();
            ledger.record(self.inner.catalog, &self.inner.own.handle().usage_totals());
            if let Err(e) = ledger.save_open_day() {
                tracing::error!(error = %e, "could not keep the open usage day");
            }
        }
    }

    /// How many warnings (grace, expiry) were emitted so far.
    pub fn warnings_emitted(&self) -> u64 {
        self.inner.registry.warnings_emitted()
    }

    /// Keeps refreshing until `shutdown` completes: refreshes when due, ticks at least
    /// every minute. In tier0 and offline modes it only ticks.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            self.refresh_due().await;
            if let Err(e) = self.reload_revocation_file() {
                tracing::warn!(error = %e, "could not re-read the revocation list file");
            }
            self.tick();
            let now = self.inner.time.now();
            let next = match (self.next_refresh_at(), self.revocations_due()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let wait = next.map_or(MAX_SLEEP, |at| {
                Duration::from_secs(
                    at.saturating_sub(now)
                        .clamp(1, MAX_SLEEP.as_secs() as i64)
                        .unsigned_abs(),
                )
            });
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.flush_usage();
    }
}
