//! What requests read, built once per reload: the active signer, the certificates served
//! with its tokens (every certificate of the key a gateway could verify it with: during a
//! root rollover one per root), and the JWKS rendered to text.

use std::sync::Arc;

use mcpg_license_core::{
    IssuerCertificate, JwtSigner, PublicKey, RevocationList, Unverified, Validity,
    decode_unverified,
};
use serde_json::{Value, json};

use super::{Keyring, KeyringError};
use crate::domain::KeyState;
use crate::infra::store::{KeyRecord, StoreError};

/// At most this many certificates are served with a token (the issuer tracks which fit a
/// token in a `u64` mask).
pub(crate) const MAX_SERVED: usize = 16;

/// A certificate served with the active key's tokens, parsed once.
#[derive(Debug)]
pub(crate) struct ServedCertificate {
    /// The PASETO text (base64url segments, shared by every token response).
    pub(crate) text: Arc<str>,
    /// Its claims: tokens are checked against its bounds and capped by its expiry.
    pub(crate) cert: Arc<IssuerCertificate>,
}

/// What requests read: the active signer and the rendered JWKS, swapped atomically.
#[derive(Debug)]
pub(crate) struct KeySnapshot {
    /// Signs tokens with the active key.
    pub(crate) signer: Arc<JwtSigner>,
    /// The certificates served with tokens, primary first: every certificate of the active
    /// key that chains to a trusted root, is for this issuer, is valid now and is not
    /// revoked. When none is, the primary alone (tokens are then refused by its expiry or
    /// revocation, as with a single certificate).
    pub(crate) certificates: Vec<ServedCertificate>,
    /// `["…",…]`: all of `certificates`, rendered once for the token response.
    pub(crate) certificates_json: Arc<str>,
    /// The first served certificate (what `issuer_certificate` carries).
    pub(crate) certificate: Arc<str>,
    /// The active key's id (`k4.pid.…`).
    pub(crate) kid: Arc<str>,
    /// The earliest expiry of the served certificates: no token may outlive it.
    pub(crate) certificate_expires_at: i64,
    /// The first served certificate, parsed.
    pub(crate) bounds: Arc<IssuerCertificate>,
    /// Whether the revocation list in force names the active key's primary certificate
    /// and no other certificate could be served: then nothing is signed.
    pub(crate) revoked: bool,
    /// `{"keys":[…]}` of the published keys, serialised once.
    pub(crate) jwks_json: String,
}

impl Keyring {
    pub(super) fn build_snapshot(
        &self,
        keys: &[KeyRecord],
        revocations: Option<&RevocationList>,
        now: i64,
    ) -> Result<Option<KeySnapshot>, KeyringError> {
        let mut jwks = Vec::new();
        for key in keys.iter().filter(|k| k.state.is_published()) {
            let public = PublicKey::from_paserk(&key.public_key)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mut jwk = public.to_jwk();
            jwk.mcpg_cert = Some(key.certificate.clone());
            let (served, _) = self.servable(key, revocations, now)?;
            let mut entry = serde_json::to_value(&jwk).map_err(corrupt)?;
            if let Value::Object(members) = &mut entry {
                let texts: Vec<&str> = served.iter().map(|c| &*c.text).collect();
                members.insert("mcpg_certs".into(), json!(texts));
            }
            jwks.push(entry);
        }
        let jwks_json = serde_json::to_string(&json!({ "keys": jwks })).map_err(corrupt)?;
        let Some(active) = keys.iter().find(|k| k.state == KeyState::Active) else {
            return Ok(None);
        };
        let signer = self.signer_for(active)?;
        let (certificates, revoked) = self.servable(active, revocations, now)?;
        if revoked {
            tracing::error!(kid = %active.kid, "the active signing key's certificate is revoked: no token is signed until a new certified key is imported");
        }
        let texts: Vec<&str> = certificates.iter().map(|c| &*c.text).collect();
        let certificates_json = Arc::from(serde_json::to_string(&texts).map_err(corrupt)?);
        let Some(first) = certificates.first() else {
            return Err(KeyringError::Store(StoreError::Corrupt(format!(
                "key {} has no certificate",
                active.kid
            ))));
        };
        Ok(Some(KeySnapshot {
            signer,
            certificate: first.text.clone(),
            bounds: first.cert.clone(),
            certificate_expires_at: certificates
                .iter()
                .map(|c| c.cert.exp)
                .min()
                .unwrap_or(first.cert.exp),
            certificates_json,
            certificates,
            kid: Arc::from(active.kid.as_str()),
            revoked,
            jwks_json,
        }))
    }

    /// The certificates of `key` a gateway could verify its tokens with now (primary first,
    /// at most [`MAX_SERVED`]); when there is none, the primary alone, and whether the
    /// revocation list names it.
    fn servable(
        &self,
        key: &KeyRecord,
        revocations: Option<&RevocationList>,
        now: i64,
    ) -> Result<(Vec<ServedCertificate>, bool), KeyringError> {
        let revokes = |cid: &str| revocations.is_some_and(|list| list.revokes_certificate(cid));
        let texts = std::iter::once(key.certificate.as_str())
            .chain(key.more_certificates.iter().map(|c| c.certificate.as_str()));
        let mut served = Vec::new();
        for text in texts {
            let Ok(verified) = self.trust.verify_certificate(text, now, Validity::Strict) else {
                continue;
            };
            let cert = verified.certificate();
            if cert.issuer == self.issuer
                && cert.key.kid().as_str() == key.kid
                && cert.exp > now
                && !revokes(&cert.cid)
                && served.len() < MAX_SERVED
            {
                served.push(ServedCertificate {
                    text: Arc::from(text),
                    cert: Arc::new(cert.clone()),
                });
            }
        }
        if !served.is_empty() {
            return Ok((served, false));
        }
        let primary = match decode_unverified(&key.certificate) {
            Ok(Unverified::Certificate { certificate, .. }) => Arc::new(*certificate),
            _ => {
                return Err(KeyringError::Store(StoreError::Corrupt(format!(
                    "the certificate of key {} does not decode",
                    key.kid
                ))));
            }
        };
        let revoked = revokes(&primary.cid);
        let primary = ServedCertificate {
            text: Arc::from(key.certificate.as_str()),
            cert: primary,
        };
        Ok((vec![primary], revoked))
    }
}

fn corrupt(error: serde_json::Error) -> KeyringError {
    KeyringError::Store(StoreError::Corrupt(error.to_string()))
}
