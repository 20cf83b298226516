//! Verification errors shared by every codec, with stable machine-readable codes.

use thiserror::Error;

use crate::claims::ClaimsError;
use crate::clock::{UnixTime, to_rfc3339};
use crate::tier::Tier;

/// A token or certificate claim that lies outside its issuer certificate's bounds.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum BoundsViolation {
    /// The token is for an org the certificate does not cover.
    #[error("org {0:?} is outside the certificate's orgs")]
    Org(String),
    /// The token's tier is above the certificate's maximum.
    #[error("tier {tier} is above the certificate's maximum {max}")]
    Tier {
        /// The token's tier.
        tier: Tier,
        /// The certificate's maximum.
        max: Tier,
    },
    /// The token grants an entitlement the certificate does not allow.
    #[error("entitlement {0} is not allowed by the certificate")]
    Entitlement(String),
    /// `exp - iat` exceeds the certificate's maximum token lifetime.
    #[error("token lifetime {lifetime}s exceeds the certificate's maximum {max}s")]
    Lifetime {
        /// The token's lifetime in seconds.
        lifetime: i64,
        /// The certificate's maximum in seconds.
        max: i64,
    },
    /// `grc - exp` exceeds the certificate's maximum grace.
    #[error("grace of {grace}s exceeds the certificate's maximum {max}s")]
    Grace {
        /// The token's grace in seconds.
        grace: i64,
        /// The certificate's maximum in seconds.
        max: i64,
    },
    /// The token expires after its certificate.
    #[error("token expires after its certificate ({})", to_rfc3339(*cert_exp))]
    OutlivesCertificate {
        /// The certificate's expiry.
        cert_exp: UnixTime,
    },
    /// The token was issued before its certificate was valid.
    #[error("token was issued before its certificate became valid")]
    PredatesCertificate,
    /// The token's `iss` is not the certificate's issuer.
    #[error("token issuer {token:?} does not match the certificate's issuer {certificate:?}")]
    Issuer {
        /// The token's `iss`.
        token: String,
        /// The certificate's issuer.
        certificate: String,
    },
}

impl BoundsViolation {
    /// A stable code for this violation.
    pub fn code(&self) -> &'static str {
        match self {
            BoundsViolation::Org(_) => "org_not_allowed",
            BoundsViolation::Tier { .. } => "tier_above_max",
            BoundsViolation::Entitlement(_) => "entitlement_not_allowed",
            BoundsViolation::Lifetime { .. } => "lifetime_too_long",
            BoundsViolation::Grace { .. } => "grace_too_long",
            BoundsViolation::OutlivesCertificate { .. } => "outlives_certificate",
            BoundsViolation::PredatesCertificate => "predates_certificate",
            BoundsViolation::Issuer { .. } => "issuer_mismatch",
        }
    }
}

/// Why a token, license or certificate was rejected.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Larger than the accepted maximum; rejected before any parsing.
    #[error("token is {len} bytes, more than the {max} accepted")]
    Oversized {
        /// Its size.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// Not a well-formed token of the expected encoding.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A JWT whose `alg` is not `EdDSA`.
    #[error("algorithm {0:?} is not accepted (only EdDSA)")]
    UnsupportedAlgorithm(String),
    /// A token of another type (JWT `typ`, PASETO purpose, or a certificate given as a license).
    #[error("wrong token type: expected {expected}, found {found}")]
    WrongType {
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// Signed by a key id that is not trusted here.
    #[error("unknown signing key {0}")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// Past its expiry (plus leeway).
    #[error("expired at {}", to_rfc3339(*exp))]
    Expired {
        /// The expiry.
        exp: UnixTime,
    },
    /// Before its not-before time (minus leeway).
    #[error("not valid before {}", to_rfc3339(*nbf))]
    NotYetValid {
        /// The not-before time.
        nbf: UnixTime,
    },
    /// The claims are invalid.
    #[error(transparent)]
    Claims(#[from] ClaimsError),
    /// The certificate is signed by a key that is not a trusted root.
    #[error("certificate is signed by {0}, which is not a trusted root")]
    UntrustedRoot(String),
    /// The certificate has expired.
    #[error("issuer certificate expired at {}", to_rfc3339(*exp))]
    CertificateExpired {
        /// The certificate's expiry.
        exp: UnixTime,
    },
    /// The certificate is not valid yet.
    #[error("issuer certificate is not valid before {}", to_rfc3339(*nbf))]
    CertificateNotYetValid {
        /// The certificate's not-before time.
        nbf: UnixTime,
    },
    /// A certificate that itself carries a certificate (chains are one certificate deep).
    #[error("certificate chains deeper than one certificate are refused")]
    ChainTooDeep,
    /// The token exceeds its certificate's bounds.
    #[error("outside the issuer certificate's bounds: {0}")]
    Bounds(#[from] BoundsViolation),
    /// A license bound to another deployment, or bound while no deployment id was given.
    #[error("{}", binding_mismatch(expected, found.as_deref()))]
    BindingMismatch {
        /// The license's `bind`.
        expected: String,
        /// The deployment id given, if any.
        found: Option<String>,
    },
    /// The token's `iss` is not the issuer the verifier expects.
    #[error("issuer {found:?} is not the expected {expected:?}")]
    WrongIssuer {
        /// The expected issuer.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// Named by the revocation list.
    #[error("{0} has been revoked")]
    Revoked(String),
}

impl VerifyError {
    /// A stable snake_case code, for JSON output and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Oversized { .. } => "oversized",
            VerifyError::Malformed(_) => "malformed",
            VerifyError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            VerifyError::WrongType { .. } => "wrong_type",
            VerifyError::UnknownKey(_) => "unknown_key",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::Expired { .. } => "expired",
            VerifyError::NotYetValid { .. } => "not_yet_valid",
            VerifyError::Claims(_) => "invalid_claims",
            VerifyError::UntrustedRoot(_) => "untrusted_root",
            VerifyError::CertificateExpired { .. } => "certificate_expired",
            VerifyError::CertificateNotYetValid { .. } => "certificate_not_yet_valid",
            VerifyError::ChainTooDeep => "chain_too_deep",
            VerifyError::Bounds(_) => "bounds_exceeded",
            VerifyError::BindingMismatch { .. } => "binding_mismatch",
            VerifyError::WrongIssuer { .. } => "wrong_issuer",
            VerifyError::Revoked(_) => "revoked",
        }
    }
}

/// The words of [`VerifyError::BindingMismatch`]: no Rust `Some(..)` for an operator.
fn binding_mismatch(expected: &str, found: Option<&str>) -> String {
    match found {
        Some(found) => {
            format!("license is bound to deployment {expected:?}, but this deployment is {found:?}")
        }
        None => format!(
            "license is bound to deployment {expected:?}, but no deployment id is configured \
             (set deployment_id under [offline] in gateway.toml)"
        ),
    }
}
