//! `issue`: sign an offline license with a root key, or with a certified issuer key whose
//! certificate travels in the license's footer.
//!
//! Nothing is written before the fresh license has been checked: against a trust store
//! holding the signing key when a root signs, against the certificate's validity and
//! bounds when an issuer key signs. A license a gateway would refuse is never written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::{
    AUDIENCE, BoundsViolation, Catalog, ClaimsError, EntitlementId, IssuerCertificate,
    LicenseClaims, Limits, SigningKey, Tier, TrustStore, UnixTime, Unverified, VerifyError,
    decode_unverified, issue_offline_license,
};
use mcpg_runtime::output::Output;
use thiserror::Error;

use super::custody::SignerArgs;
use super::{parse_span, parse_time};
use crate::files;
use crate::ids::random_id;
use crate::render;

/// The `iss` of licenses signed without a certificate and without `--issuer`.
pub const DEFAULT_ISSUER: &str = "https://license.mcpg.dev";

/// How far `nbf` is set before now: pasetors has no leeway, and an air-gapped site's clock
/// may run a little behind the signing machine's.
pub const BACKDATE: i64 = 60;

pub(crate) const EXAMPLES: &str = "\
Examples:
  # A one-year Team license signed by a root
  mcpg-license issue --key root.secret.paserk --org acme --tier team --out acme.license

  # Enterprise without SAML, with Cedar policies added, quotas, bound to one deployment
  mcpg-license issue --key root.secret.paserk --org acme --tier enterprise \\
      --without plugin:identity.saml --entitlement plugin:policy.cedar \\
      --limit max_gateways=50 --limit rps=200 --bind dep-7f3a --out acme.license

  # Signed by a BYOC issuer key: its certificate rides in the license, and the license
  # must lie within the certificate's bounds (org, tier, entitlements, lifetime, expiry)
  mcpg-license issue --key acme-issuer.secret.paserk --certificate acme-issuer.cert \\
      --org acme --tier team --valid-for 90d --out acme.license

  # Next year's license of a sovereign site, from its verified usage bundle
  mcpg-license issue --key root.secret.paserk --renew acme.license \
      --usage usage.json --out acme-2028.license

The license id (lic_...) is both `sub` and `lic`. nbf is backdated 60 s for clock skew.
Entitlements are the tier's defaults, plus --entitlement, minus --without (with --renew:
the renewed license's, plus --entitlement, minus --without).";

/// Arguments of `issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The key that signs (a root, or a certified key): --key, or --share repeated
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Issuer certificate of --key, when --key is not a root (embedded in the license)
    #[arg(long, value_name = "CERT")]
    pub certificate: Option<PathBuf>,
    /// Organisation the license is for (with --renew: the renewed license's, and only it)
    #[arg(long, required_unless_present = "renew")]
    pub org: Option<String>,
    /// Tier: free, team or enterprise (with --renew: default the renewed license's)
    #[arg(long, required_unless_present = "renew")]
    pub tier: Option<Tier>,
    /// Grant an entitlement beyond the tier's defaults (repeatable)
    #[arg(long = "entitlement", value_name = "ID")]
    pub add: Vec<EntitlementId>,
    /// Remove an entitlement from the tier's defaults (repeatable)
    #[arg(long = "without", value_name = "ID")]
    pub remove: Vec<EntitlementId>,
    /// Set a limit: max_gateways, max_workspaces, max_environments or rps (repeatable)
    #[arg(long = "limit", value_name = "KEY=VALUE")]
    pub limits: Vec<String>,
    /// Accept entitlement ids the built-in plugin catalog does not know (a plugin that
    /// ships later); without it they are refused
    #[arg(long = "allow-future-entitlement")]
    pub allow_future_entitlements: bool,
    /// How long the license is valid, from --not-before or from now
    #[arg(long, value_name = "DURATION", default_value = "365d", value_parser = parse_span)]
    pub valid_for: i64,
    /// Start of validity (RFC 3339); default: now minus 60 s
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub not_before: Option<UnixTime>,
    /// Bind the license to one deployment id; gateways must be configured with it
    #[arg(long, value_name = "DEPLOYMENT_ID")]
    pub bind: Option<String>,
    /// Issuer URL (`iss`); default: the certificate's issuer, else `https://license.mcpg.dev`
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Workspace the license is for (optional)
    #[arg(long, value_name = "WS")]
    pub workspace: Option<String>,
    /// Environment the license is for (optional)
    #[arg(long, value_name = "ENV")]
    pub environment: Option<String>,
    /// Renew this license: the same org and deployment, and its tier, entitlements, limits,
    /// workspace and environment unless other flags change them; valid from its expiry
    /// (or from now, if it has expired) unless --not-before says otherwise
    #[arg(long, value_name = "FILE.license", requires = "usage")]
    pub renew: Option<PathBuf>,
    /// With --renew: the site's usage bundle (`mcpg-entitlements usage export`); it must
    /// verify and belong to the renewed license and its deployment
    #[arg(long, value_name = "BUNDLE", requires = "renew")]
    pub usage: Option<PathBuf>,
    /// With --renew: a trusted root for the renewed license (repeatable); default: the
    /// vendor roots and the public half of the signing key
    #[arg(long, value_name = "ROOT_PUBLIC", requires = "renew")]
    pub trust: Vec<PathBuf>,
    /// Where to write the license
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace --out if it exists
    #[arg(long)]
    pub force: bool,
}

