//! `usage verify`: check a usage bundle exported on an air-gapped site
//! (`mcpg-entitlements usage export`) with no server, and summarise what it says. The
//! summary is also what `issue --renew … --usage …` prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use mcpg_license_core::TrustStore;
use mcpg_license_core::keys::vendor_roots;
use mcpg_license_core::usage::{
    ChainState, LicenseCheck, MAX_BUNDLE_BYTES, PluginCounts, ReceiptError, VerifiedBundle,
    verify_bundle,
};
use mcpg_runtime::output::Output;
use serde_json::{Value, json};

use super::EXIT_INVALID;
use crate::files;
use crate::render;

pub(crate) const EXAMPLES: &str = "\
Examples:
  # The first bundle of a site, checked against the vendor roots and its license
  mcpg-license usage verify usage.json --license acme.license

  # The next one must continue the chain from the last one checked (printed by the first)
  mcpg-license usage verify usage-dec.json --license acme.license \\
      --deployment-key 6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw \\
      --after-seq 30 --after-hash 5efb3b44a0…c9b7 -o json

Exit 0: the bundle verifies. Exit 1: it does not; stderr has one `error:` line ending in
the reason code: [malformed], [bad_signature], [wrong_deployment_key], [gap], [edited],
[removed_day], [replayed], [reordered], [license_mismatch]. Exit 2: a file could not be read.";

/// `usage` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsageCommand {
    /// Verify a usage bundle (signatures, hash chain, license binding) and summarise it
    #[command(after_help = EXAMPLES)]
    Verify(VerifyUsageArgs),
}

/// Arguments of `usage verify`.
#[derive(Debug, Args)]
pub struct VerifyUsageArgs {
    /// The bundle (from `mcpg-entitlements usage export`)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The license the site runs: the bundle must name exactly this one
    #[arg(long, value_name = "FILE")]
    pub license: Option<PathBuf>,
    /// Trusted root public key for the license (repeatable); default: the vendor roots
    #[arg(long, value_name = "ROOT_PUBLIC")]
    pub trust: Vec<PathBuf>,
    /// The deployment the bundle must come from
    #[arg(long, value_name = "DEPLOYMENT_ID")]
    pub deployment: Option<String>,
    /// The site's deployment key on record (base64url), from an earlier verification.
    /// A base64url key may begin with `-`, so the value is taken as it is.
    #[arg(
        long,
        value_name = "KEY",
        requires = "after_seq",
        allow_hyphen_values = true
    )]
    pub deployment_key: Option<String>,
    /// The last entry already imported: the bundle must continue after it
    #[arg(long, value_name = "N", requires = "after_hash")]
    pub after_seq: Option<u64>,
    /// The hash of that entry
    #[arg(long, value_name = "HEX", requires = "after_seq")]
    pub after_hash: Option<String>,
}

/// Reads a bundle file (up to [`MAX_BUNDLE_BYTES`]).
pub fn read_bundle(path: &Path) -> anyhow::Result<Vec<u8>> {
    mcpg_runtime::files::read_bounded(path, MAX_BUNDLE_BYTES as u64)
        .with_context(|| format!("cannot read usage bundle {}", path.display()))
}

/// The roots to check licenses with: the given ones, else the compiled-in vendor roots.
pub fn trust_store(paths: &[PathBuf]) -> anyhow::Result<TrustStore> {
    if paths.is_empty() {
        return Ok(TrustStore::new(
            vendor_roots().context("the compiled-in vendor roots")?,
        ));
    }
    let mut trust = TrustStore::default();
    for path in paths {
        trust.add_root(files::read_public_key(path)?);
    }
    Ok(trust)
}

/// The per-day and total figures of a verified bundle, as JSON.
pub fn summary_json(verified: &VerifiedBundle) -> Value {
    let mut totals: BTreeMap<String, PluginCounts> = BTreeMap::new();
    let mut days = Vec::new();
    let (mut active_days, mut peak) = (0u64, 0u32);
    for signed in &verified.entries {
        let e = &signed.entry;
        for (name, counts) in &e.plugins {
            totals.entry(name.clone()).or_default().add(*counts);
        }
        active_days += u64::from(e.gateways_active > 0);
        peak = peak.max(e.peak_gateways);
        days.push(json!({
            "seq": e.seq,
            "day": e.day,
            "license_id": e.license_id,
            "gateways_active": e.gateways_active,
            "peak_gateways": e.peak_gateways,
            "tokens": e.tokens,
            "plugins": e.plugins,
        }));
    }
    json!({
        "deployment_id": verified.deployment_id,
        "deployment_key": verified.deployment_key,
        "org": verified.org,
        "license": verified.license.lic,
        "license_sha256": verified.license_sha256,
        "from_genesis": verified.from_genesis,
        "already_imported": verified.already_imported,
        "days": verified.entries.len(),
        "first_day": verified.entries.first().map(|e| e.entry.day.clone()),
        "last_day": verified.entries.last().map(|e| e.entry.day.clone()),
        "active_days": active_days,
        "peak_gateways": peak,
        "plugins": totals,
        "entries": days,
        "chain": verified.chain,
    })
}

