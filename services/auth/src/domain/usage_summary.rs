//! The usage an org's stored rows add up to, per day or month and per group: the pure
//! arithmetic behind `GET /v1/orgs/{org}/usage` and `GET /v1/admin/usage`.
//!
//! - active gateways: distinct gateways given a token in the period;
//! - tokens: tokens issued in the period;
//! - peak gateways: per day, the most gateways holding an unexpired token at the end of
//!   any UTC hour ([`peak_gateways`]); per month, the highest daily peak (unknown for a
//!   month rolled up after the retention);
//! - plugins: the checks gateways reported, per plugin;
//! - days imported from receipts count as their deployment's gateways.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::usage::{Day, PluginCounts, day_text, month_text, parse_day, peak_gateways};

/// Longest range one request may span, in days.
pub(crate) const MAX_RANGE_DAYS: i64 = 731;

/// The period rows are summed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum By {
    /// UTC days.
    Day,
    /// UTC calendar months.
    Month,
}

/// What rows are broken down by (none: one row per period for the org).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// Workspace.
    Workspace,
    /// Workspace and environment.
    Environment,
    /// Gateway (with its workspace and environment).
    Gateway,
    /// Plugin.
    Plugin,
}

impl By {
    /// Parses `day` or `month`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "day" => Some(Self::Day),
            "month" => Some(Self::Month),
            _ => None,
        }
    }
}

impl Group {
    /// Parses `workspace`, `environment`, `gateway` or `plugin`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "workspace" => Some(Self::Workspace),
            "environment" => Some(Self::Environment),
            "gateway" => Some(Self::Gateway),
            "plugin" => Some(Self::Plugin),
            _ => None,
        }
    }
}

/// A stored gateway-day (or, `day` being `YYYY-MM`, a rolled-up gateway-month).
#[derive(Debug, Clone)]
pub(crate) struct GatewayDayRecord {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub(crate) day: String,
    /// Gateway id.
    pub(crate) gateway_id: String,
    /// Its name, when it still exists.
    pub(crate) gateway_name: Option<String>,
    /// Workspace slug.
    pub(crate) workspace: String,
    /// Environment slug.
    pub(crate) environment: String,
    /// Tokens.
    pub(crate) tokens: u64,
    /// Bit h: a token in UTC hour h.
    pub(crate) hours: u32,
    /// A version it reported.
    pub(crate) version: Option<String>,
}

/// A stored plugin-day.
#[derive(Debug, Clone)]
pub(crate) struct PluginDayRecord {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub(crate) day: String,
    /// Gateway id.
    pub(crate) gateway_id: String,
    /// Workspace slug.
    pub(crate) workspace: String,
    /// Environment slug.
    pub(crate) environment: String,
    /// Plugin.
    pub(crate) plugin: String,
    /// Checks.
    pub(crate) counts: PluginCounts,
}

/// A day imported from an air-gapped deployment's receipts.
#[derive(Debug, Clone)]
pub(crate) struct ImportedDayRecord {
    /// The deployment.
    pub(crate) deployment_id: String,
    /// `YYYY-MM-DD`.
    pub(crate) day: String,
    /// Its active gateways.
    pub(crate) gateways_active: u64,
    /// Its tokens (or checks windows; what the ledger counted).
    pub(crate) tokens: u64,
    /// Its peak gateways.
    pub(crate) peak_gateways: u64,
    /// Its plugin checks.
    pub(crate) plugins: BTreeMap<String, PluginCounts>,
    /// Its version.
    pub(crate) version: Option<String>,
}

/// Everything stored about one org in a range.
#[derive(Debug, Clone, Default)]
pub(crate) struct OrgUsageRecords {
    /// Gateway-days (including the day before the range, for the first day's peak).
    pub(crate) gateways: Vec<GatewayDayRecord>,
    /// Plugin-days.
    pub(crate) plugins: Vec<PluginDayRecord>,
    /// Imported days.
    pub(crate) imported: Vec<ImportedDayRecord>,
    /// `(day, limit)` of the days recorded over a limit.
    pub(crate) over_limit: Vec<(String, String)>,
}

