//! `certify`: a root's signed statement that an issuer key may issue tokens and licenses
//! for one issuer URL, within bounds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use mcpg_license_core::cert::DEFAULT_MAX_TOKEN_LIFETIME;
use mcpg_license_core::{
    Bounds, ClaimsError, EntitlementId, EntitlementSet, IssuerCertificate, PublicKey, SigningKey,
    Tier, TrustStore, UnixTime, Validity, VerifyError,
};
use mcpg_runtime::output::Output;
use thiserror::Error;

use super::custody::SignerArgs;
use super::issue::BACKDATE;
use super::parse_span;
use crate::files;
use crate::ids::random_id;
use crate::render;

pub(crate) const EXAMPLES: &str = "\
Examples:
  # The vendor's own federation key: any org, any entitlement, online tokens of 24 h
  mcpg-license certify --key root.secret.paserk --subject-key auth-2026.public.paserk \\
      --issuer https://auth.mcpg.dev --out auth-2026.cert

  # A BYOC issuer bounded to one org, Enterprise at most, without SAML
  mcpg-license certify --key root.secret.paserk --subject-key acme-issuer.public.paserk \\
      --issuer https://mcpg-auth.acme.example --org acme --max-tier enterprise \\
      --entitlement plugin:identity.oidc --entitlement feature:workspace.rbac \\
      --valid-for 180d --out acme-issuer.cert

  # An issuer key that may also sign one-year offline licenses: the lifetime bound
  # must cover them and the certificate must outlive them
  mcpg-license certify --key root.secret.paserk --subject-key acme-issuer.public.paserk \\
      --issuer https://mcpg-auth.acme.example --org acme \\
      --max-token-lifetime 366d --valid-for 730d --out acme-issuer.cert

No --org means any org; no --entitlement means any entitlement.";

/// Arguments of `certify`.
#[derive(Debug, Args)]
pub struct CertifyArgs {
    /// The root that signs: --key, or --share repeated
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Public key being certified (k4.public PASERK, PEM or JWK)
    #[arg(long, value_name = "PUBLIC")]
    pub subject_key: PathBuf,
    /// Issuer URL the certified key's tokens must carry as `iss`
    #[arg(long, value_name = "URL")]
    pub issuer: String,
    /// Org the key may issue for (repeatable); none means any org
    #[arg(long = "org", value_name = "ORG")]
    pub orgs: Vec<String>,
    /// Highest tier the key may grant
    #[arg(long, value_name = "TIER", default_value = "enterprise")]
    pub max_tier: Tier,
    /// Entitlement the key may grant (repeatable); none means any
    #[arg(long = "entitlement", value_name = "ID")]
    pub entitlements: Vec<EntitlementId>,
    /// Longest lifetime (exp - iat) of a token or license signed by the key
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_span)]
    pub max_token_lifetime: i64,
    /// Longest grace (grc - exp) an online token may carry
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_span)]
    pub max_grace: i64,
    /// How long the certificate is valid, from now
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = parse_span)]
    pub valid_for: i64,
    /// Where to write the certificate
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace --out if it exists
    #[arg(long)]
    pub force: bool,
}

/// Everything needed to sign a certificate, resolved from the command line.
#[derive(Debug, Clone)]
pub struct CertificateRequest {
    /// The root that signs.
    pub root: SigningKey,
    /// The key being certified.
    pub subject: PublicKey,
    /// Issuer URL.
    pub issuer: String,
    /// The bounds.
    pub bounds: Bounds,
    /// Validity in seconds from now.
    pub valid_for: i64,
}

/// A signed certificate.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// The PASETO.
    pub token: String,
    /// What it says.
    pub certificate: IssuerCertificate,
}