/// An issuer certificate as read from a file: the token to embed and what it says.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The certificate as a PASETO, embedded verbatim in the license footer.
    pub token: String,
    /// Its decoded contents (not verified here: the license's verifier checks the chain).
    pub decoded: IssuerCertificate,
}

/// Everything needed to sign a license, resolved from the command line.
#[derive(Debug, Clone)]
pub struct LicenseRequest {
    /// The signing key.
    pub key: SigningKey,
    /// Its certificate, when the key is not a root.
    pub certificate: Option<Certificate>,
    /// `org`.
    pub org: String,
    /// `ws`.
    pub workspace: Option<String>,
    /// `env`.
    pub environment: Option<String>,
    /// `tier`.
    pub tier: Tier,
    /// Entitlements added to the tier's defaults.
    pub add: Vec<EntitlementId>,
    /// Entitlements removed from the tier's defaults.
    pub remove: Vec<EntitlementId>,
    /// `lim`.
    pub limits: Limits,
    /// Validity in seconds.
    pub valid_for: i64,
    /// Explicit start of validity.
    pub not_before: Option<UnixTime>,
    /// `bind`.
    pub bind: Option<String>,
    /// Explicit `iss`.
    pub issuer: Option<String>,
}

/// A signed license and its claims.
#[derive(Debug, Clone)]
pub struct IssuedLicense {
    /// The PASETO.
    pub token: String,
    /// What it says.
    pub claims: LicenseClaims,
    /// Things worth telling the operator that do not stop issuing.
    pub warnings: Vec<String>,
}

