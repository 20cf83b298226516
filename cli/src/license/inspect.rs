//! `inspect`: show what a license, certificate or online token claims, without checking
//! any signature — every output says UNVERIFIED.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use mcpg_license_core::{UnixTime, Unverified, decode_unverified};
use mcpg_runtime::output::Output;
use serde_json::json;

use crate::files;
use crate::render;

pub(crate) const EXAMPLES: &str = "\
Examples:
  mcpg-license inspect acme.license
  mcpg-license inspect acme-issuer.cert -o json | jq .days_to_expiry
  mcpg-license inspect token.jwt          # an online token from mcpg-auth

Nothing is verified: use `mcpg-license verify` to trust what you read.";

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Offline license, issuer certificate or online JWT
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The same as `-o json` (kept for scripts written before `--output`)
    #[arg(long, hide = true)]
    pub json: bool,
}

/// `inspect`.
pub fn run(args: &InspectArgs, now: UnixTime, output: Output) -> anyhow::Result<ExitCode> {
    let token = files::read_token(&args.file)?;
    let decoded = decode_unverified(&token).with_context(|| {
        format!(
            "{} is not a license, certificate or token",
            args.file.display()
        )
    })?;
    if output.or_json(args.json).is_json() {
        println!(
            "{}",
            serde_json::to_string_pretty(&inspect_json(&decoded, now))?
        );
    } else {
        print!("{}", inspect_text(&decoded, now));
    }
    Ok(ExitCode::SUCCESS)
}

/// The `-o json` document: `verified` is always `false`.
pub fn inspect_json(decoded: &Unverified, now: UnixTime) -> serde_json::Value {
    match decoded {
        Unverified::OnlineToken(claims) => json!({
            "verified": false,
            "kind": "online_token",
            "claims": render::claims_json(claims),
            "days_to_expiry": render::days_to_expiry(claims.exp, now),
            "expired": now >= claims.exp,
        }),
        Unverified::OfflineLicense {
            claims,
            kid,
            certificate,
        } => json!({
            "verified": false,
            "kind": "license",
            "kid": kid,
            "claims": render::claims_json(claims),
            "certificate": certificate.as_deref().map(render::certificate_json),
            "days_to_expiry": render::days_to_expiry(claims.exp, now),
            "expired": now >= claims.exp,
        }),
        Unverified::Certificate {
            certificate,
            root_kid,
        } => json!({
            "verified": false,
            "kind": "certificate",
            "root_kid": root_kid,
            "claims": render::certificate_json(certificate),
            "days_to_expiry": render::days_to_expiry(certificate.exp, now),
            "expired": now >= certificate.exp,
        }),
    }
}

/// The human-readable report.
pub fn inspect_text(decoded: &Unverified, now: UnixTime) -> String {
    const WARNING: &str = "UNVERIFIED: signature not checked (use `mcpg-license verify`)";
    match decoded {
        Unverified::OnlineToken(claims) => {
            format!(
                "online token  {WARNING}\n{}",
                render::claims_text(claims, now)
            )
        }
        Unverified::OfflineLicense {
            claims,
            kid,
            certificate,
        } => {
            let mut out = format!(
                "offline license  {WARNING}\n{}  {:<12}  {kid}\n",
                render::claims_text(claims, now),
                "signing key"
            );
            if let Some(cert) = certificate {
                out.push_str("embedded issuer certificate (UNVERIFIED)\n");
                out.push_str(&render::certificate_text(cert, now));
            }
            out
        }
        Unverified::Certificate {
            certificate,
            root_kid,
        } => format!(
            "issuer certificate  {WARNING}\n{}  {:<13}  {root_kid}\n",
            render::certificate_text(certificate, now),
            "signed by"
        ),
    }
}
