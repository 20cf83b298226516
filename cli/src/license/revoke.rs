//! `revoke`: a root-signed revocation list naming certificates and offline licenses that
//! must no longer be accepted, even during grace.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use mcpg_license_core::{RevocationList, TrustStore, UnixTime};

use mcpg_runtime::output::Output;

use super::custody::SignerArgs;
use crate::files;

pub(crate) const EXAMPLES: &str = "\
Examples:
  # Revoke a BYOC issuer's certificate and one offline license; serial 1
  mcpg-license revoke --key root.secret.paserk --serial 1 \\
      --certificate cert_5v2k9d3m1q8w7e6r4t0y2u1i3o --license lic_8h3j5k2l9z1x4c7v6b0n3m2q1w \\
      --out revocations-0001.paseto

  # The next list must carry a higher serial and repeat what stays revoked
  mcpg-license revoke --key root.secret.paserk --serial 2 --previous revocations-0001.paseto \\
      --license lic_0a9s8d7f6g5h4j3k2l1z0x9c8v --out revocations-0002.paseto

  # Check a license against the list
  mcpg-license verify acme.license --trust root.public.paserk --revocations revocations-0002.paseto

Each list replaces the previous one: gateways keep the highest serial they have seen
and ignore older lists, so a list must name everything that is still revoked.";

/// Arguments of `revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The root that signs: --key, or --share repeated
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Serial of this list; must be higher than every earlier list's
    #[arg(long)]
    pub serial: u64,
    /// Certificate id to revoke (repeatable)
    #[arg(long = "certificate", value_name = "CERT_ID")]
    pub certificates: Vec<String>,
    /// Offline license id to revoke (repeatable)
    #[arg(long = "license", value_name = "LICENSE_ID")]
    pub licenses: Vec<String>,
    /// Carry over every id of this earlier list (its serial must be lower)
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,
    /// Where to write the list
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace --out if it exists
    #[arg(long)]
    pub force: bool,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `revoke`.
pub fn run(args: &RevokeArgs, now: UnixTime, output: Output) -> anyhow::Result<ExitCode> {
    files::check_output(&args.out, args.force)?;
    // Everything that can be checked without the root is checked before a passphrase is asked.
    for id in args.certificates.iter().chain(&args.licenses) {
        if !valid_id(id) {
            bail!("{id:?} is not a certificate or license id (e.g. cert_… or lic_…)");
        }
    }
    if args.certificates.is_empty() && args.licenses.is_empty() && args.previous.is_none() {
        bail!("nothing to revoke: give --certificate or --license (or --previous)");
    }
    let previous = args
        .previous
        .as_deref()
        .map(files::read_token)
        .transpose()?;
    let root = args.signer.load()?;
    let mut list = RevocationList {
        serial: args.serial,
        iat: now,
        certificates: HashSet::new(),
        licenses: HashSet::new(),
    };
    if let (Some(previous), Some(token)) = (&args.previous, previous) {
        let trust = TrustStore::new([root.public_key().clone()]);
        let earlier = trust.verify_revocation_list(&token).with_context(|| {
            format!(
                "{} is not a revocation list signed by this root",
                previous.display()
            )
        })?;
        if earlier.serial >= args.serial {
            bail!(
                "--serial {} must be higher than the previous list's serial {}",
                args.serial,
                earlier.serial
            );
        }
        list.certificates.extend(earlier.certificates);
        list.licenses.extend(earlier.licenses);
    }
    list.certificates.extend(args.certificates.iter().cloned());
    list.licenses.extend(args.licenses.iter().cloned());
    if list.certificates.is_empty() && list.licenses.is_empty() {
        bail!("nothing to revoke: give --certificate or --license (or --previous)");
    }
    let token = list.sign(&root)?;
    files::write_token(&args.out, &token, args.force)?;
    if output.is_json() {
        let document = serde_json::json!({
            "serial": list.serial,
            "certificates": sorted(&list.certificates),
            "licenses": sorted(&list.licenses),
            "written_to": args.out.display().to_string(),
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "revocation list serial {} ({} certificates, {} licenses) written to {}",
        list.serial,
        list.certificates.len(),
        list.licenses.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The ids of a set in order, so the JSON output is stable.
fn sorted(ids: &HashSet<String>) -> Vec<&str> {
    let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids
}
