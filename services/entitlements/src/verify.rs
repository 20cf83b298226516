//! Chain verification of online tokens (root → issuer certificate → token), with the
//! certificate verified once per key id and cached. A newer revocation list replaces the
//! one in force and empties the cache, so a revoked certificate is refused at once.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use mcpg_license_core::jwt::parse_jwt;
use mcpg_license_core::{
    LicenseClaims, TrustStore, UnixTime, Validity, VerifiedIssuer, VerifyError,
};

use crate::sync::{MutexExt, RwLockExt};

/// A token whose whole chain verified.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// Its claims.
    pub claims: LicenseClaims,
    /// The signing key's id.
    pub kid: String,
    /// The certificate's expiry.
    pub certificate_exp: UnixTime,
    /// The certificate's id (what revocation lists name).
    pub certificate_id: String,
}

/// Verifies online tokens against pinned roots.
#[derive(Debug)]
pub struct Verifier {
    trust: RwLock<TrustStore>,
    issuers: Mutex<HashMap<String, CachedIssuer>>,
}

#[derive(Debug, Clone)]
struct CachedIssuer {
    certificate: String,
    issuer: VerifiedIssuer,
}

impl Verifier {
    /// A verifier trusting the roots of `trust`.
    pub fn new(trust: TrustStore) -> Self {
        Self {
            trust: RwLock::new(trust),
            issuers: Mutex::new(HashMap::new()),
        }
    }

    /// The pinned roots and the revocation list in force.
    pub fn trust(&self) -> RwLockReadGuard<'_, TrustStore> {
        // The store is replaced whole under the lock; a panic cannot leave it half-written.
        self.trust.read_or_recover()
    }

    /// Verifies a revocation list against the roots and applies it when its serial is
    /// higher than the one in force (`Ok(false)`: ignored as not newer). Applying empties
    /// the certificate cache so that every certificate is checked against the new list.
    pub fn apply_revocation_list(&self, token: &str) -> Result<bool, VerifyError> {
        let applied = self.trust.write_or_recover().apply_revocation_list(token)?;
        if applied {
            self.lock().clear();
        }
        Ok(applied)
    }

    /// The serial of the revocation list in force.
    pub fn revocation_serial(&self) -> Option<u64> {
        self.trust().revocations().map(|list| list.serial)
    }

    /// Verifies `token` under `certificate`: the certificate against the roots (once per
    /// kid and certificate text), then the token's signature, bounds and times.
    pub fn verify(
        &self,
        token: &str,
        certificate: &str,
        now: UnixTime,
        validity: Validity,
    ) -> Result<VerifiedToken, VerifyError> {
        let kid = parse_jwt(token)?.kid().to_owned();
        let issuer = self.issuer(&kid, certificate, now, validity)?;
        let claims = issuer.verify_jwt(token, now, validity)?;
        Ok(VerifiedToken {
            claims,
            kid,
            certificate_exp: issuer.certificate().exp,
            certificate_id: issuer.certificate().cid.clone(),
        })
    }

    /// Verifies `token` under the first of `certificates` that chains to a pinned root and
    /// returns it with the token. When none chains, the error is the first certificate's.
    pub fn verify_served<'c>(
        &self,
        token: &str,
        certificates: impl IntoIterator<Item = &'c str>,
        now: UnixTime,
        validity: Validity,
    ) -> Result<(VerifiedToken, &'c str), VerifyError> {
        let mut first = None;
        for certificate in certificates {
            match self.verify(token, certificate, now, validity) {
                Err(error @ VerifyError::UntrustedRoot(_)) => {
                    first.get_or_insert(error);
                }
                other => return other.map(|verified| (verified, certificate)),
            }
        }
        Err(first.unwrap_or_else(|| VerifyError::Malformed("no issuer certificate".into())))
    }

    fn issuer(
        &self,
        kid: &str,
        certificate: &str,
        now: UnixTime,
        validity: Validity,
    ) -> Result<VerifiedIssuer, VerifyError> {
        if let Some(cached) = self.lock().get(kid)
            && cached.certificate == certificate
        {
            let cert = cached.issuer.certificate();
            let end = match validity {
                Validity::Strict => cert.exp.saturating_add(mcpg_license_core::LEEWAY),
                Validity::UntilGrace => cert.exp.saturating_add(cert.bounds.max_grace),
            };
            if now < end {
                // A list applied while this entry was being cached must still count.
                if self
                    .trust()
                    .revocations()
                    .is_some_and(|r| r.revokes_certificate(&cert.cid))
                {
                    return Err(VerifyError::Revoked(format!("certificate {}", cert.cid)));
                }
                return Ok(cached.issuer.clone());
            }
        }
        let issuer = self
            .trust()
            .verify_certificate(certificate, now, validity)?;
        if issuer.kid().as_str() != kid {
            return Err(VerifyError::UnknownKey(kid.to_owned()));
        }
        self.lock().insert(
            kid.to_owned(),
            CachedIssuer {
                certificate: certificate.to_owned(),
                issuer: issuer.clone(),
            },
        );
        Ok(issuer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedIssuer>> {
        // The map holds only verified values; a panic elsewhere cannot leave it half-written.
        self.issuers.lock_or_recover()
    }

    /// How many issuer certificates are cached (one per kid).
    pub fn cached_issuers(&self) -> usize {
        self.lock().len()
    }
}

/// A stable reason code for a verification failure, naming the bound when one was exceeded.
pub fn rejection_code(error: &VerifyError) -> &'static str {
    match error {
        VerifyError::Bounds(violation) => violation.code(),
        other => other.code(),
    }
}
