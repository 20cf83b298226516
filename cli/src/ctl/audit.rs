//! `mcpg-ctl audit …`: an org's audit chain — list, verify (on the server, or offline from
//! an export, a signed checkpoint and the signing key), export, checkpoint.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use mcpg_license_core::PublicKey;
use mcpg_license_core::audit::{AuditRecord, Checkpoint, verify_chain};
use serde_json::{Value, json};
use thiserror::Error;

use super::Client;
use super::commands::{Printer, org_path};
use super::output::Column;

const ENTRY_COLUMNS: &[Column] = &[
    ("seq", "seq"),
    ("time", "time"),
    ("actor", "actor"),
    ("action", "action"),
    ("target", "target"),
    ("details", "details_short"),
    ("request", "request_id"),
];

/// The longest details shown in the table (the JSON output has them whole).
const SHORT_DETAILS: usize = 60;

/// Each entry with `details_short`: its details as `key=value` pairs, times (`*_at`,
/// `*_until`, `*_from`, `*_ends`, `exp`, `iat`) in RFC 3339 like every other time, cut to
/// [`SHORT_DETAILS`] characters.
fn with_short_details(entries: &Value) -> Value {
    let rows = entries.as_array().cloned().unwrap_or_default();
    Value::Array(
        rows.into_iter()
            .map(|mut entry| {
                let short = short_details(&entry["details"]);
                if let Some(fields) = entry.as_object_mut() {
                    fields.insert("details_short".into(), Value::String(short));
                }
                entry
            })
            .collect(),
    )
}

fn is_time_key(key: &str) -> bool {
    ["_at", "_until", "_from", "_ends"]
        .iter()
        .any(|suffix| key.ends_with(suffix))
        || matches!(key, "exp" | "iat" | "nbf")
}