/// One row of the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct UsageRow {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub(crate) period: String,
    /// The group's workspace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) workspace: Option<String>,
    /// The group's environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) environment: Option<String>,
    /// The group's gateway id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) gateway: Option<String>,
    /// The gateway's name, when it still exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) gateway_name: Option<String>,
    /// The imported deployment (a group of its own in workspace/environment/gateway rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) deployment: Option<String>,
    /// The group's plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) plugin: Option<String>,
    /// Distinct gateways given a token (plugin rows: gateways that reported the plugin).
    pub(crate) gateways_active: u64,
    /// Tokens issued (0 in plugin rows).
    pub(crate) tokens: u64,
    /// Peak concurrent gateways; `null` when not known (a rolled-up month, plugin rows).
    pub(crate) peak_gateways: Option<u64>,
    /// Checks per plugin (plugin rows: just that plugin).
    pub(crate) plugins: BTreeMap<String, PluginCounts>,
    /// Versions reported.
    pub(crate) versions: BTreeSet<String>,
    /// Limits exceeded on a day of the period (org rows only).
    pub(crate) over_limit: BTreeSet<String>,
    /// Days of the period over a limit (org rows only).
    pub(crate) days_over_limit: u64,
}

type Key = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

#[derive(Default)]
struct Acc {
    gateways: BTreeMap<String, u32>,
    name: Option<String>,
    tokens: u64,
    plugins: BTreeMap<String, PluginCounts>,
    versions: BTreeSet<String>,
    peak: Option<u64>,
    peak_unknown: bool,
    imported_active: u64,
}

fn key_of(group: Option<Group>, workspace: &str, environment: &str, gateway: &str) -> Key {
    match group {
        None | Some(Group::Plugin) => (None, None, None, None),
        Some(Group::Workspace) => (Some(workspace.into()), None, None, None),
        Some(Group::Environment) => (Some(workspace.into()), Some(environment.into()), None, None),
        Some(Group::Gateway) => (
            Some(workspace.into()),
            Some(environment.into()),
            Some(gateway.into()),
            None,
        ),
    }
}

/// The rows of `records` from `from` to `to` (inclusive), per `by` and `group`.
pub(crate) fn summarise(
    records: &OrgUsageRecords,
    from: Day,
    to: Day,
    by: By,
    group: Option<Group>,
) -> Vec<UsageRow> {
    if group == Some(Group::Plugin) {
        return plugin_rows(records, from, to, by);
    }
    let in_range = |day: &str| parse_day(day).is_some_and(|d| (from..=to).contains(&d));
    let (first_month, last_month) = (month_text(from), month_text(to));
    let rolled_in_range =
        |day: &str| day.len() == 7 && (first_month.as_str()..=last_month.as_str()).contains(&day);
    // Per (day, key): the gateways and their hours, for the daily figures and peaks.
    let mut days: BTreeMap<(String, Key), Acc> = BTreeMap::new();
    for row in &records.gateways {
        if row.day.len() != 10 {
            continue;
        }
        let key = key_of(group, &row.workspace, &row.environment, &row.gateway_id);
        let acc = days.entry((row.day.clone(), key)).or_default();
        *acc.gateways.entry(row.gateway_id.clone()).or_default() |= row.hours;
        acc.tokens += row.tokens;
        if group == Some(Group::Gateway) && row.gateway_name.is_some() {
            acc.name = row.gateway_name.clone();
        }
        acc.versions.extend(row.version.clone());
    }
    for row in &records.plugins {
        if row.day.len() != 10 {
            continue;
        }
        let key = key_of(group, &row.workspace, &row.environment, &row.gateway_id);
        if let Some(acc) = days.get_mut(&(row.day.clone(), key)) {
            acc.plugins
                .entry(row.plugin.clone())
                .or_default()
                .add(row.counts);
        }
    }
    let peaks: BTreeMap<(String, Key), u64> = days
        .iter()
        .filter(|((day, _), _)| in_range(day))
        .map(|((day, key), acc)| {
            let yesterday = parse_day(day).map(|d| day_text(d - 1)).unwrap_or_default();
            let before = days.get(&(yesterday, key.clone()));
            let today = acc.gateways.iter().map(|(g, h)| (g.as_str(), *h));
            let prior = before
                .into_iter()
                .flat_map(|b| b.gateways.iter().map(|(g, h)| (g.as_str(), *h)));
            ((day.clone(), key.clone()), peak_gateways(today, prior))
        })
        .collect();
    let period = |day: &str| match by {
        By::Day => day.to_owned(),
        By::Month => day[..7].to_owned(),
    };
    let mut out: BTreeMap<(String, Key), Acc> = BTreeMap::new();
    for ((day, key), acc) in days.into_iter().filter(|((d, _), _)| in_range(d)) {
        let peak = peaks.get(&(day.clone(), key.clone())).copied();
        let into = out.entry((period(&day), key)).or_default();
        for (gateway, hours) in acc.gateways {
            *into.gateways.entry(gateway).or_default() |= hours;
        }
        into.tokens += acc.tokens;
        into.name = into.name.take().or(acc.name);
        into.versions.extend(acc.versions);
        for (plugin, counts) in acc.plugins {
            into.plugins.entry(plugin).or_default().add(counts);
        }
        into.peak = into.peak.max(peak);
    }
    if by == By::Month {
        add_rolled_months(records, group, &rolled_in_range, &mut out);
    }
    add_imported(records, group, &in_range, &period, &mut out);
    let mut rows: Vec<UsageRow> = out
        .into_iter()
        .map(
            |((period, (workspace, environment, gateway, deployment)), acc)| UsageRow {
                period,
                workspace,
                environment,
                gateway,
                gateway_name: acc.name,
                deployment,
                plugin: None,
                gateways_active: acc.gateways.len() as u64 + acc.imported_active,
                tokens: acc.tokens,
                peak_gateways: if acc.peak_unknown {
                    None
                } else {
                    Some(acc.peak.unwrap_or(0))
                },
                plugins: acc.plugins,
                versions: acc.versions,
                over_limit: BTreeSet::new(),
                days_over_limit: 0,
            },
        )
        .collect();
    if group.is_none() {
        mark_over_limit(records, &in_range, &period, &mut rows);
    }
    rows
}

