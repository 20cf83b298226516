//! `mcpg-ctl usage …`: what orgs run, from the service's daily usage aggregates — one org
//! per day or month (`show`), and every org for one month's bill (`export`). Both print a
//! table, the JSON (`-o json`) or CSV (`-o csv`).

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use chrono::{Datelike, NaiveDate, Utc};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::Client;
use super::commands::{Printer, org_path};
use super::output::{Column, cell, table};

const SHOW_EXAMPLE: &str = "\
Examples:
  mcpg-ctl usage show acme-corp
  mcpg-ctl usage show acme-corp --from 2026-11-01 --to 2026-11-30 --group environment
  mcpg-ctl usage show acme-corp --by month --from 2026-01 --to 2026-12 -o csv
  mcpg-ctl usage show acme-corp --group plugin -o json";

const EXPORT_EXAMPLE: &str = "\
Examples:
  mcpg-ctl usage export --month 2026-11 -o csv > usage-2026-11.csv
  mcpg-ctl usage export --month 2026-11 -o json";

/// The period rows are summed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum By {
    /// UTC days.
    Day,
    /// UTC calendar months.
    Month,
}

/// What rows are broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Group {
    /// Per workspace.
    Workspace,
    /// Per workspace and environment.
    Environment,
    /// Per gateway.
    Gateway,
    /// Per plugin (checks allowed and refused).
    Plugin,
}

#[derive(Debug, Subcommand)]
pub(super) enum UsageCommand {
    /// An org's usage per UTC day or month: active gateways, peak concurrent gateways
    /// against the license's max_gateways, tokens, plugin checks, versions, and the limits
    /// exceeded (OVER LIMIT; nothing is cut off). Org admins and the vendor.
    #[command(after_help = SHOW_EXAMPLE)]
    Show {
        /// The org.
        org: String,
        /// First day, YYYY-MM-DD (with --by month also YYYY-MM) [default: 29 days before
        /// --to, or the first of its month with --by month].
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (with --by month also YYYY-MM) [default: today, UTC].
        #[arg(long)]
        to: Option<String>,
        /// Sum per day or per month.
        #[arg(long, value_enum, default_value_t = By::Day)]
        by: By,
        /// Break rows down by workspace, environment, gateway or plugin.
        #[arg(long, value_enum)]
        group: Option<Group>,
    },
    /// One row per org for a month's bill (the vendor): org, tier, max_gateways, active
    /// gateways p95 and max over the month's days (so far, for the current month; a day
    /// without usage counts 0), tokens, plugins used (allowed at least once, ;-joined) and
    /// days over a limit.
    #[command(after_help = EXPORT_EXAMPLE)]
    Export {
        /// The month, YYYY-MM (UTC).
        #[arg(long)]
        month: String,
    },
    /// Import an air-gapped site's usage bundle (`mcpg-entitlements usage export`): the
    /// service verifies its signatures, its chain from the last import of the deployment
    /// and its license (the vendor's roots; the license's org must be ORG), then adds the
    /// new days to the org's usage. Org admins and the vendor.
    #[command(after_help = super::usage_import::IMPORT_EXAMPLE)]
    Import {
        /// The bundle.
        file: std::path::PathBuf,
        /// The org [default: the org the bundle's license names].
        org: Option<String>,
    },
}

const SHOW_COLUMNS: &[Column] = &[
    ("period", "period"),
    ("gateways", "gateways_active"),
    ("peak", "peak_gateways"),
    ("max", "max_gateways"),
    ("tokens", "tokens"),
    ("plugins", "plugins_short"),
    ("versions", "versions"),
    ("over limit", "over_limit"),
];

const EXPORT_COLUMNS: &[Column] = &[
    ("org", "org"),
    ("tier", "tier"),
    ("max_gateways", "max_gateways"),
    ("gateways_p95", "gateways_p95"),
    ("gateways_max", "gateways_max"),
    ("tokens", "tokens"),
    ("plugins_used", "plugins_used"),
    ("days_over_limit", "days_over_limit"),
];

