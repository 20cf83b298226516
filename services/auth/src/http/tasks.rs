//! The service's periodic background tasks, started by `Application::run_until` and
//! aborted at shutdown: key reloads, the issued-token audit flush, audit checkpoints,
//! histogram upkeep and housekeeping (gateway activity, per-org and process gauges, the
//! certificate expiry warning).

use std::sync::Arc;
use std::time::Duration;

use mcpg_runtime::every::{FirstTick, every};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::http::state::AppState;
use crate::infra::store::Change;
use crate::infra::telemetry::{
    CERTIFICATE_EXPIRY, GATEWAYS_SEEN, LICENSE_EXPIRY, record_process_metrics,
};
use crate::infra::{audit_chain, usage_flush};

/// How often buffered `last_token_at` times are flushed and per-org gauges refreshed.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);
/// How often issued tokens are appended to their orgs' audit chains (one entry per org).
const ISSUANCE_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How often usage days past the retention are looked for.
const USAGE_ROLL_UP_INTERVAL: Duration = Duration::from_secs(3_600);
/// How often recorded histogram samples are folded into their buckets (the exporter's own
/// default). The recorder keeps every sample until then: without this, a service that
/// nobody scrapes would grow by about 20 bytes per request.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The shortest wait for a pending key that is due (should it stay pending, the reloader
/// does not spin).
const MIN_WAIT: Duration = Duration::from_secs(1);

/// Reloads the keyring every `period`, when a pending key is due to become active, and as
/// soon as a committed change touches the keys, their certificates or the revocation list
/// (here or, through the change listener, on another replica).
pub(super) fn spawn_key_reloader(state: AppState, period: Duration) -> JoinHandle<()> {
    let period = period.max(Duration::from_millis(100));
    let wake = Arc::new(Notify::new());
    let waker = Arc::downgrade(&wake);
    state.store.changes().subscribe(move |changes| {
        let keys = changes
            .iter()
            .any(|c| matches!(c, Change::Keys | Change::All));
        if let Some(wake) = waker.upgrade().filter(|_| keys) {
            wake.notify_one();
        }
    });
    tokio::spawn(async move {
        loop {
            if let Err(error) = state.keyring.reload(state.now()).await {
                tracing::error!(error = format!("{error:#}"), "key reload failed");
            }
            // A pending key becomes active at a reload after its time: wake then too.
            let until_activation = state
                .keyring
                .next_activation()
                .map(|at| Duration::from_secs(u64::try_from(at - state.now()).unwrap_or(0)));
            let wait = until_activation.map_or(period, |until| period.min(until.max(MIN_WAIT)));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = wake.notified() => {}
            }
        }
    })
}

pub(super) fn spawn_issuance_flusher(state: AppState) -> JoinHandle<()> {
    every(
        ISSUANCE_FLUSH_INTERVAL,
        "issuance-flush",
        FirstTick::Now,
        move || {
            let state = state.clone();
            async move {
                if let Err(error) = state.issuer.flush_issued(state.now()).await {
                    tracing::warn!(error = %error, "could not record issued tokens in the audit chain");
                }
            }
        },
    )
}

/// Writes the usage counted on the token path (one transaction per org) and checks the
/// orgs' limits on the days written.
pub(super) fn spawn_usage_flusher(state: AppState) -> JoinHandle<()> {
    let period = state
        .info
        .usage_flush_interval
        .max(Duration::from_millis(10));
    every(period, "usage-flush", FirstTick::AfterPeriod, move || {
        let state = state.clone();
        async move {
            if let Err(error) = state.flush_usage().await {
                tracing::warn!(error = %error, "could not write usage (kept for the next flush)");
            }
        }
    })
}

/// Rolls usage days past the retention up into months, at start and every hour.
pub(super) fn spawn_usage_roll_up(state: AppState) -> JoinHandle<()> {
    every(
        USAGE_ROLL_UP_INTERVAL,
        "usage-roll-up",
        FirstTick::Now,
        move || {
            let state = state.clone();
            async move {
                let days = i64::try_from(state.info.usage_retention.as_secs() / 86_400)
                    .unwrap_or(i64::MAX);
                match usage_flush::roll_up(&state.store, state.now(), days).await {
                    Ok(0) => {}
                    Ok(rolled) => tracing::info!(
                        rolled,
                        "usage days past the retention rolled up into months"
                    ),
                    Err(error) => tracing::warn!(error = %error, "usage roll-up failed"),
                }
            }
        },
    )
}

