//! Usage: what the gateway's checks allowed and refused, per plugin.
//!
//! Every [`crate::TenantHandle`] counts its checks in a `UsageCounters` table: one pair of
//! atomic counters per catalog plugin plus one bucket for plugins the catalog does not know
//! (never counted by name: names are unbounded input). The counters only grow; consumers
//! keep what they have already taken (`Taken`) and read the difference, so a check never
//! waits for a reader and a reader never loses a check that raced with it.
//!
//! Federated gateways send the difference with each token request ([`UsageReport`]) and
//! take it as acknowledged when the federation answers 200; offline gateways add it to
//! the open day of their signed ledger ([`ledger`]), exported as a bundle ([`export`]).

pub mod export;
pub mod ledger;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::usage::{MAX_PLUGINS, PluginCounts, UNKNOWN_PLUGIN_BUCKET, is_plugin_name};
use mcpg_license_core::{Catalog, UnixTime};
use serde::Serialize;

use crate::entitlements::PluginIndex;

/// One plugin's counters, alone on a cache line: checks of different plugins on different
/// cores do not invalidate each other's line (only checks of the same plugin share one).
#[derive(Debug, Default)]
#[repr(align(64))]
struct Pair {
    allowed: AtomicU64,
    refused: AtomicU64,
}

/// Checks allowed and refused per catalog plugin, and for unknown plugins in one bucket.
#[derive(Debug)]
pub(crate) struct UsageCounters {
    /// One per catalog index, then the unknown bucket.
    pairs: Box<[Pair]>,
}

impl UsageCounters {
    /// Counters for a catalog of `plugins` plugins.
    pub(crate) fn new(plugins: usize) -> Self {
        Self {
            pairs: (0..=plugins).map(|_| Pair::default()).collect(),
        }
    }

