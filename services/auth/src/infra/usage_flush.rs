//! Writing the usage meter's counts (see `usage_meter`) and what follows them: the
//! over-limit check of each org and day the batch touched, and the retention's roll-up.
//!
//! Over a limit means: more gateways active (or holding a token at once) on a day than
//! the license's `max_gateways`, or checks *allowed* for a plugin the org's entitlements
//! do not include (only a tampered or outdated gateway allows one). It is recorded once
//! per org, limit and day, cluster-wide (a row and its `usage.over_limit` audit entry in
//! one transaction), counted in `mcpg_usage_over_limit_total` and shown by the usage
//! API. Nothing is cut off.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use mcpg_license_core::Catalog;
use serde_json::json;

use crate::domain::usage::{Day, day_of, day_text, peak_gateways};
use crate::infra::directory::{GatewayId, OrgGrant};
use crate::infra::store::{GatewayDayDelta, Store, StoreError};
use crate::infra::telemetry::USAGE_OVER_LIMIT;
use crate::infra::usage_meter::{GatewayUsage, UsageMeter};

/// The limit keys over-limit days are recorded under.
pub(crate) const LIMIT_GATEWAYS: &str = "max_gateways";
/// A plugin allowed that the license does not include.
pub(crate) const LIMIT_PLUGIN: &str = "plugin";

/// Most gateways one transaction of a flush writes.
const FLUSH_CHUNK: usize = 1_000;

/// Flushes a meter and remembers which org-days are known to be over a limit (so a busy
/// org over its limit costs one query per day, not one per flush).
#[derive(Debug, Default)]
pub(crate) struct UsageFlusher {
    recorded: Mutex<HashSet<(String, Day, &'static str)>>,
    /// Held through every flush: a flush holds drained counts only in memory, so stopping
    /// the flush task waits for it ([`UsageFlusher::pause`]) rather than dropping them.
    running: tokio::sync::Mutex<()>,
}

struct OrgBatch {
    org: Arc<OrgGrant>,
    gateways: Vec<(GatewayId, GatewayUsage)>,
}

impl UsageFlusher {
    /// Writes everything `meter` counted (per org, one transaction per [`FLUSH_CHUNK`]
    /// gateways) and checks the orgs' limits on the days written; what a failed
    /// transaction did not write is given back to the meter.
    /// Returns how many gateway-days were written.
    pub(crate) async fn flush(
        &self,
        meter: &UsageMeter,
        store: &Store,
        now: i64,
    ) -> Result<usize, StoreError> {
        let _running = self.running.lock().await;
        let mut per_org: BTreeMap<String, OrgBatch> = BTreeMap::new();
        for (gateway_id, usage) in meter.drain() {
            per_org
                .entry(usage.org.id.clone())
                .or_insert_with(|| OrgBatch {
                    org: usage.org.clone(),
                    gateways: Vec::new(),
                })
                .gateways
                .push((gateway_id, usage));
        }
        let (mut written, mut failure) = (0, None);
        for (org_id, mut batch) in per_org {
            // In transactions of FLUSH_CHUNK gateways, so that the stored form of a fleet
            // that all got tokens in the last interval is never in memory at once.
            let mut done = 0;
            while done < batch.gateways.len() {
                let end = batch.gateways.len().min(done + FLUSH_CHUNK);
                let deltas = deltas_of(&batch.gateways[done..end]);
                match store.tenant(&org_id).add_usage(&deltas).await {
                    Ok(()) => {
                        written += deltas.len();
                        done = end;
                    }
                    Err(error) => {
                        meter.restore(batch.gateways.split_off(done));
                        failure = Some(error);
                        break;
                    }
                }
            }
            if done == 0 {
                continue;
            }
            if let Err(error) = self.check_limits(store, &batch, now).await {
                tracing::warn!(org = %batch.org.slug, error = %error, "usage limit check failed");
            }
        }
        self.forget_before(day_of(now) - 1);
        match failure {
            Some(error) => Err(error),
            None => Ok(written),
        }
    }

    /// Waits for a flush in progress and keeps the next one from starting while the guard
    /// lives: the flush task can then be aborted without losing drained counts.
    pub(crate) async fn pause(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.running.lock().await
    }

