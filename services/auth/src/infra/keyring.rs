//! The signing keys as the process uses them: the active key, parsed once and shared by
//! every request, and the JWKS rendered once per reload.
//!
//! Keys live in the database. Each replica reloads them periodically (and after a
//! rotation it performs itself), moving keys along `pending → active → retiring →
//! retired` by time, so replicas agree without talking to each other. A pending key is
//! published for the publish delay before it signs, so verifiers that cache the JWKS see it
//! first; a retiring key stays published until every token it signed is past its grace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock};

use mcpg_license_core::cert::DEFAULT_MAX_GRACE;
use mcpg_license_core::{Bounds, IssuerCertificate, JwtSigner, PublicKey, SigningKey, TrustStore};
use thiserror::Error;

use crate::domain::{KeyState, new_id};
use crate::infra::secrets::{Kek, SecretError};
use crate::infra::store::{Actor, KeyRecord, NewKey, Store, StoreError};

mod certificates;
mod certified;
mod dev_root;
mod renewal;
mod snapshot;

pub(crate) use certificates::{CertificateInfo, ConfiguredKey, certificates_of};
pub(crate) use dev_root::{RootOrigin, cluster_dev_root};
pub(crate) use snapshot::KeySnapshot;

/// Lifetime of online tokens (seconds).
pub(crate) const TOKEN_LIFETIME: i64 = 86_400;
/// How long a retiring key stays published: the longest token lifetime plus grace, plus
/// leeway for clock skew.
pub(crate) const RETIRE_AFTER: i64 = TOKEN_LIFETIME + DEFAULT_MAX_GRACE + 3_600;
/// Validity of certificates the development root issues.
pub(crate) const DEV_CERT_VALIDITY: i64 = 90 * 86_400;
/// Certificates are renewed by the development root when they have less than this left.
pub(crate) const DEV_CERT_RENEW_BEFORE: i64 = 30 * 86_400;

/// A key management failure.
#[derive(Debug, Error)]
pub(crate) enum KeyringError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A secret could not be read, sealed or opened.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The external key and certificate do not belong together or to this issuer.
    #[error("certificate {path}: {message}")]
    Certificate {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Signing a certificate failed.
    #[error("cannot sign a certificate: {0}")]
    Sign(String),
    /// A certificate from the revocation list in force.
    #[error("certificate {cid} is revoked by the revocation list in force (serial {serial})")]
    Revoked {
        /// The certificate id.
        cid: String,
        /// The list's serial.
        serial: u64,
    },
    /// The change conflicts with the key's state (a retired key, a certificate already
    /// installed, the last certificate).
    #[error("{0}")]
    Conflict(String),
    /// Rotation needs a root secret to certify the new key.
    #[error(
        "this service has no root key to certify a new key (its key was certified offline): \
         certify a new key with `mcpg-license certify` and roll to it with \
         `mcpg-ctl keys import --signing-key FILE --certificate FILE` \
         (POST /v1/admin/keys/import)"
    )]
    NoRoot,
}

/// The process's view of the signing keys.
#[derive(Debug)]
pub(crate) struct Keyring {
    store: Store,
    kek: Kek,
    issuer: String,
    root: Option<SigningKey>,
    trust: TrustStore,
    publish_delay: i64,
    current: RwLock<Option<Arc<KeySnapshot>>>,
    /// Held by each reload from its first read to its swap: two reloads that overlapped
    /// could swap in the older read last (the periodic one reading before a rotation's
    /// insert and finishing after the rotation's own reload), unpublishing a pending key
    /// until the next reload.
    reloading: tokio::sync::Mutex<()>,
    opened: Mutex<HashMap<String, Arc<JwtSigner>>>,
    /// When the earliest pending key becomes active (Unix seconds; `i64::MAX`: none), as
    /// of the last reload: the reloader wakes then rather than at its next period.
    next_activation: AtomicI64,
}

impl Keyring {
    /// A keyring over `store`. `root` certifies new keys (the development root); without it
    /// keys come only from `--signing-key` or an import, and their certificates must chain
    /// to one of `trusted_roots` (the development root is trusted when given).
    pub(crate) fn new(
        store: Store,
        kek: Kek,
        issuer: String,
        root: Option<SigningKey>,
        trusted_roots: Vec<PublicKey>,
        publish_delay: i64,
    ) -> Self {
        let mut trust = TrustStore::new(trusted_roots);
        if let Some(root) = &root {
            trust.add_root(root.public_key().clone());
        }
        Self {
            store,
            kek,
            issuer,
            root,
            trust,
            publish_delay,
            current: RwLock::new(None),
            reloading: tokio::sync::Mutex::new(()),
            opened: Mutex::new(HashMap::new()),
            next_activation: AtomicI64::new(i64::MAX),
        }
    }

    /// The roots this service's certificates (and revocation lists) must chain to.
    pub(crate) fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// The current snapshot; `None` until a key is active.
    pub(crate) fn snapshot(&self) -> Option<Arc<KeySnapshot>> {
        self.current.read().ok().and_then(|guard| guard.clone())
    }

    /// Makes sure a key exists: generates and certifies the first key with the root, or
    /// installs the externally certified key (active if it is the first, else pending) and
    /// adds those of its certificates that are not stored yet.
    pub(crate) async fn initialize(
        &self,
        external: Option<ConfiguredKey>,
        now: i64,
    ) -> Result<(), KeyringError> {
        match external {
            Some(configured) => self.install_configured(&configured, now).await?,
            None => {
                let key = SigningKey::generate().map_err(|e| KeyringError::Sign(e.to_string()))?;
                let (certificate, exp) = self.certify(&key, now)?;
                let new = self.new_key(&key, certificate, exp, KeyState::Active, now)?;
                if self.store.insert_first_key(&new, now).await? {
                    tracing::info!(kid = %key.kid(), "generated the first signing key");
                }
            }
        }
        self.reload(now).await
    }

