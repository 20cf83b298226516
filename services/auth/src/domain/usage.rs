//! Usage reports and UTC days: the `usage` member of a token request, parsed leniently (a
//! bad report is ignored and counted, never a reason to refuse a token), and the day
//! arithmetic the aggregation, the API and the retention share.
//!
//! A report is
//! `{"v":2,"since":RFC3339,"until":RFC3339,"version":"0.1.0","plugins":{"slack":[120,2]}}`:
//! the checks a gateway made since its last acknowledged report, each plugin's as the pair
//! `[allowed, refused]`. Format 1, which `mcpg-entitlements` 0.1 sent before format 2, is
//! the same with each pair written `{"allowed":120,"refused":2}` (an absent count is 0);
//! it is still read. Format 2 is a third smaller and has half the JSON strings: it rides on
//! every token request, and reading it is most of what a report costs the service. Unknown
//! members are ignored (forward compatible); a report that breaks a limit is ignored
//! entirely.

use std::borrow::Cow;
use std::collections::BTreeMap;

use mcpg_license_core::clock::{parse_rfc3339, to_rfc3339};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

/// Most plugins one report may name (more: `oversized`).
pub(crate) const MAX_PLUGINS: usize = 512;
/// Largest report, as JSON text (more: `oversized`).
pub(crate) const MAX_REPORT_BYTES: usize = 64 * 1024;
/// Longest plugin name.
pub(crate) const MAX_PLUGIN_NAME: usize = 64;
/// Longest gateway version.
pub(crate) const MAX_VERSION: usize = 64;
/// The report format whose counts are objects.
const REPORT_V1: u64 = 1;
/// The report format whose counts are pairs: what `mcpg-entitlements` sends.
const REPORT_V2: u64 = 2;

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

/// A valid report: what the aggregation keeps of it. Its text borrows from the request
/// body where JSON escapes allow (they almost always do: names are `[a-z0-9._-]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageReport<'a> {
    /// The gateway's version, if it said.
    pub(crate) version: Option<Cow<'a, str>>,
    /// Checks per plugin, in name order, each name once.
    pub(crate) plugins: Vec<(Cow<'a, str>, PluginCounts)>,
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

/// The `usage` member of a token request, read in the same pass as the rest of the body
/// and never a reason to fail it: whatever the member holds is consumed, and what breaks
/// a rule becomes the [`ReportRejection`] (only broken JSON, which breaks the whole body,
/// is an error). Values of unknown members and of the wrong kind are skipped with
/// [`IgnoredAny`], which serde_json skips without recursion, so the body needs no nesting
/// pre-pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportMember<'a>(pub(crate) Result<UsageReport<'a>, ReportRejection>);

impl<'a> UsageReport<'a> {
    /// Reads a report from its JSON text (the token path reads it in place with
    /// [`ReportMember`]; this is the same reader for a report on its own).
    pub(crate) fn parse(json: &'a str) -> Result<Self, ReportRejection> {
        if json.len() > MAX_REPORT_BYTES {
            return Err(ReportRejection::Oversized);
        }
        match serde_json::from_str::<ReportMember<'a>>(json) {
            Ok(ReportMember(report)) => report,
            Err(e) => Err(malformed(e.to_string())),
        }
    }
}

/// A member's value that is not an object: `null`, a non-negative integer, a string, or
/// anything else (consumed).
enum Scalar<'a> {
    Null,
    Count(u64),
    Text(Cow<'a, str>),
    Wrong,
}

/// Implements the visitor methods every lenient reader shares: values of a kind it does
/// not read become `$wrong` (arrays and objects skipped).
macro_rules! consume_others {
    ($wrong:expr; $($kind:ident),*) => {
        $(consume_others!(@one $kind, $wrong);)*
    };
    (@one bool, $wrong:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($wrong)
        }
    };
    (@one f64, $wrong:expr) => {
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($wrong)
        }
    };
    (@one u64, $wrong:expr) => {
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($wrong)
        }
    };
    (@one i64, $wrong:expr) => {
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($wrong)
        }
    };
    (@one str, $wrong:expr) => {
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($wrong)
        }
    };
    (@one seq, $wrong:expr) => {
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($wrong)
        }
    };
    (@one map, $wrong:expr) => {
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($wrong)
        }
    };
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a count or a string")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Count(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(u64::try_from(v).map_or(Scalar::Wrong, Scalar::Count))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Owned(v.to_owned())))
            }
            consume_others!(Scalar::Wrong; bool, f64, seq, map);
        }
        d.deserialize_any(Visitor)
    }
}

