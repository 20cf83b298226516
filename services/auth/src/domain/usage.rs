//! Usage reports and UTC days: the `usage` member of a token request, parsed leniently (a
//! bad report is ignored and counted, never a reason to refuse a token), and the day
//! arithmetic the aggregation, the API and the retention share.
//!
//! A report (format version 1) is
//! `{"v":1,"since":RFC3339,"until":RFC3339,"version":"0.1.0","plugins":{"slack":{"allowed":120,"refused":2}}}`:
//! the checks a gateway made since its last acknowledged report. Unknown members are
//! ignored (forward compatible); a report that breaks a limit is ignored entirely.

use std::collections::BTreeMap;

use mcpg_license_core::clock::{parse_rfc3339, to_rfc3339};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most plugins one report may name (more: `oversized`).
pub(crate) const MAX_PLUGINS: usize = 512;
/// Largest report, as JSON text (more: `oversized`).
pub(crate) const MAX_REPORT_BYTES: usize = 64 * 1024;
/// Longest plugin name.
pub(crate) const MAX_PLUGIN_NAME: usize = 64;
/// Longest gateway version.
pub(crate) const MAX_VERSION: usize = 64;
/// The report format this service reads.
pub(crate) const REPORT_VERSION: u64 = 1;

/// One plugin's checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PluginCounts {
    /// Checks that allowed the plugin.
    #[serde(default)]
    pub(crate) allowed: u64,
    /// Checks that refused it.
    #[serde(default)]
    pub(crate) refused: u64,
}

impl PluginCounts {
    /// Adds `other` (saturating: counts never wrap).
    pub(crate) fn add(&mut self, other: PluginCounts) {
        self.allowed = self.allowed.saturating_add(other.allowed);
        self.refused = self.refused.saturating_add(other.refused);
    }
}

/// A valid report: what the aggregation keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageReport {
    /// The gateway's version, if it said.
    pub(crate) version: Option<String>,
    /// Checks per plugin, in name order.
    pub(crate) plugins: Vec<(String, PluginCounts)>,
}

/// Why a report was ignored (the metric's `outcome` label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReportRejection {
    /// Not a report of this format, or a member breaks its rule (the reason, for logs).
    Malformed(String),
    /// More than [`MAX_PLUGINS`] plugins, or more than [`MAX_REPORT_BYTES`] of JSON.
    Oversized,
}

impl ReportRejection {
    /// The metric label.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Oversized => "oversized",
        }
    }
}

fn malformed(reason: impl Into<String>) -> ReportRejection {
    ReportRejection::Malformed(reason.into())
}

impl UsageReport {
    /// Reads a report from the token request's `usage` member.
    pub(crate) fn parse(value: &Value) -> Result<Self, ReportRejection> {
        if json_size_exceeds(value, MAX_REPORT_BYTES) {
            return Err(ReportRejection::Oversized);
        }
        let object = value
            .as_object()
            .ok_or_else(|| malformed("the report is not an object"))?;
        match object.get("v").and_then(Value::as_u64) {
            Some(REPORT_VERSION) => {}
            _ => return Err(malformed("v must be 1")),
        }
        let time = |name: &str| {
            object
                .get(name)
                .and_then(Value::as_str)
                .and_then(parse_rfc3339)
                .ok_or_else(|| malformed(format!("{name} must be an RFC 3339 time")))
        };
        if time("since")? > time("until")? {
            return Err(malformed("since is after until"));
        }
        let version = match object.get("version") {
            None | Some(Value::Null) => None,
            Some(Value::String(text))
                if !text.is_empty()
                    && text.chars().count() <= MAX_VERSION
                    && !text.chars().any(char::is_control) =>
            {
                Some(text.clone())
            }
            Some(_) => return Err(malformed("version must be 1-64 printable characters")),
        };
        let plugins = match object.get("plugins") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => {
                if map.len() > MAX_PLUGINS {
                    return Err(ReportRejection::Oversized);
                }
                let mut plugins = Vec::with_capacity(map.len());
                for (name, counts) in map {
                    if !plugin_name_ok(name) {
                        return Err(malformed(
                            "a plugin name is not 1-64 characters of [a-z0-9._-]",
                        ));
                    }
                    plugins.push((name.clone(), counts_of(counts)?));
                }
                plugins.sort_by(|a, b| a.0.cmp(&b.0));
                plugins
            }
            Some(_) => return Err(malformed("plugins must be an object")),
        };
        Ok(Self { version, plugins })
    }
}

