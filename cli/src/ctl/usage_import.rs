//! `mcpg-ctl usage import FILE [ORG]`: sends an air-gapped site's usage bundle
//! (`mcpg-entitlements usage export`) to the service, which verifies it against the roots
//! it trusts and the chain it holds for the deployment, and adds its new days to the org's
//! usage. The org defaults to the one the bundle's license names.

use std::path::Path;

use anyhow::Context;
use mcpg_license_core::usage::Bundle;
use serde_json::Value;

use super::Client;
use super::commands::{Printer, org_path};
use super::output::Column;

pub(super) const IMPORT_EXAMPLE: &str = "\
Examples:
  # The org is the one the bundle's license names
  mcpg-ctl usage import usage-2026-11.json

  # Into a named org, the summary as JSON
  mcpg-ctl usage import usage-2026-11.json acme-corp -o json

A refusal exits 1 with the server's reason code: malformed (400), or (422) bad_signature,
wrong_deployment_key, gap, edited, removed_day, replayed, reordered, license_mismatch;
nothing is stored then.";

const IMPORT_COLUMNS: &[Column] = &[
    ("org", "org"),
    ("deployment", "deployment_id"),
    ("license", "license"),
    ("days imported", "days_imported"),
    ("already imported", "already_imported"),
    ("first day", "first_day"),
    ("last day", "last_day"),
    ("seqs", "seqs"),
    ("active days", "active_days"),
    ("peak gateways", "peak_gateways"),
    ("tokens", "tokens"),
    ("plugin checks", "checks"),
    ("chain head", "chain_hash"),
];

/// The org the bundle's license names (read, not verified: the server verifies).
fn org_of(bytes: &[u8], file: &Path) -> anyhow::Result<String> {
    let bundle: Bundle = serde_json::from_slice(bytes)
        .with_context(|| format!("{} is not a usage bundle", file.display()))?;
    Ok(bundle.license.org)
}

/// The answer with the table's derived fields.
fn table_view(answer: &Value) -> Value {
    let mut view = answer.clone();
    let totals = &answer["totals"];
    let checks: Vec<String> = totals["plugins"]
        .as_object()
        .map(|plugins| {
            plugins
                .iter()
                .map(|(name, c)| format!("{name} {}/{}", c["allowed"], c["refused"]))
                .collect()
        })
        .unwrap_or_default();
    if let Some(object) = view.as_object_mut() {
        object.insert(
            "seqs".into(),
            Value::from(format!("{}-{}", answer["first_seq"], answer["last_seq"])),
        );
        for name in ["active_days", "peak_gateways", "tokens"] {
            object.insert(name.into(), totals[name].clone());
        }
        object.insert("checks".into(), Value::from(checks.join(", ")));
    }
    view
}

/// `usage import FILE [ORG]`.
pub(super) fn import(
    client: &Client,
    out: &Printer,
    file: &Path,
    org: Option<String>,
) -> anyhow::Result<()> {
    let bytes = crate::license::usage::read_bundle(file)?;
    let org = match org {
        Some(org) => org,
        None => org_of(&bytes, file)?,
    };
    let path = format!("{}/usage/receipts", org_path(&org)?);
    let answer = client.post_json_bytes(&path, bytes)?;
    match out.output {
        mcpg_runtime::output::Output::Table => out.one(&table_view(&answer), IMPORT_COLUMNS),
        mcpg_runtime::output::Output::Json => out.json(&answer),
    }
    Ok(())
}
