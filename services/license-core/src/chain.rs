//! The trust chain: pinned roots → issuer certificate → token.
//!
//! Gateways pin roots only. An online token is accepted when its signing key carries a
//! certificate from a pinned root and the token lies inside the certificate's bounds; an
//! offline license is signed by a root directly or by a certified key whose certificate
//! rides in the footer. Chains are one certificate deep.

use std::collections::HashMap;

use crate::cert::{CERTIFICATE_TYPE, IssuerCertificate};
use crate::claims::{ClaimsError, LicenseClaims, TimeFormat};
use crate::clock::UnixTime;
use crate::error::VerifyError;
use crate::jwt::{self, LEEWAY, Validity};
use crate::keys::{KeyId, PublicKey, SigningKey};
use crate::paseto::{self, LICENSE_PURPOSE};
use crate::revocation::{REVOCATION_PURPOSE, RevocationList};

/// The pinned root keys of a verifier.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    roots: HashMap<String, PublicKey>,
    revocations: Option<RevocationList>,
}

/// A certificate whose signature chains to a pinned root and whose validity was checked.
/// Only [`TrustStore::verify_certificate`] makes one, so holding one is proof of both.
#[derive(Debug, Clone)]
pub struct VerifiedIssuer {
    cert: IssuerCertificate,
    root: KeyId,
}

/// Who signed an offline license.
#[derive(Debug, Clone)]
pub enum LicenseSigner {
    /// A pinned root, directly.
    Root(KeyId),
    /// A key certified by a pinned root.
    Certified(Box<VerifiedIssuer>),
}

/// An offline license that verified.
#[derive(Debug, Clone)]
pub struct VerifiedLicense {
    /// Its claims.
    pub claims: LicenseClaims,
    /// Its signer.
    pub signer: LicenseSigner,
}

/// What a token says about itself, before (and without) verification.
#[derive(Debug, Clone)]
pub enum Unverified {
    /// An online JWT.
    OnlineToken(Box<LicenseClaims>),
    /// An offline license.
    OfflineLicense {
        /// Its claims.
        claims: Box<LicenseClaims>,
        /// Key id named in the footer.
        kid: String,
        /// The certificate in the footer, if any.
        certificate: Option<Box<IssuerCertificate>>,
    },
    /// An issuer certificate.
    Certificate {
        /// The certificate.
        certificate: Box<IssuerCertificate>,
        /// Key id of the root that claims to have signed it.
        root_kid: String,
    },
}

impl TrustStore {
    /// A store pinning `roots`.
    pub fn new(roots: impl IntoIterator<Item = PublicKey>) -> Self {
        Self {
            roots: roots
                .into_iter()
                .map(|k| (k.kid().as_str().to_owned(), k))
                .collect(),
            revocations: None,
        }
    }

    /// Verifies a revocation list against the roots without applying it.
    pub fn verify_revocation_list(&self, token: &str) -> Result<RevocationList, VerifyError> {
        let untrusted = paseto::parse(token)?;
        if untrusted.footer.cert.is_some() {
            // Only roots revoke: a certified key could otherwise "revoke" its rivals.
            return Err(VerifyError::ChainTooDeep);
        }
        let root = self
            .roots
            .get(&untrusted.footer.kid)
            .ok_or_else(|| VerifyError::UntrustedRoot(untrusted.footer.kid.clone()))?;
        RevocationList::from_payload(untrusted.verify(root, REVOCATION_PURPOSE)?)
    }

    /// Verifies and applies a revocation list. A list whose serial is not higher than the
    /// one in force is ignored (returns `Ok(false)`): lists only move forward.
    pub fn apply_revocation_list(&mut self, token: &str) -> Result<bool, VerifyError> {
        let list = self.verify_revocation_list(token)?;
        if self
            .revocations
            .as_ref()
            .is_some_and(|current| current.serial >= list.serial)
        {
            return Ok(false);
        }
        self.revocations = Some(list);
        Ok(true)
    }

    /// The revocation list in force, if any.
    pub fn revocations(&self) -> Option<&RevocationList> {
        self.revocations.as_ref()
    }

    /// Pins one more root.
    pub fn add_root(&mut self, root: PublicKey) {
        self.roots.insert(root.kid().as_str().to_owned(), root);
    }

    /// The pinned roots.
    pub fn roots(&self) -> impl Iterator<Item = &PublicKey> {
        self.roots.values()
    }

    /// Verifies a certificate against the roots and checks its validity at `now`. Under
    /// [`Validity::UntilGrace`] the certificate stays usable until its expiry plus its
    /// maximum grace, which is the latest any token under it may be kept.
    pub fn verify_certificate(
        &self,
        token: &str,
        now: UnixTime,
        validity: Validity,
    ) -> Result<VerifiedIssuer, VerifyError> {
        let untrusted = paseto::parse(token)?;
        if untrusted.footer.cert.is_some() {
            return Err(VerifyError::ChainTooDeep);
        }
        let root = self
            .roots
            .get(&untrusted.footer.kid)
            .ok_or_else(|| VerifyError::UntrustedRoot(untrusted.footer.kid.clone()))?;
        let payload = untrusted.verify(root, paseto::CERTIFICATE_PURPOSE)?;
        let cert = IssuerCertificate::from_payload(payload)?;
        if self
            .revocations
            .as_ref()
            .is_some_and(|r| r.revokes_certificate(&cert.cid))
        {
            return Err(VerifyError::Revoked(format!("certificate {}", cert.cid)));
        }
        if now < cert.nbf - LEEWAY {
            return Err(VerifyError::CertificateNotYetValid { nbf: cert.nbf });
        }
        let end = match validity {
            Validity::Strict => cert.exp + LEEWAY,
            Validity::UntilGrace => cert.exp + cert.bounds.max_grace,
        };
        if now >= end {
            return Err(VerifyError::CertificateExpired { exp: cert.exp });
        }
        Ok(VerifiedIssuer {
            cert,
            root: root.kid().clone(),
        })
    }

