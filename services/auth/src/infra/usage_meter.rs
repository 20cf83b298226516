//! Usage counted on the token path, in memory, and flushed in batches.
//!
//! Every issued token is counted for its gateway and UTC day (tokens, the hour it was
//! issued in) together with the usage report the request carried, if any. The counts
//! live in [`SHARDS`] mutex-guarded maps picked by the gateway id's hash: a token request
//! takes one short, almost never contended lock and does no I/O. A background task
//! ([`UsageMeter::flush`]) drains the maps and adds the counts to the database (see
//! `store::usage_days`): each replica adds its own, so replicas need no coordination. A
//! crash loses at most the counts of one flush interval; a failed flush keeps its counts
//! for the next one.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use metrics::Counter;

use crate::domain::usage::{Day, PluginCounts, ReportRejection, UsageReport, day_of, hour_of};
use crate::infra::directory::{GatewayId, OrgGrant, PlaceGrant};
use crate::infra::telemetry::USAGE_REPORTS;

/// Independent maps the gateways are spread over.
const SHARDS: usize = 64;

/// One gateway's counts for one day since the last flush.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DayCounts {
    /// The UTC day.
    pub(crate) day: Day,
    /// Tokens issued.
    pub(crate) tokens: u64,
    /// Bit h: a token was issued in UTC hour h.
    pub(crate) hours: u32,
    /// The version it last reported.
    pub(crate) version: Option<String>,
    /// Checks reported per plugin.
    pub(crate) plugins: PluginTally,
}

impl DayCounts {
    fn merge(&mut self, other: DayCounts) {
        self.tokens = self.tokens.saturating_add(other.tokens);
        self.hours |= other.hours;
        if other.version.is_some() {
            self.version = other.version;
        }
        self.plugins
            .add_sorted(other.plugins.0.iter().map(|(p, c)| (&**p, *c)));
    }
}

/// Checks per plugin, in name order, each name once. A gateway reports the same plugins
/// every time, in name order: adding a report is one walk of both lists, under the
/// shard's lock, with an allocation only for a plugin new that day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PluginTally(Vec<(Box<str>, PluginCounts)>);

impl PluginTally {
    /// Adds counts given in strict name order.
    fn add_sorted<'n>(&mut self, reported: impl IntoIterator<Item = (&'n str, PluginCounts)>) {
        let mut at = 0;
        for (plugin, counts) in reported {
            while at < self.0.len() && &*self.0[at].0 < plugin {
                at += 1;
            }
            match self.0.get_mut(at) {
                Some((name, into)) if &**name == plugin => into.add(counts),
                _ => self.0.insert(at, (plugin.into(), counts)),
            }
            at += 1;
        }
    }

    /// One plugin's counts.
    #[cfg(test)]
    pub(crate) fn get(&self, plugin: &str) -> Option<&PluginCounts> {
        self.0
            .binary_search_by(|(name, _)| (**name).cmp(plugin))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Every plugin's counts, in name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &PluginCounts)> {
        self.0.iter().map(|(name, counts)| (&**name, counts))
    }

    /// How many plugins.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// One gateway's pending counts.
#[derive(Debug, Clone)]
pub(crate) struct GatewayUsage {
    /// Its org (id, slug, license and entitlements when the token was issued).
    pub(crate) org: Arc<OrgGrant>,
    /// Its workspace and environment.
    pub(crate) place: Arc<PlaceGrant>,
    /// Per day (almost always one).
    pub(crate) days: Vec<DayCounts>,
}

/// The in-memory counts of this replica.
#[derive(Debug)]
pub(crate) struct UsageMeter {
    shards: Box<[Mutex<HashMap<GatewayId, GatewayUsage>>]>,
    hasher: std::collections::hash_map::RandomState,
    /// Reports accepted, malformed, oversized.
    outcomes: [Counter; 3],
}

impl Default for UsageMeter {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            outcomes: [
                metrics::counter!(USAGE_REPORTS, "outcome" => "accepted"),
                metrics::counter!(USAGE_REPORTS, "outcome" => "malformed"),
                metrics::counter!(USAGE_REPORTS, "outcome" => "oversized"),
            ],
        }
    }
}

impl UsageMeter {
    /// Counts a token issued at `now` to `gateway_id` and the report its request carried
    /// (`None`: no `usage` member; `Some(Err)`: a report that was ignored).
    pub(crate) fn record(
        &self,
        org: &Arc<OrgGrant>,
        place: &Arc<PlaceGrant>,
        gateway_id: &GatewayId,
        now: i64,
        report: Option<Result<UsageReport<'_>, ReportRejection>>,
    ) {
        let report = match report {
            Some(Ok(report)) => {
                self.outcomes[0].increment(1);
                Some(report)
            }
            Some(Err(rejection)) => {
                let index = match rejection.outcome() {
                    "malformed" => 1,
                    _ => 2,
                };
                self.outcomes[index].increment(1);
                if let ReportRejection::Malformed(reason) = &rejection {
                    tracing::debug!(gateway = %gateway_id, reason = %reason, "usage report ignored");
                }
                None
            }
            None => None,
        };
        let day = day_of(now);
        let hour = 1_u32 << hour_of(now);
        let shard = &self.shards[self.shard_of(gateway_id)];
        let Ok(mut pending) = shard.lock() else {
            return;
        };
        let entry = match pending.get_mut(gateway_id) {
            Some(entry) => entry,
            None => pending
                .entry(gateway_id.clone())
                .or_insert_with(|| GatewayUsage {
                    org: org.clone(),
                    place: place.clone(),
                    days: Vec::with_capacity(1),
                }),
        };
        let counts = match entry.days.iter_mut().position(|d| d.day == day) {
            Some(i) => &mut entry.days[i],
            None => {
                entry.days.push(DayCounts {
                    day,
                    ..DayCounts::default()
                });
                let last = entry.days.len() - 1;
                &mut entry.days[last]
            }
        };
        counts.tokens += 1;
        counts.hours |= hour;
        if let Some(report) = report {
            // A gateway reports the same version and plugins every time: allocate only
            // for what is new this day.
            if let Some(version) = report.version
                && counts.version.as_deref() != Some(&*version)
            {
                counts.version = Some(version.into_owned());
            }
            counts
                .plugins
                .add_sorted(report.plugins.iter().map(|(p, c)| (&**p, *c)));
        }
    }

