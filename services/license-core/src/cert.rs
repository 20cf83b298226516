//! Issuer certificates: a root's statement that a signing key may issue tokens for one
//! issuer URL, within bounds (orgs, max tier, entitlements, token lifetime, grace).
//!
//! A certificate is a PASETO `v4.public` signed by a root with the implicit assertion
//! `mcpg-issuer-cert-v1`. The vendor's own federation keys get unbounded certificates; a
//! BYOC issuer gets one bounded to its org.

use serde::{Deserialize, Serialize};

use crate::claims::{ClaimsError, LicenseClaims};
use crate::clock::{UnixTime, parse_rfc3339, to_rfc3339};
use crate::entitlement::EntitlementSet;
use crate::error::{BoundsViolation, VerifyError};
use crate::keys::{PublicKey, SigningKey};
use crate::paseto::{self, CERTIFICATE_PURPOSE};
use crate::tier::Tier;

/// The `typ` claim that tells a certificate from a license.
pub const CERTIFICATE_TYPE: &str = "mcpg-issuer-cert";

/// Default maximum token lifetime of a certificate: 24 h.
pub const DEFAULT_MAX_TOKEN_LIFETIME: i64 = 86_400;
/// Default maximum grace (`grc - exp`) of a certificate: 7 days.
pub const DEFAULT_MAX_GRACE: i64 = 7 * 86_400;

/// What tokens signed under a certificate may claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Orgs the issuer may issue for; `None` means any.
    pub orgs: Option<Vec<String>>,
    /// The highest tier the issuer may grant.
    pub max_tier: Tier,
    /// Entitlements the issuer may grant; `None` means any.
    pub entitlements: Option<EntitlementSet>,
    /// Longest `exp - iat` in seconds.
    pub max_token_lifetime: i64,
    /// Longest `grc - exp` in seconds.
    pub max_grace: i64,
}

impl Bounds {
    /// Checks what a license decides — org, tier and entitlements — against the bounds:
    /// the part of [`IssuerCertificate::check_bounds`] that only changing the license can
    /// fix, so a service can refuse such a license when it is written.
    pub fn check_grant(
        &self,
        org: &str,
        tier: Tier,
        entitlements: &EntitlementSet,
    ) -> Result<(), BoundsViolation> {
        if let Some(orgs) = &self.orgs
            && !orgs.iter().any(|o| o == org)
        {
            return Err(BoundsViolation::Org(org.to_owned()));
        }
        if tier > self.max_tier {
            return Err(BoundsViolation::Tier {
                tier,
                max: self.max_tier,
            });
        }
        if let Some(allowed) = &self.entitlements
            && let Some(extra) = entitlements.first_not_in(allowed)
        {
            return Err(BoundsViolation::Entitlement(extra.to_string()));
        }
        Ok(())
    }

    /// No limits but the default lifetime and grace: for the vendor's own federation keys.
    pub fn unbounded() -> Self {
        Self {
            orgs: None,
            max_tier: Tier::Enterprise,
            entitlements: None,
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
            max_grace: DEFAULT_MAX_GRACE,
        }
    }
}

/// A certificate for one signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerCertificate {
    /// Certificate id (for revocation lists).
    pub cid: String,
    /// The issuer URL tokens under this certificate must carry as `iss`.
    pub issuer: String,
    /// The certified public key.
    pub key: PublicKey,
    /// Issued at.
    pub iat: UnixTime,
    /// Valid from.
    pub nbf: UnixTime,
    /// Valid until.
    pub exp: UnixTime,
    /// Bounds on the tokens the key may sign.
    pub bounds: Bounds,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    typ: String,
    cid: String,
    issuer: String,
    key: String,
    kid: String,
    iat: String,
    nbf: String,
    exp: String,
    bounds: Bounds,
}

impl IssuerCertificate {
    /// Signs the certificate with a root key.
    pub fn sign(&self, root: &SigningKey) -> Result<String, ClaimsError> {
        if self.exp <= self.nbf || self.exp <= self.iat {
            return Err(ClaimsError::Times(
                "certificate exp must be after iat and nbf",
            ));
        }
        if self.bounds.max_token_lifetime <= 0 || self.bounds.max_grace < 0 {
            return Err(ClaimsError::Times("bounds need a positive lifetime"));
        }
        let wire = Wire {
            typ: CERTIFICATE_TYPE.into(),
            cid: self.cid.clone(),
            issuer: self.issuer.clone(),
            key: self.key.to_paserk(),
            kid: self.key.kid().to_string(),
            iat: to_rfc3339(self.iat),
            nbf: to_rfc3339(self.nbf),
            exp: to_rfc3339(self.exp),
            bounds: self.bounds.clone(),
        };
        let payload = serde_json::to_vec(&wire).map_err(|e| ClaimsError::Shape(e.to_string()))?;
        Ok(paseto::sign(root, &payload, None, CERTIFICATE_PURPOSE))
    }

    /// Decodes a certificate payload (already verified, or for inspection).
    pub(crate) fn from_payload(payload: &[u8]) -> Result<Self, VerifyError> {
        let bad = |why: &str| VerifyError::Malformed(format!("certificate: {why}"));
        let wire: Wire = serde_json::from_slice(payload).map_err(|e| bad(&e.to_string()))?;
        if wire.typ != CERTIFICATE_TYPE {
            return Err(VerifyError::WrongType {
                expected: CERTIFICATE_TYPE,
                found: wire.typ,
            });
        }
        let key = PublicKey::from_paserk(&wire.key).map_err(|e| bad(&e.to_string()))?;
        if key.kid().as_str() != wire.kid {
            return Err(bad("kid does not match the certified key"));
        }
        let time = |t: &str| parse_rfc3339(t).ok_or_else(|| bad("time is not RFC 3339"));
        let cert = Self {
            cid: wire.cid,
            issuer: wire.issuer,
            key,
            iat: time(&wire.iat)?,
            nbf: time(&wire.nbf)?,
            exp: time(&wire.exp)?,
            bounds: wire.bounds,
        };
        if cert.exp <= cert.nbf {
            return Err(bad("exp must be after nbf"));
        }
        let bounds = &cert.bounds;
        if !(1..=crate::claims::MAX_TIME).contains(&bounds.max_token_lifetime)
            || !(0..=crate::claims::MAX_TIME).contains(&bounds.max_grace)
        {
            return Err(bad("bounds must be positive durations"));
        }
        Ok(cert)
    }

    /// Checks a token's claims against the bounds (the chain's last step).
    pub fn check_bounds(&self, claims: &LicenseClaims) -> Result<(), BoundsViolation> {
        let bounds = &self.bounds;
        if claims.iss != self.issuer {
            return Err(BoundsViolation::Issuer {
                token: claims.iss.clone(),
                certificate: self.issuer.clone(),
            });
        }
        bounds.check_grant(&claims.org, claims.tier, &claims.ent)?;
        if claims.lifetime() > bounds.max_token_lifetime {
            return Err(BoundsViolation::Lifetime {
                lifetime: claims.lifetime(),
                max: bounds.max_token_lifetime,
            });
        }
        if let Some(grc) = claims.grc
            && grc - claims.exp > bounds.max_grace
        {
            return Err(BoundsViolation::Grace {
                grace: grc - claims.exp,
                max: bounds.max_grace,
            });
        }
        if claims.exp > self.exp {
            return Err(BoundsViolation::OutlivesCertificate { cert_exp: self.exp });
        }
        if claims.iat < self.nbf - crate::jwt::LEEWAY {
            return Err(BoundsViolation::PredatesCertificate);
        }
        Ok(())
    }
}