pub(super) fn spawn_checkpointer(state: AppState, period: Duration) -> JoinHandle<()> {
    let period = period.max(Duration::from_secs(1));
    every(
        period,
        "audit-checkpoints",
        FirstTick::AfterPeriod,
        move || {
            let state = state.clone();
            async move {
                match audit_chain::checkpoint_moved_heads(&state.store, &state.keyring, state.now())
                    .await
                {
                    Ok(0) => {}
                    Ok(signed) => tracing::info!(signed, "audit checkpoints signed"),
                    Err(error) => tracing::warn!(error = %error, "audit checkpoints failed"),
                }
            }
        },
    )
}

/// Purges the archives of deleted orgs once their retention has passed; each purge leaves
/// an `archive.purge` entry in the `_system` chain.
pub(super) fn spawn_archive_purger(state: AppState, period: Duration) -> JoinHandle<()> {
    let period = period.max(Duration::from_secs(1));
    every(period, "archive-purge", FirstTick::Now, move || {
        let state = state.clone();
        async move {
            let now = state.now();
            let retention = i64::try_from(state.info.retention.as_secs()).unwrap_or(i64::MAX);
            match state
                .store
                .purge_archives(now.saturating_sub(retention), now)
                .await
            {
                Ok(purged) => {
                    for archive in purged {
                        tracing::info!(org = %archive.org_slug, archive_id = %archive.id,
                            "deleted org's archive purged after its retention");
                    }
                }
                Err(error) => tracing::warn!(error = %error, "archive purge failed"),
            }
        }
    })
}

/// Drains the histograms' pending samples into their buckets. `/metrics` does the same on
/// every scrape; this bounds the memory when scrapes are rare or absent (the recorder is
/// built, not installed with the exporter's own upkeep thread, so that tests can share it).
pub(super) fn spawn_metrics_upkeep(metrics: PrometheusHandle) -> JoinHandle<()> {
    every(
        METRICS_UPKEEP_INTERVAL,
        "metrics-upkeep",
        FirstTick::Now,
        move || {
            metrics.run_upkeep();
            std::future::ready(())
        },
    )
}

pub(super) fn spawn_housekeeping(state: AppState) -> JoinHandle<()> {
    every(
        HOUSEKEEPING_INTERVAL,
        "housekeeping",
        FirstTick::Now,
        move || {
            let state = state.clone();
            async move {
                if let Err(error) = housekeeping(&state).await {
                    tracing::warn!(error = format!("{error:#}"), "housekeeping failed");
                }
            }
        },
    )
}

async fn housekeeping(state: &AppState) -> anyhow::Result<()> {
    state.denials.report_suppressed();
    // Apart from the rest: a system without /proc still flushes and sets the org gauges.
    if let Err(error) = record_process_metrics() {
        tracing::debug!(error = %error, "cannot read the process metrics");
    }
    state.issuer.flush_seen().await?;
    let now = state.now();
    match state
        .store
        .purge_console_sessions(now, now - crate::http::console::IDLE_TIMEOUT)
        .await
    {
        Ok(0) => {}
        Ok(ended) => tracing::debug!(sessions = ended, "ended console sessions purged"),
        // Ended sessions open nothing (every lookup checks the times): a failed purge
        // only leaves rows for the next round, and must not hold the gauges back.
        Err(error) => tracing::warn!(error = %error, "cannot purge ended console sessions"),
    }
    // The gauges are relative to when they are read, not to when the round began.
    let now = state.now();
    for (org, count) in state.store.gateways_seen_since(now - 86_400).await? {
        metrics::gauge!(GATEWAYS_SEEN, "org" => org).set(count as f64);
    }
    for (org, end) in state.store.license_ends().await? {
        metrics::gauge!(LICENSE_EXPIRY, "org" => org).set((end - now) as f64);
    }
    if let Some(snapshot) = state.keyring.snapshot() {
        let exp = snapshot.certificate_expires_at;
        metrics::gauge!(CERTIFICATE_EXPIRY).set((exp - now) as f64);
        if let Some(days) = state.expiry_watch.due(now, exp) {
            tracing::warn!(
                kid = %snapshot.signer.key().kid(),
                cid = %snapshot.bounds.cid,
                expires_at = %mcpg_license_core::clock::to_rfc3339(exp),
                days_left = days,
                "the signing key's issuer certificate expires in {days} day(s): import a new key and certificate (POST /v1/admin/keys/import) before it does"
            );
        }
    }
    Ok(())
}