/// Runs a `usage` subcommand.
pub(super) fn usage(
    client: &Client,
    out: &Printer,
    csv: bool,
    command: UsageCommand,
) -> anyhow::Result<()> {
    match command {
        UsageCommand::Show {
            org,
            from,
            to,
            by,
            group,
        } => {
            let mut query = vec![format!("by={}", by_text(by))];
            for (name, value) in [("from", from), ("to", to)] {
                if let Some(value) = value {
                    query.push(format!("{name}={}", date_arg(name, &value)?));
                }
            }
            if let Some(group) = group {
                query.push(format!("group={}", group_text(group)));
            }
            let path = format!("{}/usage?{}", org_path(&org)?, query.join("&"));
            let answer = client.get(&path)?;
            let rows = show_rows(&answer);
            print(out, csv, &answer, &rows, &show_columns(group))
        }
        UsageCommand::Export { month } => {
            let (first, last) = month_days(&month)?;
            let today = Utc::now().date_naive();
            let last = if first <= today && today < last {
                today
            } else {
                last
            };
            let path = format!("/v1/admin/usage?from={first}&to={last}&by=day");
            let answer = client.get(&path)?;
            let days = (last - first).num_days() + 1;
            let rows = export_rows(&answer, usize::try_from(days).unwrap_or(0));
            let value = Value::Array(rows.clone());
            print(out, csv, &value, &rows, EXPORT_COLUMNS)
        }
        UsageCommand::Import { file, org } => {
            if csv {
                bail!("--output csv is for `usage show` and `usage export`; use table or json");
            }
            super::usage_import::import(client, out, &file, org)
        }
    }
}

fn by_text(by: By) -> &'static str {
    match by {
        By::Day => "day",
        By::Month => "month",
    }
}

fn group_text(group: Group) -> &'static str {
    match group {
        Group::Workspace => "workspace",
        Group::Environment => "environment",
        Group::Gateway => "gateway",
        Group::Plugin => "plugin",
    }
}

/// A `--from`/`--to` value, checked for its characters before it reaches the URL (the
/// server checks the date).
fn date_arg(name: &str, value: &str) -> anyhow::Result<String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        bail!("--{name} {value:?}: expected a date YYYY-MM-DD or a month YYYY-MM");
    }
    Ok(value.to_owned())
}

/// The first and last day of `YYYY-MM`.
fn month_days(month: &str) -> anyhow::Result<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| month.len() == 7)
        .with_context(|| format!("--month {month:?}: expected a month YYYY-MM"))?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    let last = next
        .and_then(|n| n.pred_opt())
        .with_context(|| format!("--month {month:?}: out of range"))?;
    Ok((first, last))
}

fn show_columns(group: Option<Group>) -> Vec<Column> {
    let lead: &[Column] = match group {
        None => &[],
        Some(Group::Workspace) => &[("workspace", "workspace")],
        Some(Group::Environment) => &[("workspace", "workspace"), ("environment", "environment")],
        Some(Group::Gateway) => &[
            ("workspace", "workspace"),
            ("environment", "environment"),
            ("gateway", "gateway_label"),
        ],
        Some(Group::Plugin) => &[("plugin", "plugin")],
    };
    let mut columns = vec![SHOW_COLUMNS[0]];
    columns.extend_from_slice(lead);
    match group {
        Some(Group::Plugin) => columns.extend_from_slice(&[
            ("gateways", "gateways_active"),
            ("allowed", "allowed"),
            ("refused", "refused"),
        ]),
        _ => columns.extend_from_slice(&SHOW_COLUMNS[1..]),
    }
    columns
}

/// The answer's rows with the fields the table and CSV show: the license's limit, the
/// plugin checks as `name=allowed/refused`, the gateway's name (or the imported
/// deployment), a plugin row's counts.
fn show_rows(answer: &Value) -> Vec<Value> {
    let max = answer["max_gateways"].clone();
    let rows = answer["rows"].as_array().cloned().unwrap_or_default();
    rows.into_iter()
        .map(|mut row| {
            let plugins = row["plugins"].as_object().cloned().unwrap_or_default();
            let short: Vec<String> = plugins
                .iter()
                .map(|(name, c)| format!("{name}={}/{}", cell(&c["allowed"]), cell(&c["refused"])))
                .collect();
            let label = match (&row["gateway_name"], &row["gateway"], &row["deployment"]) {
                (Value::String(name), _, _) => json!(name),
                (_, Value::String(id), _) => json!(id),
                (_, _, Value::String(deployment)) => json!(format!("deployment:{deployment}")),
                _ => Value::Null,
            };
            let plugin = row["plugin"].as_str().unwrap_or_default().to_owned();
            let (allowed, refused) = (
                row["plugins"][&plugin]["allowed"].clone(),
                row["plugins"][&plugin]["refused"].clone(),
            );
            if let Some(fields) = row.as_object_mut() {
                fields.insert("max_gateways".into(), max.clone());
                fields.insert("plugins_short".into(), json!(short.join(";")));
                fields.insert("gateway_label".into(), label);
                fields.insert("allowed".into(), allowed);
                fields.insert("refused".into(), refused);
            }
            row
        })
        .collect()
}

