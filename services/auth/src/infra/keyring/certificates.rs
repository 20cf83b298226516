//! Several certificates of one signing key, for a root rollover without a flag day: a new
//! root certifies the same issuer key, the service serves both certificates with every
//! token, gateways pinning either root keep federating, and the old certificate is removed
//! once every gateway carries the new root. Adding one runs the checks of an import
//! ([`Keyring::check_installable`]); the last certificate of a key is never removed.

use std::collections::HashSet;

use mcpg_license_core::{IssuerCertificate, PublicKey, SigningKey, Unverified, decode_unverified};

use super::{Keyring, KeyringError};
use crate::domain::KeyState;
use crate::infra::store::{Actor, KeyRecord, NewKeyCertificate, StoreError};

/// One certificate of a key, as the admin API lists it.
#[derive(Debug, Clone)]
pub(crate) struct CertificateInfo {
    /// The certificate id (`cid`).
    pub(crate) cid: String,
    /// The root that signed it.
    pub(crate) root_kid: String,
    /// Its expiry.
    pub(crate) expires_at: i64,
    /// Whether it is the key's primary certificate (served first, and alone to gateways
    /// that read only `issuer_certificate`).
    pub(crate) primary: bool,
}

/// A configured `--signing-key` with its `--certificate`s (text and file name), primary
/// first.
#[derive(Debug)]
pub(crate) struct ConfiguredKey {
    /// The secret key.
    pub(crate) key: SigningKey,
    /// Its certificates, primary first.
    pub(crate) certificates: Vec<(String, String)>,
}

/// Every certificate of `key`, primary first.
pub(crate) fn certificates_of(key: &KeyRecord) -> Vec<CertificateInfo> {
    let mut all = Vec::with_capacity(1 + key.more_certificates.len());
    if let Ok(Unverified::Certificate {
        certificate,
        root_kid,
    }) = decode_unverified(&key.certificate)
    {
        all.push(CertificateInfo {
            cid: certificate.cid,
            root_kid,
            expires_at: key.cert_expires_at,
            primary: true,
        });
    }
    all.extend(key.more_certificates.iter().map(|c| CertificateInfo {
        cid: c.cid.clone(),
        root_kid: c.root_kid.clone(),
        expires_at: c.expires_at,
        primary: false,
    }));
    all
}

fn primary_cid(key: &KeyRecord) -> Option<String> {
    match decode_unverified(&key.certificate) {
        Ok(Unverified::Certificate { certificate, .. }) => Some(certificate.cid),
        _ => None,
    }
}

impl Keyring {
    /// Adds `certificate` to the key `kid`: it must certify that key for this issuer, chain
    /// to a trusted root, be valid and unrevoked, and not be stored yet. Served from the
    /// next reload (done here for this replica).
    pub(crate) async fn add_certificate(
        &self,
        kid: &str,
        certificate: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<CertificateInfo, KeyringError> {
        let key = self.stored_key(kid).await?;
        if key.state == KeyState::Retired {
            return Err(KeyringError::Conflict("the key is retired".into()));
        }
        let public = PublicKey::from_paserk(&key.public_key)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (cert, root_kid) = self
            .check_installable(&public, certificate, "(added)", now)
            .await?;
        if certificates_of(&key).iter().any(|c| c.cid == cert.cid) {
            return Err(KeyringError::Conflict(format!(
                "certificate {} is already installed for this key",
                cert.cid
            )));
        }
        self.store_certificate(&key.kid, certificate, &cert, &root_kid, actor, now)
            .await?;
        self.reload(now).await?;
        Ok(CertificateInfo {
            cid: cert.cid,
            root_kid,
            expires_at: cert.exp,
            primary: false,
        })
    }

    /// Removes the certificate `cid` of the key `kid`. The last one is refused; removing
    /// the primary makes the oldest further certificate the primary.
    pub(crate) async fn remove_certificate(
        &self,
        kid: &str,
        cid: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<(), KeyringError> {
        let key = self.stored_key(kid).await?;
        let primary = primary_cid(&key);
        if primary.as_deref() == Some(cid) {
            let Some(promoted) = key.more_certificates.first() else {
                return Err(KeyringError::Conflict(
                    "this is the key's last certificate: add another one before removing it".into(),
                ));
            };
            self.store
                .replace_primary_certificate(
                    &key.kid,
                    (cid, &key.certificate),
                    &promoted.cid,
                    actor,
                    now,
                )
                .await?;
        } else {
            self.store
                .delete_key_certificate(&key.kid, cid, actor, now)
                .await?;
        }
        self.reload(now).await
    }

    /// Checks the configured key's certificates, installs the key (with its first
    /// certificate) when it is new, and adds the certificates not stored yet.
    pub(super) async fn install_configured(
        &self,
        configured: &ConfiguredKey,
        now: i64,
    ) -> Result<(), KeyringError> {
        let key = &configured.key;
        let mut checked = Vec::with_capacity(configured.certificates.len());
        for (text, path) in &configured.certificates {
            let (cert, root_kid) = self
                .check_installable(key.public_key(), text, path, now)
                .await?;
            checked.push((text.as_str(), cert, root_kid));
        }
        let Some((primary, cert, _)) = checked.first() else {
            return Err(KeyringError::Certificate {
                path: "(none)".into(),
                message: "the signing key needs at least one certificate".into(),
            });
        };
        let known = self
            .store
            .keys()
            .await?
            .iter()
            .any(|k| k.kid == key.kid().as_str());
        if !known {
            self.install_configured_key(key, (*primary).to_owned(), cert.exp, now)
                .await?;
        }
        let stored = self.stored_key(key.kid().as_str()).await?;
        let mut have: HashSet<String> = certificates_of(&stored)
            .into_iter()
            .map(|c| c.cid)
            .collect();
        for (text, cert, root_kid) in &checked {
            if have.insert(cert.cid.clone()) {
                match self
                    .store_certificate(&stored.kid, text, cert, root_kid, &Actor::system(), now)
                    .await
                {
                    // Another replica starting with the same flags added it first.
                    Ok(()) | Err(KeyringError::Store(StoreError::Conflict(_))) => {}
                    Err(error) => return Err(error),
                }
                tracing::info!(kid = %stored.kid, cid = %cert.cid, root = %root_kid, "added a configured certificate of the signing key");
            }
        }
        Ok(())
    }

    async fn store_certificate(
        &self,
        kid: &str,
        text: &str,
        cert: &IssuerCertificate,
        root_kid: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<(), KeyringError> {
        let new = NewKeyCertificate {
            cid: cert.cid.clone(),
            kid: kid.to_owned(),
            certificate: text.to_owned(),
            root_kid: root_kid.to_owned(),
            expires_at: cert.exp,
        };
        Ok(self.store.insert_key_certificate(&new, actor, now).await?)
    }

    async fn stored_key(&self, kid: &str) -> Result<KeyRecord, KeyringError> {
        self.store
            .keys()
            .await?
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or(KeyringError::Store(StoreError::NotFound("signing key")))
    }
}