fn add_rolled_months(
    records: &OrgUsageRecords,
    group: Option<Group>,
    rolled_in_range: &dyn Fn(&str) -> bool,
    out: &mut BTreeMap<(String, Key), Acc>,
) {
    for row in records.gateways.iter().filter(|r| rolled_in_range(&r.day)) {
        let key = key_of(group, &row.workspace, &row.environment, &row.gateway_id);
        let into = out.entry((row.day.clone(), key)).or_default();
        into.gateways.entry(row.gateway_id.clone()).or_default();
        into.tokens += row.tokens;
        into.versions.extend(row.version.clone());
        into.peak_unknown = true;
    }
    for row in records.plugins.iter().filter(|r| rolled_in_range(&r.day)) {
        let key = key_of(group, &row.workspace, &row.environment, &row.gateway_id);
        if let Some(into) = out.get_mut(&(row.day.clone(), key)) {
            into.plugins
                .entry(row.plugin.clone())
                .or_default()
                .add(row.counts);
        }
    }
}

fn add_imported(
    records: &OrgUsageRecords,
    group: Option<Group>,
    in_range: &dyn Fn(&str) -> bool,
    period: &dyn Fn(&str) -> String,
    out: &mut BTreeMap<(String, Key), Acc>,
) {
    // Per (period, key, deployment): the most gateways it had active on one day, so a
    // month counts a deployment's gateways once, not once per day.
    let mut active: BTreeMap<(String, Key, String), u64> = BTreeMap::new();
    let mut peaks: BTreeMap<(String, Key, String), u64> = BTreeMap::new();
    for day in records.imported.iter().filter(|d| in_range(&d.day)) {
        let key: Key = match group {
            None => (None, None, None, None),
            Some(_) => (None, None, None, Some(day.deployment_id.clone())),
        };
        let p = period(&day.day);
        let into = out.entry((p.clone(), key.clone())).or_default();
        into.tokens += day.tokens;
        into.versions.extend(day.version.clone());
        for (plugin, counts) in &day.plugins {
            into.plugins.entry(plugin.clone()).or_default().add(*counts);
        }
        let slot = (p, key, day.deployment_id.clone());
        let a = active.entry(slot.clone()).or_default();
        *a = (*a).max(day.gateways_active);
        let k = peaks.entry(slot).or_default();
        *k = (*k).max(day.peak_gateways);
    }
    for ((p, key, _), count) in active {
        if let Some(into) = out.get_mut(&(p, key)) {
            into.imported_active += count;
        }
    }
    // A deployment's gateways are other gateways than the federated ones: its peak adds.
    for ((p, key, _), peak) in peaks {
        if let Some(into) = out.get_mut(&(p, key)) {
            into.peak = Some(into.peak.unwrap_or(0) + peak);
        }
    }
}

