//! `verify`: check an offline license or an issuer certificate the way a gateway does,
//! against pinned roots only, and give a verdict with a stable reason code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mcpg_license_core::{
    LicenseSigner, TrustStore, UnixTime, Unverified, Validity, VerifyError, decode_unverified,
};
use mcpg_runtime::output::Output;
use serde::Serialize;
use serde_json::{Value, json};

use super::{EXIT_INVALID, parse_time};
use crate::files;
use crate::render;

pub(crate) const EXAMPLES: &str = "\
Examples:
  # A license, as a gateway pinning the vendor root would check it
  mcpg-license verify acme.license --trust keys/mcpg-root-2026.public.paserk

  # Will it still be valid next year, on deployment dep-7f3a? (machine-readable verdict)
  mcpg-license verify acme.license --trust root.public.paserk \\
      --at 2027-06-01T00:00:00Z --bind dep-7f3a -o json

  # An issuer certificate
  mcpg-license verify acme-issuer.cert --trust root.public.paserk

Exit 0: valid. Exit 1: not valid; stderr has one `error:` line ending in the reason
code, e.g. [expired], [unknown_key], [untrusted_root], [bounds_exceeded],
[binding_mismatch], [bad_signature], [malformed]. Exit 2: the file or a --trust key
could not be read. -o json prints on stdout:
  {\"valid\":bool,\"kind\":\"license\"|\"certificate\",\"code\":..,\"reason\":..,
   \"claims\":{..},\"signer\":{..}}";

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The offline license or issuer certificate to check
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Trusted root public key (k4.public PASERK, PEM or JWK); repeatable
    #[arg(long, value_name = "ROOT_PUBLIC", required = true, num_args = 1..)]
    pub trust: Vec<PathBuf>,
    /// Check at this time instead of now (RFC 3339)
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub at: Option<UnixTime>,
    /// A revocation list (from `mcpg-license revoke`) to apply first
    #[arg(long, value_name = "FILE")]
    pub revocations: Option<PathBuf>,
    /// This deployment's id, for licenses bound to one
    #[arg(long, value_name = "DEPLOYMENT_ID")]
    pub bind: Option<String>,
    /// The same as `-o json` (kept for scripts written before `--output`)
    #[arg(long, hide = true)]
    pub json: bool,
}

/// What kind of artifact was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An offline license.
    License,
    /// An issuer certificate.
    Certificate,
    /// An online JWT (not verifiable here: it needs its signing key's certificate).
    OnlineToken,
    /// Not decodable as any of them.
    Unknown,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::License => "license",
            Kind::Certificate => "certificate",
            Kind::OnlineToken => "online token",
            Kind::Unknown => "file",
        }
    }
}

/// The outcome of `verify`, as printed by `-o json`.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Whether the artifact is valid.
    pub valid: bool,
    /// What it is.
    pub kind: Kind,
    /// The [`VerifyError::code`] when invalid.
    pub code: Option<&'static str>,
    /// The reason in words when invalid.
    pub reason: Option<String>,
    /// The verified claims (license) or contents (certificate); `null` when invalid.
    pub claims: Option<Value>,
    /// Who signed it: the root kid, plus the certificate for certified keys.
    pub signer: Option<Value>,
}

impl Verdict {
    fn invalid(kind: Kind, err: &VerifyError) -> Self {
        Self {
            valid: false,
            kind,
            code: Some(err.code()),
            reason: Some(err.to_string()),
            claims: None,
            signer: None,
        }
    }

    fn valid(kind: Kind, claims: Value, signer: Value) -> Self {
        Self {
            valid: true,
            kind,
            code: None,
            reason: None,
            claims: Some(claims),
            signer: Some(signer),
        }
    }
}

