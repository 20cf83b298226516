//! Offline licenses (air-gapped sites): verified once at start against the pinned roots,
//! bound to the deployment id when the license says so; after `exp` the tenant runs Tier-0.

use std::path::Path;

use mcpg_license_core::{
    Catalog, LicenseSigner, TrustStore, UnixTime, Unverified, VerifyError, decode_unverified,
};

use crate::entitlements::{Basis, TenantEntitlements};
use crate::gateway::StartError;
use crate::tenant::TenantKey;
use crate::verify::rejection_code;

/// Verifies the license at `now`. A valid one gives its entitlements until `exp`; an
/// expired one gives Tier-0 (`OfflineExpired`); anything else is a start error.
pub(crate) fn load(
    catalog: &Catalog,
    trust: &TrustStore,
    license: &str,
    path: &Path,
    now: UnixTime,
    deployment_id: Option<&str>,
) -> Result<(TenantKey, TenantEntitlements), StartError> {
    let rejected = |source: VerifyError| StartError::License {
        path: path.display().to_string(),
        code: rejection_code(&source),
        source,
    };
    match trust.verify_offline_license(license, now, deployment_id) {
        Ok(verified) => {
            let claims = &verified.claims;
            let (kid, cert_exp) = match &verified.signer {
                LicenseSigner::Root(kid) => (kid.to_string(), None),
                LicenseSigner::Certified(issuer) => {
                    (issuer.kid().to_string(), Some(issuer.certificate().exp))
                }
            };
            let entitlements = TenantEntitlements::from_claims(
                catalog,
                claims,
                Basis::Offline { exp: claims.exp },
                Some(kid),
                cert_exp,
            );
            tracing::info!(license = %claims.lic, tenant = %TenantKey::of_claims(claims), tier = %claims.tier, "offline license accepted");
            Ok((TenantKey::of_claims(claims), entitlements))
        }
        Err(VerifyError::Expired { exp }) => {
            // Expired licenses grant nothing but Tier-0, so their unverified claims only
            // name the tenant on status pages.
            let Ok(Unverified::OfflineLicense { claims, .. }) = decode_unverified(license) else {
                return Err(rejected(VerifyError::Expired { exp }));
            };
            tracing::warn!(license = %claims.lic, "the offline license has expired: Tier-0 only");
            Ok((
                TenantKey::of_claims(&claims),
                TenantEntitlements::offline_expired(catalog, exp),
            ))
        }
        Err(e) => Err(rejected(e)),
    }
}