fn counts_of(value: &Value) -> Result<PluginCounts, ReportRejection> {
    let object = value
        .as_object()
        .ok_or_else(|| malformed("a plugin's counts must be an object"))?;
    let count = |name: &str| match object.get(name) {
        None => Ok(0),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| malformed(format!("{name} must be a non-negative integer"))),
    };
    Ok(PluginCounts {
        allowed: count("allowed")?,
        refused: count("refused")?,
    })
}

/// Whether `name` is 1–64 characters of `[a-z0-9._-]`.
pub(crate) fn plugin_name_ok(name: &str) -> bool {
    (1..=MAX_PLUGIN_NAME).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Whether `value` written as compact JSON (strings counted unescaped) would be longer
/// than `limit` bytes; stops walking as soon as it is.
fn json_size_exceeds(value: &Value, limit: usize) -> bool {
    fn within(value: &Value, left: &mut usize) -> bool {
        let cost = match value {
            Value::Null | Value::Bool(_) => 5,
            Value::Number(_) => 20,
            Value::String(text) => text.len() + 2,
            Value::Array(items) => items.len() + 2,
            Value::Object(map) => map.keys().map(|k| k.len() + 4).sum::<usize>() + 2,
        };
        let Some(rest) = left.checked_sub(cost) else {
            return false;
        };
        *left = rest;
        match value {
            Value::Array(items) => items.iter().all(|v| within(v, left)),
            Value::Object(map) => map.values().all(|v| within(v, left)),
            _ => true,
        }
    }
    let mut left = limit;
    !within(value, &mut left)
}

/// A UTC day: days since 1970-01-01.
pub(crate) type Day = i64;

/// The UTC day of a Unix time.
pub(crate) fn day_of(at: i64) -> Day {
    at.div_euclid(86_400)
}

/// The UTC hour (0–23) of a Unix time.
pub(crate) fn hour_of(at: i64) -> u32 {
    u32::try_from(at.rem_euclid(86_400) / 3_600).unwrap_or(0)
}

/// `YYYY-MM-DD`.
pub(crate) fn day_text(day: Day) -> String {
    let mut text = to_rfc3339(day.saturating_mul(86_400));
    text.truncate(10);
    text
}

/// Parses `YYYY-MM-DD` (a real date).
pub(crate) fn parse_day(text: &str) -> Option<Day> {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    parse_rfc3339(&format!("{text}T00:00:00Z")).map(day_of)
}

/// The `YYYY-MM` of a day.
pub(crate) fn month_text(day: Day) -> String {
    let mut text = day_text(day);
    text.truncate(7);
    text
}

/// Peak concurrent gateways of a day, from the hours (bit h = UTC hour h) in which each
/// gateway got a token that day and the day before: at the end of hour h, a gateway holds
/// a token when it got one today in hour ≤ h, or yesterday in an hour > h (a token lives
/// 24 h). The peak is the largest such count over the 24 hours.
pub(crate) fn peak_gateways<'a>(
    today: impl IntoIterator<Item = (&'a str, u32)>,
    yesterday: impl IntoIterator<Item = (&'a str, u32)>,
) -> u64 {
    let mut masks: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for (gateway, hours) in today {
        masks.entry(gateway).or_default().0 |= hours;
    }
    for (gateway, hours) in yesterday {
        masks.entry(gateway).or_default().1 |= hours;
    }
    (0..24)
        .map(|h: u32| {
            let through = (2_u32 << h) - 1;
            masks
                .values()
                .filter(|(t, y)| t & through != 0 || (y >> (h + 1)) != 0)
                .count() as u64
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn report(plugins: Value) -> Value {
        json!({"v": 1, "since": "2026-11-03T08:00:00Z", "until": "2026-11-03T16:00:00Z",
               "version": "0.1.0", "plugins": plugins, "future": {"x": 1}})
    }

    #[test]
    fn a_report_is_read_with_unknown_members_ignored() {
        let parsed = UsageReport::parse(&report(
            json!({"slack": {"allowed": 120, "refused": 2}, "a.b-c_d": {"refused": 1}}),
        ))
        .expect("valid");
        assert_eq!(parsed.version.as_deref(), Some("0.1.0"));
        assert_eq!(
            parsed.plugins,
            vec![
                (
                    "a.b-c_d".to_owned(),
                    PluginCounts {
                        allowed: 0,
                        refused: 1
                    }
                ),
                (
                    "slack".to_owned(),
                    PluginCounts {
                        allowed: 120,
                        refused: 2
                    }
                ),
            ]
        );
    }

    #[test]
    fn reports_breaking_a_rule_are_malformed_or_oversized() {
        let malformed = [
            json!("text"),
            json!({"v": 2, "since": "2026-11-03T08:00:00Z", "until": "2026-11-03T16:00:00Z"}),
            json!({"v": 1, "since": "2026-11-03T18:00:00Z", "until": "2026-11-03T16:00:00Z"}),
            json!({"v": 1, "since": "yesterday", "until": "2026-11-03T16:00:00Z"}),
            report(json!({"Slack": {"allowed": 1}})),
            report(json!({"": {"allowed": 1}})),
            report(json!({"slack": {"allowed": -1}})),
            report(json!({"slack": {"allowed": 1.5}})),
            report(json!({"slack": 3})),
            report(json!([])),
            json!({"v": 1, "since": "2026-11-03T08:00:00Z", "until": "2026-11-03T16:00:00Z",
                   "version": "x".repeat(65)}),
        ];
        for value in malformed {
            assert_eq!(
                UsageReport::parse(&value).map_err(|r| r.outcome()),
                Err("malformed"),
                "{value}"
            );
        }
        let many: serde_json::Map<String, Value> = (0..513)
            .map(|i| (format!("p{i}"), json!({"allowed": 1})))
            .collect();
        assert_eq!(
            UsageReport::parse(&report(Value::Object(many))),
            Err(ReportRejection::Oversized)
        );
        let big = report(json!({"slack": {"allowed": 1}, "x": {"pad": "y".repeat(70_000)}}));
        assert_eq!(UsageReport::parse(&big), Err(ReportRejection::Oversized));
        let at_limit: serde_json::Map<String, Value> = (0..512)
            .map(|i| (format!("p{i}"), json!({"allowed": 1})))
            .collect();
        assert_eq!(
            UsageReport::parse(&report(Value::Object(at_limit)))
                .expect("512 is allowed")
                .plugins
                .len(),
            512
        );
    }

    #[test]
    fn days_and_months_are_utc_calendar_dates() {
        let day = parse_day("2026-11-03").expect("date");
        assert_eq!(day_text(day), "2026-11-03");
        assert_eq!(day_of(day * 86_400 + 86_399), day);
        assert_eq!(hour_of(day * 86_400 + 3 * 3_600 + 59), 3);
        assert_eq!(parse_day("2026-02-30"), None);
        assert_eq!(parse_day("2026-1-03"), None);
        assert_eq!(month_text(day), "2026-11");
    }

    #[test]
    fn the_peak_counts_gateways_holding_a_token_at_the_end_of_an_hour() {
        // a: yesterday at 20h (holds until 20h today); b: today at 21h only; c: today at 2h.
        let today = [("b", 1 << 21), ("c", 1 << 2)];
        let yesterday = [("a", 1 << 20)];
        // End of 20h: a (no, it expires within hour 20), c → 1 ... end of 19h: a, c → 2;
        // end of 21h: b, c → 2.
        assert_eq!(peak_gateways(today, yesterday), 2);
        let all_day = [("a", 1 << 0), ("b", 1 << 23)];
        assert_eq!(peak_gateways(all_day, [("b", 1 << 23)]), 2);
        assert_eq!(peak_gateways([], []), 0);
    }
}
