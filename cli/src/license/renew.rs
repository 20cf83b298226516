//! `issue --renew FILE.license --usage BUNDLE`: next year's license of a sovereign site,
//! issued only from a usage bundle that verifies and belongs to the renewed license.
//!
//! The renewed license keeps the org and the deployment binding, and by default its tier,
//! entitlements, limits, workspace and environment; `--tier`, `--entitlement`, `--without`
//! and `--limit` change them. It starts when the renewed license expires (or now, when it
//! already has), so a renewal issued early does not shorten the year paid for.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use mcpg_license_core::usage::VerifiedBundle;
use mcpg_license_core::{Catalog, LicenseClaims, Limits, SigningKey, UnixTime};

use super::issue::{Certificate, IssueArgs, LicenseRequest};
use super::usage;
use crate::files;

/// A renewal whose usage verified.
#[derive(Debug, Clone)]
pub struct Renewal {
    /// The renewed license's claims (verified with the bundle).
    pub old: LicenseClaims,
    /// The site's verified usage.
    pub usage: VerifiedBundle,
}

/// Reads the license to renew and its usage bundle, and verifies the bundle: signatures,
/// chain, and that it names exactly this license (verified against `trust`, or the vendor
/// roots, plus the signing key) and its deployment.
pub fn load(
    license: &Path,
    bundle: &Path,
    trust: &[PathBuf],
    key: &SigningKey,
) -> anyhow::Result<Renewal> {
    let text = files::read_token(license)?;
    let bytes = usage::read_bundle(bundle)?;
    let mut roots = usage::trust_store(trust)?;
    roots.add_root(key.public_key().clone());
    let verified = usage::verify_for_license(&bytes, &text, None, &roots).map_err(|e| {
        anyhow!(
            "license not renewed: the usage bundle {} does not verify for {}: {e} [{}]",
            bundle.display(),
            license.display(),
            e.code()
        )
    })?;
    Ok(Renewal {
        old: verified.license.clone(),
        usage: verified,
    })
}

/// The request for the renewed license: the old license's terms, changed by the flags.
pub fn request(
    args: &IssueArgs,
    renewal: &Renewal,
    key: SigningKey,
    certificate: Option<Certificate>,
    limits: Limits,
    now: UnixTime,
) -> anyhow::Result<LicenseRequest> {
    let old = &renewal.old;
    if let Some(org) = &args.org
        && org != &old.org
    {
        bail!(
            "--org {org} differs from the renewed license's org {}: a renewal is for the same org",
            old.org
        );
    }
    if let Some(bind) = &args.bind
        && Some(bind) != old.bind.as_ref()
    {
        bail!(
            "--bind {bind} differs from the renewed license's deployment {}: a renewal is for the same deployment",
            old.bind.as_deref().unwrap_or("-")
        );
    }
    let tier = args.tier.unwrap_or(old.tier);
    // The old entitlements relative to the tier's defaults; the flags apply on top.
    let defaults = Catalog::builtin().tier_defaults(tier);
    let add = old
        .ent
        .iter()
        .filter(|id| !defaults.contains(id.as_str()) && !args.remove.contains(id))
        .chain(args.add.iter())
        .cloned()
        .collect();
    let remove = defaults
        .iter()
        .filter(|id| !old.ent.contains(id.as_str()) && !args.add.contains(id))
        .chain(args.remove.iter())
        .cloned()
        .collect();
    let not_before = Some(args.not_before.unwrap_or(old.exp.max(now)));
    Ok(LicenseRequest {
        key,
        certificate,
        org: old.org.clone(),
        workspace: args.workspace.clone().or_else(|| old.ws.clone()),
        environment: args.environment.clone().or_else(|| old.env.clone()),
        tier,
        add,
        remove,
        limits,
        valid_for: args.valid_for,
        not_before,
        bind: old.bind.clone(),
        issuer: args.issuer.clone(),
    })
}
