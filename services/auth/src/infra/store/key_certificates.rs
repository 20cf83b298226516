//! The further certificates of a signing key. During a root rollover a new root certifies
//! the same issuer key, so the key has one certificate per root: `signing_keys.certificate`
//! is the key's primary certificate, this table holds the others. Adding and removing one
//! is audited on the system chain, like installing a key.

use mcpg_license_core::audit::SYSTEM_CHAIN;
use serde_json::json;

use super::audit_log::{Actor, AuditAction, Event};
use super::{Store, StoreError, in_tx};

/// A further certificate of a signing key, as stored.
#[derive(Debug, Clone)]
pub(crate) struct KeyCertificateRecord {
    /// The certificate id (`cid` claim).
    pub(crate) cid: String,
    /// The certificate (PASETO v4.public).
    pub(crate) certificate: String,
    /// The root that signed it.
    pub(crate) root_kid: String,
    /// Its expiry.
    pub(crate) expires_at: i64,
}

/// A certificate to add to a key.
#[derive(Debug, Clone)]
pub(crate) struct NewKeyCertificate {
    /// The certificate id.
    pub(crate) cid: String,
    /// The key it certifies.
    pub(crate) kid: String,
    /// The certificate text.
    pub(crate) certificate: String,
    /// The root that signed it.
    pub(crate) root_kid: String,
    /// Its expiry.
    pub(crate) expires_at: i64,
}

impl Store {
    /// Adds a further certificate to a key.
    pub(crate) async fn insert_key_certificate(
        &self,
        cert: &NewKeyCertificate,
        actor: &Actor,
        now: i64,
    ) -> Result<(), StoreError> {
        in_tx!(self.global(), tx => {
            sqlx::query(
                "INSERT INTO signing_key_certificates \
                 (cid, kid, certificate, root_kid, expires_at, added_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&cert.cid)
                .bind(&cert.kid)
                .bind(&cert.certificate)
                .bind(&cert.root_kid)
                .bind(cert.expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::unique("this certificate is already installed"))?;
            let event = Event::new(AuditAction::KeyCertificateAdd, cert.kid.as_str(),
                json!({"cid": cert.cid, "root_kid": cert.root_kid,
                       "cert_expires_at": cert.expires_at}));
            tx.append_audit(SYSTEM_CHAIN, actor, &[event], now).await?;
        });
        Ok(())
    }

    /// Removes the further certificate `cid` of key `kid`.
    pub(crate) async fn delete_key_certificate(
        &self,
        kid: &str,
        cid: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<(), StoreError> {
        in_tx!(self.global(), tx => {
            let deleted = sqlx::query(
                "DELETE FROM signing_key_certificates WHERE kid = $1 AND cid = $2")
                .bind(kid)
                .bind(cid)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Err(StoreError::NotFound("certificate"));
            }
            let event = Event::new(AuditAction::KeyCertificateRemove, kid,
                json!({"cid": cid}));
            tx.append_audit(SYSTEM_CHAIN, actor, &[event], now).await?;
        });
        Ok(())
    }

    /// Removes key `kid`'s primary certificate `primary` (cid `primary_cid`): the further
    /// certificate `promoted` becomes the primary. Refused as a conflict when the primary
    /// changed meanwhile (a renewal, another removal).
    pub(crate) async fn replace_primary_certificate(
        &self,
        kid: &str,
        primary: (&str, &str),
        promoted: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<(), StoreError> {
        let (primary_cid, primary_text) = primary;
        in_tx!(self.global(), tx => {
            let updated = sqlx::query(
                "UPDATE signing_keys SET \
                 certificate = (SELECT certificate FROM signing_key_certificates WHERE cid = $3), \
                 cert_expires_at = (SELECT expires_at FROM signing_key_certificates WHERE cid = $3) \
                 WHERE kid = $1 AND certificate = $2 \
                 AND EXISTS (SELECT 1 FROM signing_key_certificates WHERE cid = $3 AND kid = $1)")
                .bind(kid)
                .bind(primary_text)
                .bind(promoted)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated == 0 {
                return Err(StoreError::Conflict(
                    "the key's certificates changed meanwhile; list them and try again"));
            }
            sqlx::query("DELETE FROM signing_key_certificates WHERE cid = $1")
                .bind(promoted)
                .execute(&mut *tx)
                .await?;
            let event = Event::new(AuditAction::KeyCertificateRemove, kid,
                json!({"cid": primary_cid, "primary": promoted}));
            tx.append_audit(SYSTEM_CHAIN, actor, &[event], now).await?;
        });
        Ok(())
    }
}