/// How a plugin's counts were written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `{"allowed":N,"refused":N}` (format 1).
    Object,
    /// `[allowed, refused]` (format 2).
    Pair,
    /// Neither.
    Other,
}

/// One plugin's counts; `None` when they break a rule (in an object each absent count is
/// 0; a pair has exactly two; anything but a non-negative integer is wrong).
struct Counts(Option<PluginCounts>, Shape);

impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Counts;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a plugin's counts")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut counts = Some(PluginCounts::default());
                while let Some(key) = map.next_key::<Scalar<'de>>()? {
                    let slot = match (&key, counts.as_mut()) {
                        (Scalar::Text(k), Some(c)) if k == "allowed" => &mut c.allowed,
                        (Scalar::Text(k), Some(c)) if k == "refused" => &mut c.refused,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    match map.next_value::<Scalar<'de>>()? {
                        Scalar::Count(n) => *slot = n,
                        _ => counts = None,
                    }
                }
                Ok(Counts(counts, Shape::Object))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut pair = [None; 2];
                let mut len = 0;
                while let Some(element) = seq.next_element::<Scalar<'de>>()? {
                    if let (Some(slot), Scalar::Count(n)) = (pair.get_mut(len), element) {
                        *slot = Some(n);
                    }
                    len += 1;
                }
                let counts = match (len, pair) {
                    (2, [Some(allowed), Some(refused)]) => Some(PluginCounts { allowed, refused }),
                    _ => None,
                };
                Ok(Counts(counts, Shape::Pair))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Counts(None, Shape::Other))
            }
            consume_others!(Counts(None, Shape::Other); bool, f64, u64, i64, str);
        }
        d.deserialize_any(Visitor)
    }
}

/// The `plugins` object's members in the order sent (duplicates kept, so that they can be
/// refused rather than silently merged) and how their counts were written; `None` when it
/// is not an object.
struct Plugins<'a>(Option<(NamedCounts<'a>, CountsRead)>);

/// Plugin names and their counts.
type NamedCounts<'a> = Vec<(Cow<'a, str>, PluginCounts)>;

/// What the counts of a report's plugins were like.
#[derive(Clone, Copy, Default)]
struct CountsRead {
    /// A plugin's counts broke their rule.
    broken: bool,
    /// Some were objects (format 1).
    objects: bool,
    /// Some were pairs (format 2).
    pairs: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for Plugins<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Plugins<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of plugin counts")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16).min(64));
                let mut read = CountsRead::default();
                while let Some(name) = map.next_key::<Scalar<'de>>()? {
                    let Counts(counts, shape) = map.next_value()?;
                    read.broken |= counts.is_none();
                    read.objects |= shape == Shape::Object;
                    read.pairs |= shape == Shape::Pair;
                    if let Scalar::Text(name) = name {
                        entries.push((name, counts.unwrap_or_default()));
                    }
                }
                Ok(Plugins(Some((entries, read))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Plugins(Some((Vec::new(), CountsRead::default()))))
            }
            consume_others!(Plugins(None); bool, f64, u64, i64, str, seq);
        }
        d.deserialize_any(Visitor)
    }
}

/// The report's members as read, before its rules are checked.
#[derive(Default)]
struct Members<'a> {
    v: Option<Scalar<'a>>,
    since: Option<Scalar<'a>>,
    until: Option<Scalar<'a>>,
    version: Option<Scalar<'a>>,
    plugins: Option<Plugins<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ReportMember<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ReportMember<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a usage report")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Members::default();
                while let Some(key) = map.next_key::<Scalar<'de>>()? {
                    let name = match &key {
                        Scalar::Text(name) => name.as_ref(),
                        _ => "",
                    };
                    match name {
                        "v" => members.v = Some(map.next_value()?),
                        "since" => members.since = Some(map.next_value()?),
                        "until" => members.until = Some(map.next_value()?),
                        "version" => members.version = Some(map.next_value()?),
                        "plugins" => members.plugins = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(ReportMember(members.check()))
            }
            consume_others!(
                ReportMember(Err(malformed("the report is not an object")));
                bool, f64, u64, i64, str, seq
            );
        }
        d.deserialize_any(Visitor)
    }
}