fn short_details(details: &Value) -> String {
    let Some(fields) = details.as_object() else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (key, value) in fields {
        let text = match value {
            Value::Null => continue,
            Value::Number(n) if is_time_key(key) => match n.as_i64() {
                Some(at) => mcpg_license_core::clock::to_rfc3339(at),
                None => n.to_string(),
            },
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        parts.push(format!("{key}={text}"));
    }
    let joined = parts.join(" ");
    match joined.char_indices().nth(SHORT_DETAILS) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}
const VERIFY_COLUMNS: &[Column] = &[
    ("ok", "ok"),
    ("checked", "checked"),
    ("first bad seq", "first_bad_seq"),
    ("head seq", "head_seq"),
    ("head hash", "head_hash"),
];
const OFFLINE_COLUMNS: &[Column] = &[
    ("ok", "ok"),
    ("org id", "org_id"),
    ("checked", "checked"),
    ("head seq", "head_seq"),
    ("head hash", "head_hash"),
    ("checkpoint seq", "checkpoint_seq"),
    ("checkpoint key", "checkpoint_key"),
];
const CHECKPOINT_COLUMNS: &[Column] = &[
    ("org", "org"),
    ("seq", "seq"),
    ("head hash", "head_hash"),
    ("key", "key_id"),
    ("created", "created_at"),
];

const AUDIT_LIST_EXAMPLE: &str = "\
Examples:
  mcpg-ctl audit list acme-corp
  mcpg-ctl audit list acme-corp --action workspace.create --since 2026-12-01T00:00:00Z
  mcpg-ctl audit list acme-corp --after-seq 100 --limit 50";

const AUDIT_VERIFY_EXAMPLE: &str = "\
Examples:
  mcpg-ctl audit verify acme-corp
  mcpg-ctl audit verify --file acme.audit.ndjson --checkpoint acme.checkpoint --trust k4.public.…
  mcpg-ctl audit verify --file acme.audit.ndjson --checkpoint acme.checkpoint --trust signing-key.public.paserk";

const AUDIT_EXPORT_EXAMPLE: &str = "\
Examples:
  mcpg-ctl audit export acme-corp --out acme.audit.ndjson
  mcpg-ctl audit export acme-corp > acme.audit.ndjson";

const AUDIT_CHECKPOINT_EXAMPLE: &str = "\
Examples:
  mcpg-ctl audit checkpoint acme-corp
  mcpg-ctl audit checkpoint acme-corp --sign --out acme.checkpoint";

/// The audit chain of an org.
#[derive(Debug, Subcommand)]
pub(super) enum AuditCommand {
    /// List entries, oldest first, a page at a time (`--after-seq` takes the printed cursor).
    #[command(after_help = AUDIT_LIST_EXAMPLE)]
    List {
        /// Org slug.
        org: String,
        /// Only entries after this seq (the previous page's cursor).
        #[arg(long, default_value_t = 0)]
        after_seq: i64,
        /// At most this many entries (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Only this action, e.g. workspace.create.
        #[arg(long)]
        action: Option<String>,
        /// Only this actor, e.g. admin:<token id>.
        #[arg(long)]
        actor: Option<String>,
        /// Only entries at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only entries before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
    },
    /// Verify the chain: on the server (`audit verify ORG`), or offline with no server
    /// from an export, a signed checkpoint and the key that signed it
    /// (`audit verify --file EXPORT --checkpoint FILE --trust PUBLIC`). Exit code 1 when
    /// it does not verify.
    #[command(after_help = AUDIT_VERIFY_EXAMPLE)]
    Verify {
        /// Org slug (server-side verification).
        #[arg(required_unless_present = "file", conflicts_with_all = ["file", "checkpoint", "trust"])]
        org: Option<String>,
        /// An NDJSON export (`audit export`).
        #[arg(long, requires_all = ["checkpoint", "trust"])]
        file: Option<PathBuf>,
        /// A signed checkpoint note (`audit checkpoint --out`).
        #[arg(long, requires = "file")]
        checkpoint: Option<PathBuf>,
        /// The signing key's public key (k4.public PASERK, PEM or JWK), or a file holding it.
        #[arg(long, requires = "file")]
        trust: Option<String>,
    },
    /// Export every entry as NDJSON (with details, prev_hash and hash).
    #[command(after_help = AUDIT_EXPORT_EXAMPLE)]
    Export {
        /// Org slug.
        org: String,
        /// Write to this new file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show the latest signed checkpoint, or sign a new one with --sign (org admin).
    #[command(after_help = AUDIT_CHECKPOINT_EXAMPLE)]
    Checkpoint {
        /// Org slug.
        org: String,
        /// Sign the current head now.
        #[arg(long)]
        sign: bool,
        /// Also write the signed note to this new file (for `audit verify --checkpoint`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The chain did not verify (exit code 1, like a refusal by the server).
#[derive(Debug, Error)]
#[error("{0}")]
pub struct VerifyFailed(pub String);

pub(super) fn audit(client: &Client, out: &Printer, cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::List {
            org,
            after_seq,
            limit,
            action,
            actor,
            since,
            until,
        } => {
            let mut query = vec![format!("after_seq={after_seq}"), format!("limit={limit}")];
            for (name, value) in [
                ("action", action),
                ("actor", actor),
                ("since", since),
                ("until", until),
            ] {
                if let Some(value) = value {
                    query.push(format!("{name}={}", super::access::encode(&value)));
                }
            }
            let url = format!("{}/audit?{}", org_path(&org)?, query.join("&"));
            let page = client.get(&url)?;
            match out.output {
                // The server's page as it is: {"entries": [...], "next_cursor": "N"}.
                super::Output::Json => out.json(&page),
                super::Output::Table => {
                    out.list(&with_short_details(&page["entries"]), ENTRY_COLUMNS);
                    if let Some(cursor) = page["next_cursor"].as_str() {
                        println!("more: --after-seq {cursor}");
                    }
                }
            }
        }
        AuditCommand::Verify { org: Some(org), .. } => {
            let report = client.get(&format!("{}/audit/verify", org_path(&org)?))?;
            out.one(&report, VERIFY_COLUMNS);
            if report["ok"] != true {
                return Err(VerifyFailed(format!(
                    "the audit chain of {org} does not verify at seq {}",
                    report["first_bad_seq"]
                ))
                .into());
            }
        }
        AuditCommand::Verify {
            file: Some(file),
            checkpoint: Some(checkpoint),
            trust: Some(trust),
            ..
        } => {
            let report = verify_offline(&file, &checkpoint, &trust)?;
            out.one(&report, OFFLINE_COLUMNS);
        }
        AuditCommand::Verify { .. } => bail!("give ORG, or --file, --checkpoint and --trust"),
        AuditCommand::Export { org, out: file } => {
            let text = client.get_text(&format!("{}/audit/export", org_path(&org)?))?;
            match file {
                Some(path) => {
                    crate::files::write_new(&path, text.as_bytes(), 0o644, "choose a new file")?;
                    eprintln!(
                        "wrote {} entries to {}",
                        text.lines().count(),
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
        }
        AuditCommand::Checkpoint {
            org,
            sign,
            out: file,
        } => {
            let url = format!("{}/audit/checkpoints", org_path(&org)?);
            let checkpoint = if sign {
                client.post(&url, &json!({}))?
            } else {
                client.get(&format!("{url}/latest"))?
            };
            if let Some(path) = file {
                let note = checkpoint["note"].as_str().unwrap_or_default();
                crate::files::write_new(&path, note.as_bytes(), 0o644, "choose a new file")?;
            }
            out.one(&checkpoint, CHECKPOINT_COLUMNS);
        }
    }
    Ok(())
}

/// Verifies an export against a checkpoint signed by `trust`, with no server.
fn verify_offline(export: &Path, checkpoint: &Path, trust: &str) -> anyhow::Result<Value> {
    let key_text = if Path::new(trust).is_file() {
        std::fs::read_to_string(trust).with_context(|| format!("cannot read {trust}"))?
    } else {
        trust.to_owned()
    };
    let key = PublicKey::parse_any(&key_text).context("--trust is not a public key")?;
    let note = std::fs::read_to_string(checkpoint)
        .with_context(|| format!("cannot read {}", checkpoint.display()))?;
    let checkpoint = Checkpoint::verify(&note, &key)
        .map_err(|e| VerifyFailed(format!("checkpoint {}: {e}", checkpoint.display())))?;
    let text = std::fs::read_to_string(export)
        .with_context(|| format!("cannot read {}", export.display()))?;
    let mut records = Vec::new();
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: AuditRecord = serde_json::from_str(line).with_context(|| {
            format!(
                "{} line {}: not an audit entry",
                export.display(),
                index + 1
            )
        })?;
        records.push(record);
    }
    let org_id = match (records.first(), checkpoint.org_id()) {
        (Some(first), _) => first.entry.org_id.clone(),
        (None, Some(org)) => org.to_owned(),
        (None, None) => bail!("the checkpoint names no org"),
    };
    let report = verify_chain(&org_id, &records);
    if let Some(bad) = report.first_bad_seq {
        return Err(VerifyFailed(format!(
            "{}: the chain does not verify at seq {bad} ({} entries verified)",
            export.display(),
            report.checked
        ))
        .into());
    }
    checkpoint
        .check_export(&org_id, &records)
        .map_err(|e| VerifyFailed(e.to_string()))?;
    Ok(json!({
        "ok": true,
        "org_id": org_id,
        "checked": report.checked,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "checkpoint_seq": checkpoint.seq,
        "checkpoint_key": key.kid().as_str(),
    }))
}

#[cfg(test)]
mod details_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_shows_short_details_with_rfc3339_times() {
        let details = json!({"trial_expires_at": 1_798_761_600, "status": "trial", "gone": null});
        let short = short_details(&details);
        assert_eq!(short, "status=trial trial_expires_at=2027-01-01T00:00:00Z");
        let nested = short_details(&json!({"limits": {"max_gateways": 5}}));
        assert_eq!(nested, r#"limits={"max_gateways":5}"#);
        let long = short_details(&json!({"note": "x".repeat(200)}));
        assert_eq!(long.chars().count(), SHORT_DETAILS + 1, "{long}");
        assert!(long.ends_with('…'));
        let rows = with_short_details(&json!([{"seq": 1, "details": {"name": "edge-1"}}]));
        assert_eq!(rows[0]["details_short"], "name=edge-1");
    }
}