/// Why a certificate was not made.
#[derive(Debug, Error)]
pub enum CertifyError {
    /// The issuer is not an http(s) URL.
    #[error("--issuer {0:?} must be an https:// (or http:// for local tests) URL")]
    Issuer(String),
    /// An org name is empty, too long or has control characters or spaces.
    #[error("--org {0:?} is not a valid org id")]
    Org(String),
    /// Invalid times or bounds.
    #[error("invalid certificate: {0}")]
    Claims(ClaimsError),
    /// The signed certificate does not verify with the root.
    #[error("the signed certificate fails its own check: {0} [{code}]", code = .0.code())]
    SelfCheck(VerifyError),
    /// The random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Signs a certificate for `request` at `now` and checks it against the root.
pub fn certify(
    request: &CertificateRequest,
    now: UnixTime,
) -> Result<IssuedCertificate, CertifyError> {
    let issuer = &request.issuer;
    let host = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"));
    if host.is_none_or(|h| h.is_empty() || h.chars().any(|c| c.is_whitespace() || c.is_control())) {
        return Err(CertifyError::Issuer(issuer.clone()));
    }
    for org in request.bounds.orgs.iter().flatten() {
        if org.is_empty()
            || org.len() > 256
            || org.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(CertifyError::Org(org.clone()));
        }
    }
    let certificate = IssuerCertificate {
        cid: random_id("cert").map_err(|_| CertifyError::Random)?,
        issuer: issuer.clone(),
        key: request.subject.clone(),
        iat: now,
        nbf: now - BACKDATE,
        exp: now.saturating_add(request.valid_for),
        bounds: request.bounds.clone(),
    };
    let token = certificate
        .sign(&request.root)
        .map_err(CertifyError::Claims)?;
    TrustStore::new([request.root.public_key().clone()])
        .verify_certificate(&token, now, Validity::Strict)
        .map_err(CertifyError::SelfCheck)?;
    Ok(IssuedCertificate { token, certificate })
}

impl CertifyArgs {
    /// Reads the keys and builds the bounds: the request to sign.
    pub fn resolve(&self) -> anyhow::Result<CertificateRequest> {
        let subject = files::read_public_key(&self.subject_key)?;
        let root = self.signer.load()?;
        if subject.kid() == root.kid() {
            bail!(
                "--subject-key is the root key itself: gateways trust roots directly, certify an issuer key instead"
            );
        }
        let bounds = Bounds {
            orgs: (!self.orgs.is_empty()).then(|| self.orgs.clone()),
            max_tier: self.max_tier,
            entitlements: (!self.entitlements.is_empty()).then(|| {
                self.entitlements
                    .iter()
                    .cloned()
                    .collect::<EntitlementSet>()
            }),
            max_token_lifetime: self.max_token_lifetime,
            max_grace: self.max_grace,
        };
        Ok(CertificateRequest {
            root,
            subject,
            issuer: self.issuer.clone(),
            bounds,
            valid_for: self.valid_for,
        })
    }
}

/// `certify`.
pub fn run(args: &CertifyArgs, now: UnixTime, output: Output) -> anyhow::Result<ExitCode> {
    files::check_output(&args.out, args.force)?;
    let request = args.resolve()?;
    let issued = certify(&request, now).context("certificate not made")?;
    files::write_token(&args.out, &issued.token, args.force)?;
    if output.is_json() {
        let document = serde_json::json!({
            "certificate": render::certificate_json(&issued.certificate),
            "signed_by": request.root.kid().to_string(),
            "written_to": args.out.display().to_string(),
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print!("{}", render::certificate_text(&issued.certificate, now));
        println!("  {:<13}  {}", "signed by", request.root.kid());
        println!("  {:<13}  {}", "written to", args.out.display());
    }
    if args.max_token_lifetime == DEFAULT_MAX_TOKEN_LIFETIME {
        // Advice, not data: stderr, so `-o json` output stays one document.
        eprintln!(
            "note: the default 24h lifetime bound suits online tokens; offline licenses signed with this key need --max-token-lifetime of at least their --valid-for"
        );
    }
    Ok(ExitCode::SUCCESS)
}