fn mark_over_limit(
    records: &OrgUsageRecords,
    in_range: &dyn Fn(&str) -> bool,
    period: &dyn Fn(&str) -> String,
    rows: &mut Vec<UsageRow>,
) {
    let mut per_period: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for (day, limit) in records.over_limit.iter().filter(|(d, _)| in_range(d)) {
        let entry = per_period.entry(period(day)).or_default();
        entry.0.insert(limit.clone());
        entry.1.insert(day.clone());
    }
    for (p, (limits, days)) in per_period {
        match rows.iter_mut().find(|r| r.period == p) {
            Some(row) => {
                row.over_limit = limits;
                row.days_over_limit = days.len() as u64;
            }
            None => rows.push(UsageRow {
                period: p,
                over_limit: limits,
                days_over_limit: days.len() as u64,
                peak_gateways: Some(0),
                ..UsageRow::default()
            }),
        }
    }
    rows.sort_by(|a, b| a.period.cmp(&b.period));
}

fn plugin_rows(records: &OrgUsageRecords, from: Day, to: Day, by: By) -> Vec<UsageRow> {
    let (first_month, last_month) = (month_text(from), month_text(to));
    let wanted = |day: &str| match day.len() {
        10 => parse_day(day).is_some_and(|d| (from..=to).contains(&d)),
        7 => by == By::Month && (first_month.as_str()..=last_month.as_str()).contains(&day),
        _ => false,
    };
    let period = |day: &str| match by {
        By::Day => day.to_owned(),
        By::Month => day[..7].to_owned(),
    };
    let mut out: BTreeMap<(String, String), (BTreeSet<String>, PluginCounts, u64)> =
        BTreeMap::new();
    for row in records.plugins.iter().filter(|r| wanted(&r.day)) {
        let entry = out
            .entry((period(&row.day), row.plugin.clone()))
            .or_default();
        entry.0.insert(row.gateway_id.clone());
        entry.1.add(row.counts);
    }
    for day in records.imported.iter().filter(|d| wanted(&d.day)) {
        for (plugin, counts) in &day.plugins {
            let entry = out.entry((period(&day.day), plugin.clone())).or_default();
            entry.1.add(*counts);
            entry.2 = entry.2.max(day.gateways_active);
        }
    }
    out.into_iter()
        .map(
            |((period, plugin), (gateways, counts, imported))| UsageRow {
                period,
                plugins: BTreeMap::from([(plugin.clone(), counts)]),
                plugin: Some(plugin),
                gateways_active: gateways.len() as u64 + imported,
                peak_gateways: None,
                ..UsageRow::default()
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(day: &str, id: &str, env: &str, tokens: u64, hours: u32) -> GatewayDayRecord {
        GatewayDayRecord {
            day: day.into(),
            gateway_id: id.into(),
            gateway_name: Some(format!("name-{id}")),
            workspace: "main".into(),
            environment: env.into(),
            tokens,
            hours,
            version: Some("0.1.0".into()),
        }
    }

    fn plugin(day: &str, id: &str, env: &str, name: &str, allowed: u64) -> PluginDayRecord {
        PluginDayRecord {
            day: day.into(),
            gateway_id: id.into(),
            workspace: "main".into(),
            environment: env.into(),
            plugin: name.into(),
            counts: PluginCounts {
                allowed,
                refused: 1,
            },
        }
    }

    fn records() -> OrgUsageRecords {
        OrgUsageRecords {
            gateways: vec![
                gw("2026-11-02", "a", "prod", 3, 1 << 22),
                gw("2026-11-03", "a", "prod", 2, 1 << 6),
                gw("2026-11-03", "b", "prod", 1, 1 << 23),
                gw("2026-11-03", "c", "dev", 4, 1 << 1),
                gw("2026-11-04", "c", "dev", 1, 1 << 1),
                gw("2026-10", "z", "prod", 40, 0),
            ],
            plugins: vec![
                plugin("2026-11-03", "a", "prod", "slack", 5),
                plugin("2026-11-03", "c", "dev", "slack", 7),
                plugin("2026-11-04", "c", "dev", "jira", 2),
                plugin("2026-10", "z", "prod", "slack", 100),
            ],
            imported: vec![],
            over_limit: vec![("2026-11-03".into(), "max_gateways".into())],
        }
    }

    fn day(text: &str) -> Day {
        parse_day(text).expect("day")
    }

    #[test]
    fn org_rows_per_day_count_gateways_tokens_peaks_and_limits() {
        let rows = summarise(
            &records(),
            day("2026-11-03"),
            day("2026-11-04"),
            By::Day,
            None,
        );
        assert_eq!(rows.len(), 2);
        let first = &rows[0];
        assert_eq!(
            (first.period.as_str(), first.gateways_active, first.tokens),
            ("2026-11-03", 3, 7)
        );
        // End of 22h: a (today at 6h), c (1h); end of 23h: a, b, c → 3.
        assert_eq!(first.peak_gateways, Some(3));
        assert_eq!(first.plugins["slack"].allowed, 12);
        assert_eq!(
            first.over_limit,
            BTreeSet::from(["max_gateways".to_owned()])
        );
        assert_eq!(first.days_over_limit, 1);
        let second = &rows[1];
        assert_eq!((second.gateways_active, second.tokens), (1, 1));
        // a and b still hold yesterday's tokens early in the day.
        assert_eq!(second.peak_gateways, Some(3));
        assert_eq!(second.days_over_limit, 0);
    }

    #[test]
    fn environment_and_plugin_groups_and_months() {
        let rows = summarise(
            &records(),
            day("2026-11-03"),
            day("2026-11-03"),
            By::Day,
            Some(Group::Environment),
        );
        let summary: Vec<(Option<&str>, u64, u64)> = rows
            .iter()
            .map(|r| (r.environment.as_deref(), r.gateways_active, r.tokens))
            .collect();
        assert_eq!(summary, vec![(Some("dev"), 1, 4), (Some("prod"), 2, 3)]);
        let plugins = summarise(
            &records(),
            day("2026-10-01"),
            day("2026-11-30"),
            By::Month,
            Some(Group::Plugin),
        );
        let summary: Vec<(&str, Option<&str>, u64, u64)> = plugins
            .iter()
            .map(|r| {
                let p = r.plugin.as_deref().unwrap_or_default();
                (
                    r.period.as_str(),
                    r.plugin.as_deref(),
                    r.gateways_active,
                    r.plugins[p].allowed,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("2026-10", Some("slack"), 1, 100),
                ("2026-11", Some("jira"), 1, 2),
                ("2026-11", Some("slack"), 2, 12),
            ]
        );
        let months = summarise(
            &records(),
            day("2026-10-01"),
            day("2026-11-30"),
            By::Month,
            None,
        );
        assert_eq!(months.len(), 2);
        assert_eq!(
            (
                months[0].period.as_str(),
                months[0].tokens,
                months[0].peak_gateways
            ),
            ("2026-10", 40, None)
        );
        assert_eq!(
            (
                months[1].gateways_active,
                months[1].tokens,
                months[1].peak_gateways
            ),
            (3, 11, Some(3))
        );
    }

    #[test]
    fn imported_days_count_as_their_deployments_gateways() {
        let mut records = records();
        records.imported.push(ImportedDayRecord {
            deployment_id: "dep-1".into(),
            day: "2026-11-03".into(),
            gateways_active: 4,
            tokens: 9,
            peak_gateways: 4,
            plugins: BTreeMap::from([(
                "slack".to_owned(),
                PluginCounts {
                    allowed: 1,
                    refused: 0,
                },
            )]),
            version: Some("0.2.0".into()),
        });
        let rows = summarise(
            &records,
            day("2026-11-03"),
            day("2026-11-03"),
            By::Day,
            None,
        );
        assert_eq!(
            (
                rows[0].gateways_active,
                rows[0].tokens,
                rows[0].peak_gateways
            ),
            (7, 16, Some(7))
        );
        let by_gateway = summarise(
            &records,
            day("2026-11-03"),
            day("2026-11-03"),
            By::Day,
            Some(Group::Gateway),
        );
        let deployment = by_gateway
            .iter()
            .find(|r| r.deployment.is_some())
            .expect("the deployment is a group");
        assert_eq!((deployment.gateways_active, deployment.tokens), (4, 9));
    }
}