impl<'a> Members<'a> {
    /// The report's rules.
    fn check(self) -> Result<UsageReport<'a>, ReportRejection> {
        let pairs = match self.v {
            Some(Scalar::Count(REPORT_V1)) => false,
            Some(Scalar::Count(REPORT_V2)) => true,
            _ => return Err(malformed("v must be 1 or 2")),
        };
        let time = |member: Option<&Scalar<'_>>, name: &str| {
            match member {
                Some(Scalar::Text(text)) => parse_rfc3339(text),
                _ => None,
            }
            .ok_or_else(|| malformed(format!("{name} must be an RFC 3339 time")))
        };
        if time(self.since.as_ref(), "since")? > time(self.until.as_ref(), "until")? {
            return Err(malformed("since is after until"));
        }
        let version = match self.version {
            None | Some(Scalar::Null) => None,
            Some(Scalar::Text(text))
                if !text.is_empty()
                    && text.chars().count() <= MAX_VERSION
                    && !text.chars().any(char::is_control) =>
            {
                Some(text)
            }
            Some(_) => return Err(malformed("version must be 1-64 printable characters")),
        };
        let (mut plugins, read) = match self.plugins {
            None => (Vec::new(), CountsRead::default()),
            Some(Plugins(Some(read))) => read,
            Some(Plugins(None)) => return Err(malformed("plugins must be an object")),
        };
        if plugins.len() > MAX_PLUGINS {
            return Err(ReportRejection::Oversized);
        }
        if !plugins.iter().all(|(name, _)| plugin_name_ok(name)) {
            return Err(malformed(
                "a plugin name is not 1-64 characters of [a-z0-9._-]",
            ));
        }
        if read.broken || (pairs && read.objects) || (!pairs && read.pairs) {
            return Err(malformed(if pairs {
                "a plugin's counts must be [allowed, refused], two non-negative integers"
            } else {
                "a plugin's counts must be an object of non-negative integers"
            }));
        }
        // Gateways send their plugins in name order: checking that is the common case.
        if !plugins.is_sorted_by(|a, b| a.0 < b.0) {
            plugins.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            if plugins.windows(2).any(|pair| pair[0].0 == pair[1].0) {
                return Err(malformed("a plugin is named twice"));
            }
        }
        Ok(UsageReport { version, plugins })
    }
}