    async fn check_limits(
        &self,
        store: &Store,
        batch: &OrgBatch,
        now: i64,
    ) -> Result<(), StoreError> {
        let org = &batch.org;
        let tenant = store.tenant(&org.id);
        let days: BTreeSet<Day> = batch
            .gateways
            .iter()
            .flat_map(|(_, usage)| usage.days.iter().map(|d| d.day))
            .collect();
        let max = org.license.as_ref().and_then(|l| l.limits.max_gateways);
        for day in days {
            let texts = [day_text(day - 1), day_text(day)];
            let max = match max.filter(|_| !self.known(&org.id, day, LIMIT_GATEWAYS)) {
                // Neither the active nor the peak gateways can pass the limit while the
                // gateways of both days together do not: the usual case, decided by one
                // count instead of reading every gateway's hours (100,000 rows a flush for
                // a fleet that size).
                Some(max) if tenant.usage_gateways_either_day(&texts).await? > max => Some(max),
                _ => None,
            };
            if let Some(max) = max {
                let hours = tenant.usage_hours(&texts).await?;
                let of = |wanted: &String| -> Vec<(&str, u32)> {
                    hours
                        .iter()
                        .filter(|(d, _, _)| d == wanted)
                        .map(|(_, g, h)| (g.as_str(), u32::try_from(*h & 0x00ff_ffff).unwrap_or(0)))
                        .collect()
                };
                let active = of(&texts[1]).len() as u64;
                let peak = peak_gateways(of(&texts[1]), of(&texts[0]));
                if active > max || peak > max {
                    let detail = json!({"gateways_active": active, "peak_gateways": peak,
                                        "max_gateways": max});
                    self.record(store, org, day, LIMIT_GATEWAYS, detail, now)
                        .await?;
                }
            }
            if !self.known(&org.id, day, LIMIT_PLUGIN) {
                let unlicensed = unlicensed_plugins(org, &batch.gateways, day);
                if !unlicensed.is_empty() {
                    let detail = json!({"plugins": unlicensed});
                    self.record(store, org, day, LIMIT_PLUGIN, detail, now)
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn record(
        &self,
        store: &Store,
        org: &OrgGrant,
        day: Day,
        limit: &'static str,
        detail: serde_json::Value,
        now: i64,
    ) -> Result<(), StoreError> {
        let new = store
            .tenant(&org.id)
            .record_over_limit(&day_text(day), limit, detail, now)
            .await?;
        if new {
            metrics::counter!(USAGE_OVER_LIMIT, "org" => org.slug.clone(), "limit" => limit)
                .increment(1);
            tracing::warn!(org = %org.slug, day = %day_text(day), limit,
                "usage over the license's limit (recorded; nothing is cut off)");
        }
        if let Ok(mut recorded) = self.recorded.lock() {
            recorded.insert((org.id.clone(), day, limit));
        }
        Ok(())
    }

    fn known(&self, org_id: &str, day: Day, limit: &'static str) -> bool {
        self.recorded
            .lock()
            .is_ok_and(|r| r.contains(&(org_id.to_owned(), day, limit)))
    }

    fn forget_before(&self, day: Day) {
        if let Ok(mut recorded) = self.recorded.lock() {
            recorded.retain(|(_, d, _)| *d >= day);
        }
    }
}

/// The stored-row form of a batch.
fn deltas_of(gateways: &[(GatewayId, GatewayUsage)]) -> Vec<GatewayDayDelta> {
    let mut deltas = Vec::new();
    for (gateway_id, usage) in gateways {
        for counts in &usage.days {
            deltas.push(GatewayDayDelta {
                day: day_text(counts.day),
                gateway_id: gateway_id.to_string(),
                workspace: usage.place.workspace.to_string(),
                environment: usage.place.environment.to_string(),
                tokens: i64::try_from(counts.tokens).unwrap_or(i64::MAX),
                hours: i64::from(counts.hours),
                version: counts.version.clone(),
                plugins: counts
                    .plugins
                    .iter()
                    .map(|(p, c)| (p.to_owned(), *c))
                    .collect(),
            });
        }
    }
    deltas
}

/// Plugins with allowed checks on `day` that the org's entitlements do not include (or
/// that the catalog does not know: the checker refuses those).
fn unlicensed_plugins(
    org: &OrgGrant,
    gateways: &[(GatewayId, GatewayUsage)],
    day: Day,
) -> Vec<String> {
    let catalog = Catalog::builtin();
    let used: BTreeSet<&str> = gateways
        .iter()
        .flat_map(|(_, usage)| usage.days.iter().filter(|d| d.day == day))
        .flat_map(|d| d.plugins.iter())
        .filter(|(_, counts)| counts.allowed > 0)
        .map(|(plugin, _)| plugin)
        .collect();
    used.into_iter()
        .filter(|plugin| catalog.decide(plugin, &org.entitlements).is_err())
        .map(str::to_owned)
        .collect()
}

/// Rolls usage days older than `retention_days` before `now` up into months.
pub(crate) async fn roll_up(
    store: &Store,
    now: i64,
    retention_days: i64,
) -> Result<u64, StoreError> {
    let before = day_text(day_of(now) - retention_days);
    store.roll_up_usage(&before).await
}