    /// Stores the configured key: active when it is the deployment's first, else pending.
    async fn install_configured_key(
        &self,
        key: &SigningKey,
        certificate: String,
        cert_expires_at: i64,
        now: i64,
    ) -> Result<(), KeyringError> {
        let mut new = self.new_key(key, certificate, cert_expires_at, KeyState::Active, now)?;
        if !self.store.insert_first_key(&new, now).await? {
            new.state = KeyState::Pending;
            new.activate_at = now + self.publish_delay;
            self.store.insert_key(&new, &Actor::system(), now).await?;
            tracing::info!(kid = %key.kid(), "installed the configured signing key as pending");
        }
        Ok(())
    }

    /// Advances key states, renews certificates that are close to expiry (when a root is
    /// at hand) and swaps in a fresh snapshot.
    pub(crate) async fn reload(&self, now: i64) -> Result<(), KeyringError> {
        let _serialised = self.reloading.lock().await;
        self.store.advance_keys(now, RETIRE_AFTER).await?;
        let mut keys = self.store.keys().await?;
        if let Some(root) = &self.root {
            keys = self.renew_dev_certificates(root, keys, now).await?;
        }
        let next = keys
            .iter()
            .filter(|k| k.state == KeyState::Pending)
            .map(|k| k.activate_at)
            .min()
            .unwrap_or(i64::MAX);
        self.next_activation.store(next, AtomicOrdering::Relaxed);
        let revocations = self.revocations().await?;
        let snapshot = self.build_snapshot(&keys, revocations.as_ref(), now)?;
        if let Ok(mut guard) = self.current.write() {
            *guard = snapshot.map(Arc::new);
        }
        Ok(())
    }

    /// When the earliest pending key becomes active (Unix seconds), if any.
    pub(crate) fn next_activation(&self) -> Option<i64> {
        Some(self.next_activation.load(AtomicOrdering::Relaxed)).filter(|&t| t != i64::MAX)
    }

    /// Starts a rotation: a new key, certified by the root, published as pending now and
    /// active after the publish delay.
    pub(crate) async fn rotate(&self, actor: &Actor, now: i64) -> Result<KeyRecord, KeyringError> {
        if self.root.is_none() {
            return Err(KeyringError::NoRoot);
        }
        let key = SigningKey::generate().map_err(|e| KeyringError::Sign(e.to_string()))?;
        let (certificate, exp) = self.certify(&key, now)?;
        self.install_pending(&key, certificate, exp, actor, now)
            .await
    }

    /// Stores `key` as pending (active after the publish delay), reloads, and returns it.
    async fn install_pending(
        &self,
        key: &SigningKey,
        certificate: String,
        cert_expires_at: i64,
        actor: &Actor,
        now: i64,
    ) -> Result<KeyRecord, KeyringError> {
        let new = self.new_key(
            key,
            certificate,
            cert_expires_at,
            KeyState::Pending,
            now + self.publish_delay,
        )?;
        self.store.insert_key(&new, actor, now).await?;
        self.reload(now).await?;
        let keys = self.store.keys().await?;
        keys.into_iter()
            .find(|k| k.kid == key.kid().as_str())
            .ok_or(KeyringError::Store(StoreError::NotFound("signing key")))
    }

    fn signer_for(&self, key: &KeyRecord) -> Result<Arc<JwtSigner>, KeyringError> {
        if let Some(signer) = self
            .opened
            .lock()
            .ok()
            .and_then(|m| m.get(&key.kid).cloned())
        {
            return Ok(signer);
        }
        let secret = self.kek.open_key(&key.kid, &key.secret_sealed)?;
        let signer = Arc::new(JwtSigner::new(secret));
        if let Ok(mut map) = self.opened.lock() {
            map.insert(key.kid.clone(), signer.clone());
        }
        Ok(signer)
    }

    fn certify(&self, key: &SigningKey, now: i64) -> Result<(String, i64), KeyringError> {
        let root = self.root.as_ref().ok_or(KeyringError::NoRoot)?;
        certify_public(root, &self.issuer, key.public_key(), now)
    }

    fn new_key(
        &self,
        key: &SigningKey,
        certificate: String,
        cert_expires_at: i64,
        state: KeyState,
        activate_at: i64,
    ) -> Result<NewKey, KeyringError> {
        Ok(NewKey {
            kid: key.kid().to_string(),
            public_key: key.public_key().to_paserk(),
            secret_sealed: self.kek.seal_key(key)?,
            certificate,
            cert_expires_at,
            state,
            activate_at,
        })
    }
}

/// Certifies `key` for `issuer` with `root`: unbounded, valid for [`DEV_CERT_VALIDITY`].
fn certify_public(
    root: &SigningKey,
    issuer: &str,
    key: &PublicKey,
    now: i64,
) -> Result<(String, i64), KeyringError> {
    let cert = IssuerCertificate {
        cid: new_id(),
        issuer: issuer.to_owned(),
        key: key.clone(),
        iat: now,
        nbf: now - 60,
        exp: now + DEV_CERT_VALIDITY,
        bounds: Bounds::unbounded(),
    };
    let token = cert
        .sign(root)
        .map_err(|e| KeyringError::Sign(e.to_string()))?;
    Ok((token, cert.exp))
}
