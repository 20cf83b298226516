//! The development root keeps the published keys certified: a certificate close to its
//! end is renewed, one the root no longer vouches for (the root changed) is replaced, and
//! a replica whose `--issuer` is not the certificate's gets a certificate of its own beside
//! it.
//!
//! That last case is why a key may carry one development certificate per issuer URL:
//! replicas sharing a database should run with one `--issuer` (the public URL), but while
//! an operator changes it replica by replica, or when one was started without it (the
//! issuer then defaults to its own listen address), two issuers certify the same key. Were
//! the primary certificate replaced on a mismatch, each replica would take it back from
//! the other at every reload — and, with changes announced between replicas, at once, in
//! a loop. Adding a certificate ends that: each replica serves the one for its issuer
//! (see `snapshot`), and the others never touch it.

use mcpg_license_core::{PublicKey, SigningKey, TrustStore, Validity};

use super::{DEV_CERT_RENEW_BEFORE, Keyring, KeyringError, certify_public};
use crate::infra::store::{Actor, KeyCertificateRecord, KeyRecord, NewKeyCertificate, StoreError};

/// What the development root does for one published key at a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Renewal {
    /// A certificate for this issuer is valid for long enough.
    None,
    /// Replace the primary certificate: it is this issuer's and due, or the root does not
    /// vouch for it (any more).
    Primary,
    /// Add a certificate for this issuer: the primary is another issuer's.
    Add,
}

impl Keyring {
    /// Renews, replaces or adds the development certificates `keys` need; returns the keys
    /// as stored afterwards.
    pub(super) async fn renew_dev_certificates(
        &self,
        root: &SigningKey,
        mut keys: Vec<KeyRecord>,
        now: i64,
    ) -> Result<Vec<KeyRecord>, KeyringError> {
        let trust = TrustStore::new([root.public_key().clone()]);
        let mut changed = false;
        let root_kid = root.kid().to_string();
        for key in keys.iter().filter(|k| k.state.is_published()) {
            let renewal = self.renewal(&trust, key, now);
            // This root's further certificates that are of no use any more: expired ones,
            // and this issuer's own when a fresh one replaces it.
            let stale: Vec<&str> = key
                .more_certificates
                .iter()
                .filter(|c| c.root_kid == root_kid)
                .filter(|c| {
                    c.expires_at <= now || (renewal == Renewal::Add && self.is_ours(&trust, c, now))
                })
                .map(|c| c.cid.as_str())
                .collect();
            if renewal == Renewal::None {
                changed |= self.remove_stale(&key.kid, &stale, now).await?;
                continue;
            }
            let public = PublicKey::from_paserk(&key.public_key)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let (certificate, exp) = certify_public(root, &self.issuer, &public, now)?;
            changed = true;
            if renewal == Renewal::Primary {
                // Only if no other replica renewed it since this one read it.
                let renewed = self
                    .store
                    .update_certificate(&key.kid, &key.certificate, &certificate, exp, now)
                    .await?;
                if renewed {
                    tracing::info!(kid = %key.kid, "renewed the signing key's certificate");
                }
                continue;
            }
            let cid = match trust.verify_certificate(&certificate, now, Validity::Strict) {
                Ok(verified) => verified.certificate().cid.clone(),
                Err(error) => return Err(KeyringError::Sign(error.to_string())),
            };
            let new = NewKeyCertificate {
                cid,
                kid: key.kid.clone(),
                certificate,
                root_kid: root.kid().to_string(),
                expires_at: exp,
            };
            self.store
                .insert_key_certificate(&new, &Actor::system(), now)
                .await?;
            tracing::warn!(
                kid = %key.kid,
                issuer = %self.issuer,
                "certified the signing key for this replica's issuer URL beside another replica's: replicas sharing a database should run with the same --issuer (the public URL gateways use)"
            );
            self.remove_stale(&key.kid, &stale, now).await?;
        }
        if changed {
            keys = self.store.keys().await?;
        }
        Ok(keys)
    }

    /// Removes the further certificates `cids` of key `kid`; whether there were any.
    async fn remove_stale(&self, kid: &str, cids: &[&str], now: i64) -> Result<bool, KeyringError> {
        for cid in cids {
            match self
                .store
                .delete_key_certificate(kid, cid, &Actor::system(), now)
                .await
            {
                // Another replica removed it first.
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(!cids.is_empty())
    }

    /// Whether `certificate` is one the development root made for this issuer, valid now.
    fn is_ours(&self, trust: &TrustStore, certificate: &KeyCertificateRecord, now: i64) -> bool {
        trust
            .verify_certificate(&certificate.certificate, now, Validity::Strict)
            .is_ok_and(|c| c.certificate().issuer == self.issuer)
    }

    fn renewal(&self, trust: &TrustStore, key: &KeyRecord, now: i64) -> Renewal {
        let fresh_for_us = |text: &str| {
            trust
                .verify_certificate(text, now, Validity::Strict)
                .is_ok_and(|c| {
                    let cert = c.certificate();
                    cert.issuer == self.issuer
                        && cert.key.kid().as_str() == key.kid
                        && cert.exp - now >= DEV_CERT_RENEW_BEFORE
                })
        };
        let texts = std::iter::once(key.certificate.as_str())
            .chain(key.more_certificates.iter().map(|c| c.certificate.as_str()));
        if texts.clone().any(fresh_for_us) {
            return Renewal::None;
        }
        match trust.verify_certificate(&key.certificate, now, Validity::Strict) {
            Ok(primary) if primary.certificate().issuer != self.issuer => Renewal::Add,
            _ => Renewal::Primary,
        }
    }
}
