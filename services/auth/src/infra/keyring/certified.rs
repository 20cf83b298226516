//! Keys certified elsewhere (BYOC, or any `--signing-key`): the checks a certificate must
//! pass before its key may sign — chain to a trusted root, the certified key is the key,
//! the issuer is this service, not expired, not revoked — and installing such a key by
//! import (a roll), plus the stored revocation list those checks consult.

use mcpg_license_core::{
    IssuerCertificate, PublicKey, RevocationList, SigningKey, Unverified, Validity,
    decode_unverified,
};

use super::{Keyring, KeyringError};
use crate::infra::store::{Actor, KeyRecord};

impl Keyring {
    /// The stored revocation list in force, verified against the trusted roots; a stored list
    /// that no longer verifies (the roots changed) is ignored with a warning.
    pub(crate) async fn revocations(&self) -> Result<Option<RevocationList>, KeyringError> {
        let Some(stored) = self.store.revocation_list().await? else {
            return Ok(None);
        };
        match self.trust.verify_revocation_list(&stored.list) {
            Ok(list) => Ok(Some(list)),
            Err(error) => {
                tracing::warn!(serial = stored.serial, error = %error, "ignoring a stored revocation list that does not verify against the trusted roots");
                Ok(None)
            }
        }
    }

    /// Installs a key certified by a trusted root (a BYOC roll): checked like the
    /// `--signing-key` at start, sealed with the KEK, published as pending now and active
    /// after the publish delay; the active key then retires as in a rotation.
    pub(crate) async fn import(
        &self,
        key: &SigningKey,
        certificate: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<KeyRecord, KeyringError> {
        let (cert, _) = self
            .check_installable(key.public_key(), certificate, "(imported)", now)
            .await?;
        self.install_pending(key, certificate.to_owned(), cert.exp, actor, now)
            .await
    }

    /// The certificate's claims and the kid of the root it chains to, when it may certify
    /// `key` for this service.
    pub(super) fn check_external(
        &self,
        key: &PublicKey,
        certificate: &str,
        path: &str,
        now: i64,
    ) -> Result<(IssuerCertificate, String), KeyringError> {
        let bad = |message: String| KeyringError::Certificate {
            path: path.to_owned(),
            message,
        };
        let (cert, root_kid) = match decode_unverified(certificate) {
            Ok(Unverified::Certificate { .. }) => {
                match self
                    .trust
                    .verify_certificate(certificate, now, Validity::Strict)
                {
                    Ok(verified) => (verified.certificate().clone(), verified.root().to_string()),
                    Err(e) => return Err(bad(format!("{} ({})", e, e.code()))),
                }
            }
            Ok(_) => return Err(bad("not an issuer certificate".into())),
            Err(e) => return Err(bad(e.to_string())),
        };
        if &cert.key != key {
            return Err(bad(format!(
                "certifies {} but the signing key is {}",
                cert.key.kid(),
                key.kid()
            )));
        }
        if cert.issuer != self.issuer {
            return Err(bad(format!(
                "is for issuer {:?} but this service is {:?}",
                cert.issuer, self.issuer
            )));
        }
        if cert.exp <= now {
            return Err(bad("has expired".into()));
        }
        Ok((cert, root_kid))
    }

    /// [`Keyring::check_external`] plus the stored revocation list: a revoked certificate is
    /// refused at start and at import.
    pub(super) async fn check_installable(
        &self,
        key: &PublicKey,
        certificate: &str,
        path: &str,
        now: i64,
    ) -> Result<(IssuerCertificate, String), KeyringError> {
        let (cert, root_kid) = self.check_external(key, certificate, path, now)?;
        if let Some(list) = self.revocations().await?
            && list.revokes_certificate(&cert.cid)
        {
            return Err(KeyringError::Revoked {
                cid: cert.cid,
                serial: list.serial,
            });
        }
        Ok((cert, root_kid))
    }
}