/// Why a license was not issued.
#[derive(Debug, Error)]
pub enum IssueError {
    /// The certificate certifies another key than the signing key.
    #[error("the certificate certifies key {certified}, but --key is {signing}")]
    ForeignCertificate {
        /// The certified key.
        certified: String,
        /// The signing key.
        signing: String,
    },
    /// The certificate has expired.
    #[error("the issuer certificate expired at {}", to_rfc3339(*.0))]
    CertificateExpired(UnixTime),
    /// The certificate is not valid yet.
    #[error("the issuer certificate is not valid before {}", to_rfc3339(*.0))]
    CertificateNotYetValid(UnixTime),
    /// The license would lie outside the certificate's bounds.
    #[error("the license would be outside the issuer certificate's bounds: {0} [{code}]", code = .0.code())]
    OutsideBounds(BoundsViolation),
    /// The license would have expired before it is issued.
    #[error("the license would already have expired at {} (--not-before plus --valid-for lies in the past)", to_rfc3339(*.0))]
    AlreadyExpired(UnixTime),
    /// The claims are invalid.
    #[error("invalid license claims: {0}")]
    Claims(ClaimsError),
    /// The signed license does not verify with the signing key.
    #[error("the signed license fails its own check: {0} [{code}]", code = .0.code())]
    SelfCheck(VerifyError),
    /// The time arithmetic overflowed (a --valid-for of centuries).
    #[error("--valid-for is too long")]
    TimeOverflow,
    /// The random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

impl From<BoundsViolation> for IssueError {
    fn from(violation: BoundsViolation) -> Self {
        IssueError::OutsideBounds(violation)
    }
}

impl From<ClaimsError> for IssueError {
    fn from(err: ClaimsError) -> Self {
        IssueError::Claims(err)
    }
}

impl From<VerifyError> for IssueError {
    fn from(err: VerifyError) -> Self {
        IssueError::SelfCheck(err)
    }
}

/// Signs a license for `request` at time `now`, after checking it as a gateway would.
pub fn issue_license(request: &LicenseRequest, now: UnixTime) -> Result<IssuedLicense, IssueError> {
    let catalog = Catalog::builtin();
    let mut warnings = Vec::new();
    for id in request.add.iter().chain(&request.remove) {
        if !catalog.plugins().iter().any(|p| p.entitlement == *id) {
            warnings.push(format!(
                "{id} is not in the built-in plugin catalog (version {})",
                catalog.version()
            ));
        }
    }
    let iss = match (&request.issuer, &request.certificate) {
        (Some(issuer), _) => issuer.clone(),
        (None, Some(cert)) => cert.decoded.issuer.clone(),
        (None, None) => DEFAULT_ISSUER.to_owned(),
    };
    let nbf = request.not_before.unwrap_or(now - BACKDATE);
    let start = request.not_before.unwrap_or(now);
    let exp = start
        .checked_add(request.valid_for)
        .ok_or(IssueError::TimeOverflow)?;
    if exp <= now {
        return Err(IssueError::AlreadyExpired(exp));
    }
    let lic = random_id("lic").map_err(|_| IssueError::Random)?;
    let claims = LicenseClaims {
        iss,
        sub: lic.clone(),
        aud: AUDIENCE.to_owned(),
        iat: now,
        nbf,
        exp,
        jti: random_id("jti").map_err(|_| IssueError::Random)?,
        org: request.org.clone(),
        ws: request.workspace.clone(),
        env: request.environment.clone(),
        tier: request.tier,
        ent: catalog.license_entitlements(request.tier, &request.add, &request.remove),
        lim: request.limits,
        lic,
        rfa: None,
        grc: None,
        bind: request.bind.clone(),
        ps: None,
    };
    claims.validate()?;
    let certificate = request.certificate.as_ref();
    if let Some(cert) = certificate {
        check_certificate(&cert.decoded, &request.key, &claims, now)?;
    }
    let token =
        issue_offline_license(&claims, &request.key, certificate.map(|c| c.token.as_str()))?;
    if certificate.is_none() {
        // Verify as a gateway pinning this root would, at the start of validity (or now).
        let trust = TrustStore::new([request.key.public_key().clone()]);
        trust.verify_offline_license(&token, now.max(nbf), claims.bind.as_deref())?;
    }
    Ok(IssuedLicense {
        token,
        claims,
        warnings,
    })
}

fn check_certificate(
    cert: &IssuerCertificate,
    key: &SigningKey,
    claims: &LicenseClaims,
    now: UnixTime,
) -> Result<(), IssueError> {
    if cert.key.kid() != key.kid() {
        return Err(IssueError::ForeignCertificate {
            certified: cert.key.kid().to_string(),
            signing: key.kid().to_string(),
        });
    }
    if now >= cert.exp {
        return Err(IssueError::CertificateExpired(cert.exp));
    }
    if now < cert.nbf - mcpg_license_core::LEEWAY {
        return Err(IssueError::CertificateNotYetValid(cert.nbf));
    }
    cert.check_bounds(claims)?;
    Ok(())
}

/// Reads an issuer certificate file.
pub fn read_certificate(path: &Path) -> anyhow::Result<Certificate> {
    let token = files::read_token(path)?;
    let what = |kind: &str| format!("{} is {kind}, not an issuer certificate", path.display());
    match decode_unverified(&token) {
        Ok(Unverified::Certificate { certificate, .. }) => Ok(Certificate {
            token,
            decoded: *certificate,
        }),
        Ok(Unverified::OfflineLicense { .. }) => bail!(what("an offline license")),
        Ok(Unverified::OnlineToken(_)) => bail!(what("an online token")),
        Err(err) => {
            Err(err).with_context(|| format!("{} is not an issuer certificate", path.display()))
        }
    }
}

impl IssueArgs {
    /// Reads the key and certificate and checks limits: the request to sign.
    pub fn resolve(&self) -> anyhow::Result<LicenseRequest> {
        Ok(self.resolve_renewal(0)?.0)
    }