    /// Counts one check: a relaxed increment, no allocation, no lock.
    #[inline]
    pub(crate) fn record(&self, plugin: Option<PluginIndex>, allowed: bool) {
        let last = self.pairs.len() - 1;
        let index = plugin.map_or(last, |p| p.get().min(last));
        if let Some(pair) = self.pairs.get(index) {
            let counter = if allowed {
                &pair.allowed
            } else {
                &pair.refused
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts so far, by catalog index, then the unknown bucket.
    pub(crate) fn totals(&self) -> Vec<PluginCounts> {
        self.pairs
            .iter()
            .map(|p| PluginCounts {
                allowed: p.allowed.load(Ordering::Relaxed),
                refused: p.refused.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// What a consumer has taken of the (ever-growing) totals.
#[derive(Debug, Clone, Default)]
pub(crate) struct Taken {
    counts: Vec<PluginCounts>,
}

impl Taken {
    /// What `totals` holds beyond what was taken, by index.
    pub(crate) fn pending(&self, totals: &[PluginCounts]) -> Vec<PluginCounts> {
        totals
            .iter()
            .enumerate()
            .map(|(i, total)| {
                let taken = self.counts.get(i).copied().unwrap_or_default();
                PluginCounts {
                    allowed: total.allowed.saturating_sub(taken.allowed),
                    refused: total.refused.saturating_sub(taken.refused),
                }
            })
            .collect()
    }

    /// Marks `delta` (by index) as taken.
    pub(crate) fn take(&mut self, delta: &[PluginCounts]) {
        if self.counts.len() < delta.len() {
            self.counts.resize(delta.len(), PluginCounts::default());
        }
        for (taken, d) in self.counts.iter_mut().zip(delta) {
            taken.add(*d);
        }
    }
}

/// The most bytes of plugin members a report holds: the federation takes reports of up to
/// 64 KiB, and the rest of a report is well under 4 KiB.
const MAX_PLUGIN_BYTES: usize = 60 * 1024;

/// Names the counts by plugin id (unknown plugins as [`UNKNOWN_PLUGIN_BUCKET`]), leaving
/// out zeros and keeping at most [`MAX_PLUGINS`] (and [`MAX_PLUGIN_BYTES`] of JSON).
/// Returns the named counts and what of `delta` they hold (by index), so that what was
/// left out stays pending.
pub(crate) fn named(
    catalog: &Catalog,
    delta: &[PluginCounts],
) -> (BTreeMap<String, PluginCounts>, Vec<PluginCounts>) {
    let plugins = catalog.plugins();
    let mut out = BTreeMap::new();
    let mut used = vec![PluginCounts::default(); delta.len()];
    let mut bytes = 0;
    for (i, counts) in delta.iter().enumerate() {
        if counts.is_zero() || out.len() >= MAX_PLUGINS {
            continue;
        }
        let name = plugins
            .get(i)
            .map_or(UNKNOWN_PLUGIN_BUCKET, |p| p.id.as_str());
        // Catalog ids follow the same syntax; one that did not would be refused by the
        // federation, so it stays pending rather than spoil the whole report.
        if !is_plugin_name(name) {
            continue;
        }
        // `"name":[N,N],` with two 20-digit counts at most.
        let member = name.len() + 47;
        if bytes + member > MAX_PLUGIN_BYTES {
            break;
        }
        bytes += member;
        out.insert(name.to_owned(), *counts);
        used[i] = *counts;
    }
    (out, used)
}

/// The usage report format this library sends: each plugin's counts as the pair
/// `[allowed, refused]` (format 1 wrote `{"allowed":N,"refused":N}`; the federation reads
/// both).
pub const REPORT_FORMAT: u32 = 2;

/// The usage report a federated gateway sends with a token request (the `usage` member of
/// the request body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    /// Format version, [`REPORT_FORMAT`].
    pub v: u32,
    /// Start of the period (the last acknowledged report, or the gateway's start).
    pub since: String,
    /// End of the period (now).
    pub until: String,
    /// The gateway's version.
    pub version: String,
    /// Per plugin: checks allowed and refused in the period (plugins with none left out),
    /// sent as `"plugin":[allowed,refused]`.
    #[serde(serialize_with = "as_pairs")]
    pub plugins: BTreeMap<String, PluginCounts>,
}

/// Writes the plugins of a format 2 report: `{"name":[allowed,refused],…}` in name order.
fn as_pairs<S: serde::Serializer>(
    plugins: &BTreeMap<String, PluginCounts>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(
        plugins
            .iter()
            .map(|(name, counts)| (name, [counts.allowed, counts.refused])),
    )
}

/// The report of a federation source: what its handle counted since the last acknowledged
/// report.
#[derive(Debug, Default)]
pub(crate) struct Reporting {
    taken: Taken,
    since: Option<UnixTime>,
    /// When a report was last acknowledged.
    pub(crate) last_acknowledged: Option<UnixTime>,
}

/// A report on its way, with what it holds by index (to acknowledge it).
pub(crate) struct Outgoing {
    pub(crate) report: UsageReport,
    used: Vec<PluginCounts>,
    until: UnixTime,
}

impl Reporting {
    /// The report of what `totals` holds beyond the last acknowledged report, at `now`.
    pub(crate) fn prepare(
        &mut self,
        catalog: &Catalog,
        totals: &[PluginCounts],
        now: UnixTime,
    ) -> Outgoing {
        let since = *self.since.get_or_insert(now);
        let (plugins, used) = named(catalog, &self.taken.pending(totals));
        Outgoing {
            report: UsageReport {
                v: REPORT_FORMAT,
                since: to_rfc3339(since.min(now)),
                until: to_rfc3339(now),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                plugins,
            },
            used,
            until: now,
        }
    }

    /// The federation answered 200: what the report held is delivered.
    pub(crate) fn acknowledge(&mut self, sent: &Outgoing) {
        self.taken.take(&sent.used);
        self.since = Some(sent.until);
        self.last_acknowledged = Some(sent.until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_by_index_and_unknowns_in_one_bucket() {
        let catalog = Catalog::builtin();
        let n = catalog.plugins().len();
        let counters = UsageCounters::new(n);
        let cedar = PluginIndex::resolve(catalog, "policy.cedar");
        counters.record(cedar, true);
        counters.record(cedar, true);
        counters.record(cedar, false);
        counters.record(None, false);
        counters.record(None, false);
        let totals = counters.totals();
        assert_eq!(totals.len(), n + 1);
        let (names, _) = named(catalog, &totals);
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            vec![
                (
                    "_unknown".to_owned(),
                    PluginCounts {
                        allowed: 0,
                        refused: 2
                    }
                ),
                (
                    "policy.cedar".to_owned(),
                    PluginCounts {
                        allowed: 2,
                        refused: 1
                    }
                ),
            ]
        );
    }

    #[test]
    fn an_acknowledged_report_is_subtracted_and_a_failed_one_is_sent_again() {
        let catalog = Catalog::builtin();
        let counters = UsageCounters::new(catalog.plugins().len());
        let cedar = PluginIndex::resolve(catalog, "policy.cedar");
        let mut reporting = Reporting::default();
        counters.record(cedar, true);
        let failed = reporting.prepare(catalog, &counters.totals(), 100);
        assert_eq!(failed.report.plugins["policy.cedar"].allowed, 1);
        // Not acknowledged: the next report holds it again, plus what came meanwhile.
        counters.record(cedar, true);
        let sent = reporting.prepare(catalog, &counters.totals(), 200);
        assert_eq!(sent.report.plugins["policy.cedar"].allowed, 2);
        assert_eq!(sent.report.since, to_rfc3339(100));
        // A check between preparing and the answer stays for the next report.
        counters.record(cedar, false);
        reporting.acknowledge(&sent);
        let next = reporting.prepare(catalog, &counters.totals(), 300);
        assert_eq!(
            next.report.plugins["policy.cedar"],
            PluginCounts {
                allowed: 0,
                refused: 1
            }
        );
        assert_eq!(next.report.since, to_rfc3339(200));
        assert_eq!(reporting.last_acknowledged, Some(200));
    }
}