    /// Verifies an online token and its certificate in one go.
    pub fn verify_online_token(
        &self,
        token: &str,
        certificate: &str,
        now: UnixTime,
        validity: Validity,
    ) -> Result<LicenseClaims, VerifyError> {
        self.verify_certificate(certificate, now, validity)?
            .verify_jwt(token, now, validity)
    }

    /// Verifies an offline license: signature chain, bounds, times (strict, with leeway),
    /// and the deployment binding.
    pub fn verify_offline_license(
        &self,
        token: &str,
        now: UnixTime,
        deployment_id: Option<&str>,
    ) -> Result<VerifiedLicense, VerifyError> {
        let untrusted = paseto::parse(token)?;
        reject_certificate_payload(untrusted.untrusted_payload())?;
        let (payload, signer) = match &untrusted.footer.cert {
            Some(cert) => {
                let issuer = self.verify_certificate(cert, now, Validity::Strict)?;
                let payload = untrusted.verify(&issuer.cert.key, LICENSE_PURPOSE)?;
                (payload, LicenseSigner::Certified(Box::new(issuer)))
            }
            None => {
                let root = self
                    .roots
                    .get(&untrusted.footer.kid)
                    .ok_or_else(|| VerifyError::UnknownKey(untrusted.footer.kid.clone()))?;
                let payload = untrusted.verify(root, LICENSE_PURPOSE)?;
                (payload, LicenseSigner::Root(root.kid().clone()))
            }
        };
        let claims = LicenseClaims::from_json(payload, TimeFormat::Rfc3339)?;
        if self
            .revocations
            .as_ref()
            .is_some_and(|r| r.revokes_license(&claims.lic))
        {
            return Err(VerifyError::Revoked(format!("license {}", claims.lic)));
        }
        if let LicenseSigner::Certified(issuer) = &signer {
            issuer.cert.check_bounds(&claims)?;
        }
        jwt::check_times(&claims, now, Validity::Strict)?;
        if let Some(bound) = &claims.bind
            && deployment_id != Some(bound.as_str())
        {
            return Err(VerifyError::BindingMismatch {
                expected: bound.clone(),
                found: deployment_id.map(str::to_owned),
            });
        }
        Ok(VerifiedLicense { claims, signer })
    }
}

fn reject_certificate_payload(payload: &[u8]) -> Result<(), VerifyError> {
    #[derive(serde::Deserialize)]
    struct Peek {
        typ: Option<String>,
    }
    match serde_json::from_slice::<Peek>(payload) {
        Ok(Peek { typ: Some(typ) }) if typ == CERTIFICATE_TYPE => Err(VerifyError::WrongType {
            expected: "offline license",
            found: "issuer certificate".into(),
        }),
        _ => Ok(()),
    }
}

impl VerifiedIssuer {
    /// The certificate.
    pub fn certificate(&self) -> &IssuerCertificate {
        &self.cert
    }

    /// The certified key's id.
    pub fn kid(&self) -> &KeyId {
        self.cert.key.kid()
    }

    /// The root that signed the certificate.
    pub fn root(&self) -> &KeyId {
        &self.root
    }

    /// Verifies an online token signed by the certified key: signature, claims, bounds
    /// and times.
    pub fn verify_jwt(
        &self,
        token: &str,
        now: UnixTime,
        validity: Validity,
    ) -> Result<LicenseClaims, VerifyError> {
        let jwt = jwt::parse_jwt(token)?;
        let claims = jwt.verify(&self.cert.key)?;
        self.cert.check_bounds(&claims)?;
        jwt::check_times(&claims, now, validity)?;
        Ok(claims)
    }
}

/// Signs an offline license with a root key, or with a certified key whose certificate is
/// carried in the footer.
pub fn issue_offline_license(
    claims: &LicenseClaims,
    key: &SigningKey,
    certificate: Option<&str>,
) -> Result<String, ClaimsError> {
    claims.validate()?;
    let payload = claims.to_json(TimeFormat::Rfc3339);
    Ok(paseto::sign(key, &payload, certificate, LICENSE_PURPOSE))
}

/// Decodes a JWT, offline license or certificate without verifying it (for `inspect`).
pub fn decode_unverified(token: &str) -> Result<Unverified, VerifyError> {
    let token = token.trim();
    if token.starts_with("v4.") || token.starts_with("v2.") || token.starts_with("v3.") {
        let untrusted = paseto::parse(token)?;
        let payload = untrusted.untrusted_payload();
        if reject_certificate_payload(payload).is_err() {
            return Ok(Unverified::Certificate {
                certificate: Box::new(IssuerCertificate::from_payload(payload)?),
                root_kid: untrusted.footer.kid,
            });
        }
        let certificate = match &untrusted.footer.cert {
            Some(cert) => {
                let inner = paseto::parse(cert)?;
                Some(Box::new(IssuerCertificate::from_payload(
                    inner.untrusted_payload(),
                )?))
            }
            None => None,
        };
        return Ok(Unverified::OfflineLicense {
            claims: Box::new(LicenseClaims::from_json(payload, TimeFormat::Rfc3339)?),
            kid: untrusted.footer.kid,
            certificate,
        });
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(VerifyError::Malformed(
            "neither a JWT nor a v4.public PASETO".into(),
        ));
    }
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .map_err(|_| VerifyError::Malformed("payload is not base64url".into()))?;
    Ok(Unverified::OnlineToken(Box::new(LicenseClaims::from_json(
        &payload,
        TimeFormat::Seconds,
    )?)))
}