/// One export row per org, over `days` days.
fn export_rows(answer: &Value, days: usize) -> Vec<Value> {
    let orgs = answer["orgs"].as_array().cloned().unwrap_or_default();
    orgs.iter()
        .map(|org| {
            let rows = org["rows"].as_array().cloned().unwrap_or_default();
            let mut active: Vec<u64> = rows
                .iter()
                .map(|r| r["gateways_active"].as_u64().unwrap_or(0))
                .collect();
            active.resize(days.max(active.len()), 0);
            let sum =
                |field: &str| -> u64 { rows.iter().map(|r| r[field].as_u64().unwrap_or(0)).sum() };
            let used: BTreeSet<String> = rows
                .iter()
                .filter_map(|r| r["plugins"].as_object())
                .flat_map(|plugins| {
                    plugins
                        .iter()
                        .filter(|(_, c)| c["allowed"].as_u64().unwrap_or(0) > 0)
                        .map(|(name, _)| name.clone())
                })
                .collect();
            json!({
                "org": org["org"],
                "tier": org["tier"],
                "max_gateways": org["max_gateways"],
                "gateways_p95": percentile(&active, 95),
                "gateways_max": active.iter().copied().max().unwrap_or(0),
                "tokens": sum("tokens"),
                "plugins_used": used.into_iter().collect::<Vec<_>>().join(";"),
                "days_over_limit": sum("days_over_limit"),
            })
        })
        .collect()
}

/// The `p`-th percentile of `values` by the nearest-rank method (0 when empty).
fn percentile(values: &[u64], p: u64) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = (p * sorted.len() as u64).div_ceil(100).max(1);
    usize::try_from(rank - 1)
        .ok()
        .and_then(|i| sorted.get(i))
        .copied()
        .unwrap_or(0)
}

fn print(
    out: &Printer,
    csv: bool,
    json: &Value,
    rows: &[Value],
    columns: &[Column],
) -> anyhow::Result<()> {
    if csv {
        print!("{}", csv_text(rows, columns));
    } else if out.output.is_json() {
        out.json(json);
    } else {
        print!("{}", table(rows, columns));
    }
    Ok(())
}

/// RFC 4180 CSV: a header of the columns' headings, one line per row; empty for null.
fn csv_text(rows: &[Value], columns: &[Column]) -> String {
    let field = |value: &Value| -> String {
        let text = match value {
            Value::Null => String::new(),
            other => cell(other),
        };
        let text = if text == "-" && !matches!(value, Value::String(_)) {
            String::new()
        } else {
            text
        };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    };
    let heading = |h: &str| h.replace(' ', "_");
    let mut out = columns
        .iter()
        .map(|(h, _)| heading(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    for row in rows {
        let line: Vec<String> = columns.iter().map(|(_, f)| field(&row[*f])).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_sums_a_month_per_org_with_the_p95_over_its_days() {
        let day = |active: u64, tokens: u64, plugins: Value, over: u64| {
            json!({"gateways_active": active, "tokens": tokens, "plugins": plugins,
                   "days_over_limit": over})
        };
        let answer = json!({"orgs": [
            {"org": "acme", "tier": "team", "max_gateways": 3, "rows": [
                day(4, 10, json!({"policy.cedar": {"allowed": 2, "refused": 0}}), 1),
                day(2, 5, json!({"identity.oidc": {"allowed": 0, "refused": 3}}), 0),
            ]},
            {"org": "globex", "tier": null, "max_gateways": null, "rows": []},
        ]});
        let rows = export_rows(&answer, 30);
        assert_eq!(rows[0]["gateways_p95"], 2);
        assert_eq!(rows[0]["gateways_max"], 4);
        assert_eq!(rows[0]["tokens"], 15);
        assert_eq!(rows[0]["plugins_used"], "policy.cedar");
        assert_eq!(rows[0]["days_over_limit"], 1);
        assert_eq!(
            csv_text(&rows, EXPORT_COLUMNS),
            "org,tier,max_gateways,gateways_p95,gateways_max,tokens,plugins_used,days_over_limit\r\n\
             acme,team,3,2,4,15,policy.cedar,1\r\n\
             globex,,,0,0,0,,0\r\n"
        );
    }

    #[test]
    fn months_and_percentiles() {
        let (first, last) = month_days("2024-02").expect("month");
        assert_eq!(
            (first.to_string(), last.to_string()),
            ("2024-02-01".into(), "2024-02-29".into())
        );
        assert_eq!(
            month_days("2026-12").expect("month").1.to_string(),
            "2026-12-31"
        );
        assert!(month_days("2026-13").is_err() && month_days("2026-1").is_err());
        let values: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile(&values, 95), 19);
        assert_eq!(percentile(&[], 95), 0);
    }
}