/// Whether `name` is 1–64 characters of `[a-z0-9._-]`.
pub(crate) fn plugin_name_ok(name: &str) -> bool {
    (1..=MAX_PLUGIN_NAME).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
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
    use serde_json::{Value, json};

    use super::*;

    fn report(plugins: Value) -> Value {
        json!({"v": 1, "since": "2026-11-03T08:00:00Z", "until": "2026-11-03T16:00:00Z",
               "version": "0.1.0", "plugins": plugins, "future": {"x": 1}})
    }

    #[test]
    fn a_report_is_read_with_unknown_members_ignored() {
        let text =
            report(json!({"slack": {"allowed": 120, "refused": 2}, "a.b-c_d": {"refused": 1}}))
                .to_string();
        let parsed = UsageReport::parse(&text).expect("valid");
        assert_eq!(parsed.version.as_deref(), Some("0.1.0"));
        assert_eq!(
            parsed.plugins,
            vec![
                (
                    "a.b-c_d".into(),
                    PluginCounts {
                        allowed: 0,
                        refused: 1
                    }
                ),
                (
                    "slack".into(),
                    PluginCounts {
                        allowed: 120,
                        refused: 2
                    }
                ),
            ]
        );
    }

    fn report_v2(plugins: Value) -> Value {
        json!({"v": 2, "since": "2026-11-03T08:00:00Z", "until": "2026-11-03T16:00:00Z",
               "version": "0.1.0", "plugins": plugins, "future": {"x": 1}})
    }

    #[test]
    fn format_2_counts_are_pairs_and_read_as_format_1_objects() {
        let v2 = report_v2(json!({"a.b-c_d": [0, 1], "slack": [120, 2]})).to_string();
        let v1 =
            report(json!({"slack": {"allowed": 120, "refused": 2}, "a.b-c_d": {"refused": 1}}))
                .to_string();
        assert_eq!(UsageReport::parse(&v2), UsageReport::parse(&v1));
        assert_eq!(
            UsageReport::parse(&v2).expect("valid").plugins[1],
            (
                "slack".into(),
                PluginCounts {
                    allowed: 120,
                    refused: 2
                }
            )
        );
        let malformed = [
            report_v2(json!({"slack": [1]})),
            report_v2(json!({"slack": [1, 2, 3]})),
            report_v2(json!({"slack": [1, -2]})),
            report_v2(json!({"slack": [1, 2.5]})),
            report_v2(json!({"slack": [null, 2]})),
            report_v2(json!({"slack": ["1", 2]})),
            report_v2(json!({"slack": [[1], 2]})),
            report_v2(json!({"slack": {"allowed": 1, "refused": 2}})),
            report_v2(json!({"slack": [1, 2], "teams": {"allowed": 1}})),
            report(json!({"slack": [1, 2]})),
            json!({"v": 3, "since": "2026-11-03T08:00:00Z", "until": "2026-11-03T16:00:00Z"}),
        ];
        for value in malformed {
            assert_eq!(
                UsageReport::parse(&value.to_string()).map_err(|r| r.outcome()),
                Err("malformed"),
                "{value}"
            );
        }
    }

    #[test]
    fn reports_breaking_a_rule_are_malformed_or_oversized() {
        let malformed = [
            json!("text"),
            json!({"v": 0, "since": "2026-11-03T08:00:00Z", "until": "2026-11-03T16:00:00Z"}),
            json!({"v": 1, "since": "2026-11-03T18:00:00Z", "until": "2026-11-03T16:00:00Z"}),
            json!({"v": 1, "since": "yesterday", "until": "2026-11-03T16:00:00Z"}),
            report(json!({"Slack": {"allowed": 1}})),
            report(json!({"": {"allowed": 1}})),
            report(json!({"slack": {"allowed": -1}})),
            report(json!({"slack": {"allowed": 1.5}})),
            report(json!({"slack": 3})),
            report(json!([])),
            report(json!({"slack": {"allowed": null}})),
            json!({"v": 1.0, "since": "2026-11-03T08:00:00Z", "until": "2026-11-03T16:00:00Z"}),
            json!({"v": 1, "since": "2026-11-03T08:00:00Z", "until": "2026-11-03T16:00:00Z",
                   "version": "x".repeat(65)}),
        ];
        for value in malformed {
            assert_eq!(
                UsageReport::parse(&value.to_string()).map_err(|r| r.outcome()),
                Err("malformed"),
                "{value}"
            );
        }
        let many: serde_json::Map<String, Value> = (0..513)
            .map(|i| (format!("p{i}"), json!({"allowed": 1})))
            .collect();
        assert_eq!(
            UsageReport::parse(&report(Value::Object(many)).to_string()),
            Err(ReportRejection::Oversized)
        );
        let big = report(json!({"slack": {"allowed": 1}, "x": {"pad": "y".repeat(70_000)}}));
        assert_eq!(
            UsageReport::parse(&big.to_string()),
            Err(ReportRejection::Oversized)
        );
        let at_limit: serde_json::Map<String, Value> = (0..512)
            .map(|i| (format!("p{i}"), json!({"allowed": 1})))
            .collect();
        assert_eq!(
            UsageReport::parse(&report(Value::Object(at_limit)).to_string())
                .expect("512 is allowed")
                .plugins
                .len(),
            512
        );
    }

    #[test]
    fn a_plugin_named_twice_is_malformed_and_escaped_names_are_read() {
        let twice = r#"{"v":1,"since":"2026-11-03T08:00:00Z","until":"2026-11-03T16:00:00Z","plugins":{"slack":{"allowed":1},"slack":{"allowed":2}}}"#;
        assert_eq!(
            UsageReport::parse(twice).map_err(|r| r.outcome()),
            Err("malformed")
        );
        let escaped = r#"{"v":1,"since":"2026-11-03T08:00:00Z","until":"2026-11-03T16:00:00Z","version":"0.\u0031","plugins":{"sl\u0061ck":{"allowed":1}}}"#;
        let parsed = UsageReport::parse(escaped).expect("escapes are JSON");
        assert_eq!(parsed.version.as_deref(), Some("0.1"));
        assert_eq!(parsed.plugins[0].0, "slack");
    }

    #[test]
    fn deep_or_odd_unknown_members_are_skipped_and_wrong_kinds_are_malformed() {
        let deep = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
        let text = format!(
            r#"{{"v":1,"since":"2026-11-03T08:00:00Z","until":"2026-11-03T16:00:00Z","future":{deep},"plugins":{{"slack":{{"allowed":1,"note":{{"a":[{deep}]}}}}}}}}"#
        );
        let parsed = UsageReport::parse(&text).expect("unknown members are skipped");
        assert_eq!(parsed.plugins.len(), 1);
        for (member, value) in [
            ("since", "[1]"),
            ("version", "{\"a\":1}"),
            ("plugins", "\"slack\""),
            ("v", "\"1\""),
        ] {
            let text = format!(
                r#"{{"v":1,"since":"2026-11-03T08:00:00Z","until":"2026-11-03T16:00:00Z","{member}":{value}}}"#
            );
            assert_eq!(
                UsageReport::parse(&text).map_err(|r| r.outcome()),
                Err("malformed"),
                "{text}"
            );
        }
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