/// The summary as text lines.
pub fn summary_text(verified: &VerifiedBundle) -> String {
    let summary = summary_json(verified);
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut out = render::table(&[
        ("deployment", text(&summary["deployment_id"])),
        ("org", text(&summary["org"])),
        ("license", text(&summary["license"])),
        (
            "days",
            format!(
                "{} ({} to {}), {} with the gateway running, peak {} gateway(s)",
                summary["days"],
                text(&summary["first_day"]),
                text(&summary["last_day"]),
                summary["active_days"],
                summary["peak_gateways"]
            ),
        ),
        (
            "chain head",
            format!(
                "seq {} hash {} (next: --after-seq {} --after-hash {})",
                verified.chain.last_seq,
                verified.chain.last_hash,
                verified.chain.last_seq,
                verified.chain.last_hash
            ),
        ),
        ("deployment key", verified.deployment_key.clone()),
    ]);
    if verified.already_imported > 0 {
        out.push_str(&format!(
            "({} leading day(s) were verified before and are not counted again)\n",
            verified.already_imported
        ));
    }
    out.push_str("day         gw  peak  tokens  checks allowed / refused\n");
    for signed in &verified.entries {
        let e = &signed.entry;
        let (allowed, refused) = e.plugins.values().fold((0u64, 0u64), |(a, r), c| {
            (a.saturating_add(c.allowed), r.saturating_add(c.refused))
        });
        out.push_str(&format!(
            "{}  {:>3}  {:>4}  {:>6}  {allowed} / {refused}\n",
            e.day, e.gateways_active, e.peak_gateways, e.tokens
        ));
    }
    if let Some(plugins) = summary["plugins"].as_object()
        && !plugins.is_empty()
    {
        out.push_str("plugin totals:\n");
        for (name, counts) in plugins {
            out.push_str(&format!(
                "  {name}: {} allowed, {} refused\n",
                counts["allowed"], counts["refused"]
            ));
        }
    }
    out
}

/// `usage verify`.
pub fn run(command: &UsageCommand, output: Output) -> anyhow::Result<ExitCode> {
    let UsageCommand::Verify(args) = command;
    let bytes = read_bundle(&args.file)?;
    let license = args.license.as_deref().map(files::read_token).transpose()?;
    let trust = trust_store(&args.trust)?;
    let chain = match (args.after_seq, &args.after_hash) {
        (Some(last_seq), Some(last_hash)) => Some(ChainState {
            // Without the key on record, the bundle's own key is taken as it.
            deployment_key: match &args.deployment_key {
                Some(key) => key.clone(),
                None => peek_key(&bytes).unwrap_or_default(),
            },
            last_seq,
            last_hash: last_hash.clone(),
        }),
        _ => None,
    };
    let check = LicenseCheck {
        trust: &trust,
        license: license.as_deref(),
        deployment_id: args.deployment.as_deref(),
    };
    match verify_bundle(&bytes, chain.as_ref(), &check) {
        Ok(verified) => {
            if output.is_json() {
                let mut document = summary_json(&verified);
                document["valid"] = Value::Bool(true);
                println!("{}", serde_json::to_string_pretty(&document)?);
            } else {
                println!("VALID usage bundle");
                print!("{}", summary_text(&verified));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if output.is_json() {
                let document =
                    json!({"valid": false, "code": err.code(), "reason": err.to_string()});
                println!("{}", serde_json::to_string_pretty(&document)?);
            }
            eprintln!(
                "error: {} does not verify: {} [{}]",
                args.file.display(),
                err,
                err.code()
            );
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// The bundle's `deployment_key`, read without verifying anything.
fn peek_key(bytes: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    value["deployment_key"].as_str().map(str::to_owned)
}

/// Verifies `bytes` as the usage of `license` (renewal): the bundle must be this license's.
pub fn verify_for_license(
    bytes: &[u8],
    license: &str,
    deployment_id: Option<&str>,
    trust: &TrustStore,
) -> Result<VerifiedBundle, ReceiptError> {
    verify_bundle(
        bytes,
        None,
        &LicenseCheck {
            trust,
            license: Some(license),
            deployment_id,
        },
    )
}
