//! `mcpg-entitlements usage export`: the ledger's closed days as a bundle the vendor
//! verifies (`mcpg-license usage verify`, `mcpg-ctl usage import`).

use std::path::Path;

use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::usage::{
    BUNDLE_FORMAT, Bundle, Day, LicenseBinding, encode_key, license_digest,
};
use mcpg_license_core::{UnixTime, Unverified, decode_unverified};
use thiserror::Error;

use super::ledger::{self, LedgerError};

/// Why no bundle could be made.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The ledger could not be read or does not verify.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The gateway has not made its deployment key yet (it never ran in offline mode).
    #[error(
        "no usage key in {0}: this gateway has not recorded any usage yet (run it in offline mode first)"
    )]
    NoKey(String),
    /// The configured license is not an offline license.
    #[error("the configured license is not an offline license")]
    NotALicense,
    /// No closed day to export.
    #[error(
        "the usage ledger has no closed day{0}; days are recorded once they are over (after midnight UTC)"
    )]
    Empty(String),
}

/// The bundle of the ledger in `dir` (days from `since`, all without), for the deployment
/// `deployment_id` under the offline license `license`.
pub fn bundle(
    dir: &Path,
    deployment_id: &str,
    license: &str,
    since: Option<Day>,
    now: UnixTime,
) -> Result<Bundle, ExportError> {
    let key =
        ledger::read_key(dir)?.ok_or_else(|| ExportError::NoKey(dir.display().to_string()))?;
    let entries: Vec<_> = ledger::read_entries(dir, key.public_key(), false)?
        .into_iter()
        .filter(|e| since.is_none_or(|s| Day::parse(&e.entry.day).is_some_and(|d| d >= s)))
        .collect();
    if entries.is_empty() {
        return Err(ExportError::Empty(
            since.map_or_else(String::new, |s| format!(" since {s}")),
        ));
    }
    let Ok(Unverified::OfflineLicense { claims, .. }) = decode_unverified(license) else {
        return Err(ExportError::NotALicense);
    };
    Ok(Bundle {
        format: BUNDLE_FORMAT.into(),
        deployment_id: deployment_id.to_owned(),
        deployment_key: encode_key(key.public_key()),
        license: LicenseBinding {
            id: claims.lic.clone(),
            org: claims.org.clone(),
            sha256: license_digest(license),
            token: license.trim().to_owned(),
        },
        exported_at: to_rfc3339(now),
        entries,
    })
}