    fn shard_of(&self, gateway_id: &GatewayId) -> usize {
        (self.hasher.hash_one(gateway_id) as usize) % SHARDS
    }

    /// Takes every pending count (the flush writes them, or gives them back).
    pub(crate) fn drain(&self) -> Vec<(GatewayId, GatewayUsage)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            if let Ok(mut pending) = shard.lock() {
                out.extend(pending.drain());
            }
        }
        out
    }

    /// Gives back counts a flush could not write, merged with what arrived meanwhile.
    pub(crate) fn restore(&self, batch: Vec<(GatewayId, GatewayUsage)>) {
        for (gateway_id, usage) in batch {
            let shard = &self.shards[self.shard_of(&gateway_id)];
            let Ok(mut pending) = shard.lock() else {
                continue;
            };
            match pending.get_mut(&gateway_id) {
                None => {
                    pending.insert(gateway_id, usage);
                }
                Some(into) => {
                    for day in usage.days {
                        match into.days.iter_mut().find(|d| d.day == day.day) {
                            Some(counts) => counts.merge(day),
                            None => into.days.push(day),
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::OrgStatus;

    fn place() -> Arc<PlaceGrant> {
        Arc::new(PlaceGrant {
            workspace: "main".into(),
            environment: "prod".into(),
            plugin_set: None,
        })
    }

    fn org() -> Arc<OrgGrant> {
        Arc::new(OrgGrant::new(
            "org-1".into(),
            "acme".into(),
            OrgStatus::Active,
            None,
            None,
        ))
    }

    #[test]
    fn a_tally_adds_sorted_reports_whatever_plugins_each_names() {
        let counts = |allowed| PluginCounts {
            allowed,
            refused: allowed / 2,
        };
        let mut tally = PluginTally::default();
        tally.add_sorted([("m", counts(1)), ("t", counts(2))]);
        tally.add_sorted([("a", counts(4)), ("m", counts(8)), ("p", counts(16))]);
        tally.add_sorted([("t", counts(32)), ("z", counts(64))]);
        tally.add_sorted([]);
        let mut other = PluginTally::default();
        other.add_sorted([("b", counts(128)), ("z", counts(256))]);
        let mut day = DayCounts {
            plugins: tally,
            ..DayCounts::default()
        };
        day.merge(DayCounts {
            plugins: other,
            ..DayCounts::default()
        });
        let seen: Vec<(&str, u64, u64)> = day
            .plugins
            .iter()
            .map(|(p, c)| (p, c.allowed, c.refused))
            .collect();
        assert_eq!(
            seen,
            [
                ("a", 4, 2),
                ("b", 128, 64),
                ("m", 9, 4),
                ("p", 16, 8),
                ("t", 34, 17),
                ("z", 320, 160)
            ]
        );
        assert_eq!(day.plugins.get("q"), None);
        assert_eq!(day.plugins.len(), 6);
    }

    #[test]
    fn tokens_and_reports_add_up_per_gateway_and_day_and_survive_a_failed_flush() {
        let meter = UsageMeter::default();
        let (org, place) = (org(), place());
        let (gw1, gw2) = (GatewayId::new("gw-1"), GatewayId::new("gw-2"));
        let day = 20_395 * 86_400;
        let report = |allowed| {
            Some(Ok(UsageReport {
                version: Some("0.1.0".into()),
                plugins: vec![(
                    "slack".into(),
                    PluginCounts {
                        allowed,
                        refused: 1,
                    },
                )],
            }))
        };
        meter.record(&org, &place, &gw1, day + 3_600, report(5));
        meter.record(&org, &place, &gw1, day + 5 * 3_600, report(7));
        meter.record(
            &org,
            &place,
            &gw1,
            day + 86_400,
            Some(Err(ReportRejection::Oversized)),
        );
        meter.record(&org, &place, &gw2, day, None);
        let mut batch = meter.drain();
        batch.sort_by_key(|(id, _)| id.to_string());
        assert_eq!(batch.len(), 2);
        let days = &batch[0].1.days;
        assert_eq!(days.len(), 2);
        assert_eq!(
            (days[0].day, days[0].tokens, days[0].hours),
            (20_395, 2, (1 << 1) | (1 << 5))
        );
        assert_eq!(
            days[0].plugins.get("slack"),
            Some(&PluginCounts {
                allowed: 12,
                refused: 2
            })
        );
        assert_eq!(
            (days[1].day, days[1].tokens, days[1].plugins.len()),
            (20_396, 1, 0)
        );
        assert!(meter.drain().is_empty());
        meter.record(&org, &place, &gw1, day + 3_600, report(1));
        meter.restore(batch);
        let again = meter.drain();
        let again_gw1 = &again.iter().find(|(id, _)| *id == gw1).expect("gw-1").1;
        let first = again_gw1
            .days
            .iter()
            .find(|d| d.day == 20_395)
            .expect("day");
        assert_eq!(
            (first.tokens, first.plugins.get("slack").map(|c| c.allowed)),
            (3, Some(13))
        );
    }
}