/// Verifies `token` (an offline license or a certificate) against `trust` at `now`.
pub fn verify_artifact(
    token: &str,
    trust: &TrustStore,
    now: UnixTime,
    deployment_id: Option<&str>,
) -> Verdict {
    match decode_unverified(token) {
        Ok(Unverified::Certificate { .. }) => {
            match trust.verify_certificate(token, now, Validity::Strict) {
                Ok(issuer) => Verdict::valid(
                    Kind::Certificate,
                    render::certificate_json(issuer.certificate()),
                    json!({ "root": issuer.root().as_str() }),
                ),
                Err(err) => Verdict::invalid(Kind::Certificate, &err),
            }
        }
        Ok(Unverified::OfflineLicense { .. }) => {
            match trust.verify_offline_license(token, now, deployment_id) {
                Ok(license) => {
                    let signer = match &license.signer {
                        LicenseSigner::Root(kid) => json!({ "root": kid.as_str() }),
                        LicenseSigner::Certified(issuer) => json!({
                            "root": issuer.root().as_str(),
                            "kid": issuer.kid().as_str(),
                            "certificate": issuer.certificate().cid,
                            "issuer": issuer.certificate().issuer,
                        }),
                    };
                    Verdict::valid(Kind::License, render::claims_json(&license.claims), signer)
                }
                Err(err) => Verdict::invalid(Kind::License, &err),
            }
        }
        Ok(Unverified::OnlineToken(_)) => Verdict::invalid(
            Kind::OnlineToken,
            &VerifyError::WrongType {
                expected: "offline license or issuer certificate",
                found: "online JWT (gateways verify those with the signing key's certificate)"
                    .into(),
            },
        ),
        // Undecodable: a signature failure is the truer reason when there is one (a
        // tampered payload is usually also garbled), so let the verifier speak first.
        Err(err) => match trust.verify_offline_license(token, now, deployment_id) {
            Err(VerifyError::Malformed(_) | VerifyError::WrongType { .. }) | Ok(_) => {
                Verdict::invalid(Kind::Unknown, &err)
            }
            Err(verify_err) => Verdict::invalid(Kind::Unknown, &verify_err),
        },
    }
}

/// `verify`.
pub fn run(args: &VerifyArgs, now: UnixTime, output: Output) -> anyhow::Result<ExitCode> {
    let mut trust = TrustStore::default();
    for path in &args.trust {
        trust.add_root(files::read_public_key(path)?);
    }
    if let Some(path) = &args.revocations {
        let list = files::read_token(path)?;
        trust.apply_revocation_list(&list).map_err(|err| {
            anyhow::anyhow!(
                "{} is not a revocation list signed by a trusted root: {err} [{}]",
                path.display(),
                err.code()
            )
        })?;
    }
    let token = files::read_token(&args.file)?;
    let at = args.at.unwrap_or(now);
    let verdict = verify_artifact(&token, &trust, at, args.bind.as_deref());
    let json = output.or_json(args.json).is_json();
    if json {
        println!("{}", serde_json::to_string_pretty(&verdict)?);
    }
    if !verdict.valid {
        eprintln!(
            "error: {} {} is not valid: {} [{}]",
            verdict.kind.noun(),
            args.file.display(),
            verdict.reason.as_deref().unwrap_or("unknown reason"),
            verdict.code.unwrap_or("invalid"),
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    if !json {
        print_valid(&verdict, &token, at);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_valid(verdict: &Verdict, token: &str, at: UnixTime) {
    let signer = verdict.signer.as_ref().unwrap_or(&Value::Null);
    let root = signer["root"].as_str().unwrap_or("?");
    match decode_unverified(token) {
        Ok(Unverified::OfflineLicense {
            claims,
            certificate,
            ..
        }) => {
            println!("VALID offline license");
            print!("{}", render::claims_text(&claims, at));
            match certificate {
                Some(cert) => println!(
                    "  signed by {} (certificate {} for {}), certified by root {root}",
                    cert.key.kid(),
                    cert.cid,
                    cert.issuer
                ),
                None => println!("  signed by root {root}"),
            }
        }
        Ok(Unverified::Certificate { certificate, .. }) => {
            println!("VALID issuer certificate");
            print!("{}", render::certificate_text(&certificate, at));
            println!("  signed by root {root}");
        }
        _ => println!("VALID"),
    }
}