    /// Like [`IssueArgs::resolve`], and with `--renew` the verified renewal the request
    /// continues (the new license starts at the renewed one's expiry, or at `now`).
    pub fn resolve_renewal(
        &self,
        now: UnixTime,
    ) -> anyhow::Result<(LicenseRequest, Option<super::renew::Renewal>)> {
        if !self.allow_future_entitlements {
            Catalog::builtin()
                .check_known(self.add.iter().chain(&self.remove))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{e} [unknown_entitlement]; fix the id, or pass \
                         --allow-future-entitlement for a plugin that ships later"
                    )
                })?;
        }
        let certificate = self
            .certificate
            .as_deref()
            .map(read_certificate)
            .transpose()?;
        let mut limits = Limits::default();
        // With --renew the key is read first: the renewed license may be signed by it,
        // and the usage bundle is checked against it before anything else is done.
        let (early_key, renewal) = match (&self.renew, &self.usage) {
            (Some(license), Some(usage)) => {
                let key = self.signer.load()?;
                let renewal = super::renew::load(license, usage, &self.trust, &key)?;
                limits = renewal.old.lim;
                (Some(key), Some(renewal))
            }
            _ => (None, None),
        };
        for assignment in &self.limits {
            limits
                .apply_assignment(assignment)
                .context("invalid --limit")?;
        }
        // Last: a passphrase is asked only once everything else is known to be right.
        let key = match early_key {
            Some(key) => key,
            None => self.signer.load()?,
        };
        let request = match &renewal {
            None => LicenseRequest {
                key,
                certificate,
                org: self.org.clone().context("--org is required")?,
                workspace: self.workspace.clone(),
                environment: self.environment.clone(),
                tier: self.tier.context("--tier is required")?,
                add: self.add.clone(),
                remove: self.remove.clone(),
                limits,
                valid_for: self.valid_for,
                not_before: self.not_before,
                bind: self.bind.clone(),
                issuer: self.issuer.clone(),
            },
            Some(renewal) => super::renew::request(self, renewal, key, certificate, limits, now)?,
        };
        Ok((request, renewal))
    }
}

/// `issue`.
pub fn run(args: &IssueArgs, now: UnixTime, output: Output) -> anyhow::Result<ExitCode> {
    files::check_output(&args.out, args.force)?;
    let (request, renewal) = args.resolve_renewal(now)?;
    let issued = issue_license(&request, now).context("license not issued")?;
    for warning in &issued.warnings {
        eprintln!("warning: {warning}");
    }
    files::write_token(&args.out, &issued.token, args.force)?;
    let claims = &issued.claims;
    let signer = match &request.certificate {
        Some(cert) => format!("{} (certificate {})", request.key.kid(), cert.decoded.cid),
        None => request.key.kid().to_string(),
    };
    if output.is_json() {
        let document = serde_json::json!({
            "license": claims.lic,
            "claims": render::claims_json(claims),
            "signed_by": request.key.kid().to_string(),
            "certificate": request.certificate.as_ref().map(|c| c.decoded.cid.to_string()),
            "written_to": args.out.display().to_string(),
            "renews": renewal.as_ref().map(|r| r.old.lic.clone()),
            "usage": renewal.as_ref().map(|r| super::usage::summary_json(&r.usage)),
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!(
        "{}",
        render::table(&[
            ("license", claims.lic.clone()),
            ("org", claims.org.clone()),
            ("tier", claims.tier.to_string()),
            ("expires", render::expiry(claims.exp, now)),
            ("signed by", signer),
            ("written to", args.out.display().to_string()),
        ])
    );
    if let Some(renewal) = &renewal {
        println!(
            "renews {} (expires {}); based on this verified usage:",
            renewal.old.lic,
            to_rfc3339(renewal.old.exp)
        );
        print!("{}", super::usage::summary_text(&renewal.usage));
    }
    Ok(ExitCode::SUCCESS)
}
