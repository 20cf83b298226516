//! Revocation lists. At start: the one kept in the state directory and the configured one,
//! whichever has the higher serial wins; the winner is kept for the next start. While
//! running: a newer list from a file or from the federation
//! (`GET /.well-known/mcpg-revocations`, fetched hourly) is applied at once — tokens under
//! a revoked certificate and a revoked offline license stop granting anything, grace or
//! not — and kept.

use std::path::Path;
use std::sync::atomic::Ordering;

use mcpg_license_core::{TrustStore, UnixTime, VerifyError};
use thiserror::Error;

use crate::client::FetchError;
use crate::entitlements::{Basis, TenantEntitlements};
use crate::files::{MAX_REVOCATION_LIST, read_text};
use crate::gateway::{Gateway, StartError};
use crate::store::StateStore;

/// Applies the persisted and the configured revocation lists to `trust`. A configured list
/// that does not verify stops the start; an unreadable persisted one is ignored with a
/// warning (the configured list, or the next one, replaces it).
pub(crate) fn apply(
    store: &StateStore,
    trust: &mut TrustStore,
    configured: Option<&str>,
) -> Result<(), StartError> {
    match store.load_revocations() {
        Ok(Some(kept)) => {
            if let Err(e) = trust.apply_revocation_list(&kept) {
                tracing::warn!(error = %e, "ignoring the revocation list kept in the state directory");
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the revocation list kept in the state directory")
        }
    }
    let Some(configured) = configured else {
        return Ok(());
    };
    if trust
        .apply_revocation_list(configured)
        .map_err(StartError::Revocations)?
    {
        if let Err(e) = store.save_revocations(configured) {
            tracing::error!(error = %e, "could not keep the revocation list");
        }
    } else {
        tracing::warn!(
            kept = trust.revocations().map(|r| r.serial),
            "the configured revocation list is not newer than the one already applied; keeping the newer one"
        );
    }
    if let Some(list) = trust.revocations() {
        tracing::info!(
            serial = list.serial,
            certificates = list.certificates.len(),
            licenses = list.licenses.len(),
            "revocation list in force"
        );
    }
    Ok(())
}

/// How often a federated gateway fetches the federation's revocation list.
pub const REVOCATIONS_INTERVAL: i64 = 3_600;

/// The offline license an offline gateway runs on, kept to re-verify it against each new
/// revocation list.
pub(crate) struct OfflineLicense {
    pub(crate) license: String,
    pub(crate) deployment_id: Option<String>,
}

/// Why a revocation list was not applied.
#[derive(Debug, Error)]
pub enum RevocationError {
    /// The list file could not be read.
    #[error("cannot read revocation list {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The federation could not be asked.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The list does not verify against the pinned roots.
    #[error("revocation list rejected ({code}): {0}", code = .0.code())]
    Rejected(#[from] VerifyError),
}

impl Gateway {
    /// The serial of the revocation list in force, if any.
    pub fn revocation_serial(&self) -> Option<u64> {
        self.inner.verifier.revocation_serial()
    }

    /// Verifies a root-signed revocation list and, when its serial is higher than the one
    /// in force, applies it at once: it is kept in the state directory, tokens under a
    /// certificate it names and an offline license it names stop granting anything (grace
    /// included). Returns whether it was applied (`false`: not newer, ignored).
    pub fn apply_revocation_list(&self, list: &str) -> Result<bool, VerifyError> {
        let list = list.trim();
        if !self.inner.verifier.apply_revocation_list(list)? {
            tracing::debug!(
                serial = self.revocation_serial(),
                "revocation list not newer than the one in force; ignored"
            );
            return Ok(false);
        }
        if let Some(store) = &self.inner.store
            && let Err(e) = store.save_revocations(list)
        {
            tracing::error!(error = %e, "could not keep the revocation list");
        }
        tracing::warn!(serial = self.revocation_serial(), "revocation list applied");
        self.enforce_revocations();
        Ok(true)
    }

    /// [`Gateway::apply_revocation_list`] with a list file (air-gapped sites get it with
    /// their license update).
    pub fn load_revocation_file(&self, path: &Path) -> Result<bool, RevocationError> {
        let text =
            read_text(path, MAX_REVOCATION_LIST).map_err(|source| RevocationError::Read {
                path: path.display().to_string(),
                source,
            })?;
        Ok(self.apply_revocation_list(&text)?)
    }

    /// Re-reads the file set with [`crate::GatewayBuilder::revocation_file`] and applies
    /// the list when newer. `Ok(None)`: no file is configured.
    pub fn reload_revocation_file(&self) -> Result<Option<bool>, RevocationError> {
        match &self.inner.revocation_file {
            Some(path) => self.load_revocation_file(path).map(Some),
            None => Ok(None),
        }
    }

    /// Fetches the federation's revocation list and applies it when newer. `Ok(None)`: the
    /// gateway is not federated or the federation publishes no list.
    pub async fn refresh_revocations(&self) -> Result<Option<bool>, RevocationError> {
        let Some(source) = self.inner.sources.first() else {
            return Ok(None);
        };
        let now = self.inner.time.now();
        self.inner
            .revocations_due
            .store(now.saturating_add(REVOCATIONS_INTERVAL), Ordering::Release);
        match source.client.fetch_revocations().await? {
            Some(list) => Ok(Some(self.apply_revocation_list(&list)?)),
            None => Ok(None),
        }
    }

    /// When the federation's revocation list is next due (federated gateways).
    pub(crate) fn revocations_due(&self) -> Option<UnixTime> {
        (!self.inner.sources.is_empty()).then(|| self.inner.revocations_due.load(Ordering::Acquire))
    }

    /// Ends, at once, what the list in force revokes: federated tenants whose token's
    /// certificate it names, and the offline license when it (or its certificate) is named.
    fn enforce_revocations(&self) {
        let now = self.inner.time.now();
        for source in &self.inner.sources {
            let revoked = {
                let status = source.status();
                let trust = self.inner.verifier.trust();
                match (trust.revocations(), &status.certificate_id) {
                    (Some(list), Some(cid)) => list.revokes_certificate(cid),
                    _ => false,
                }
            };
            let current = source.slot.handle().entitlements();
            if revoked && !matches!(current.basis(), Basis::Revoked { .. }) {
                let details = current.details().cloned();
                if let Some(key) = source.tenant() {
                    tracing::error!(tenant = %key, "the issuer certificate of this tenant's token is revoked: entitlements end now (Tier-0)");
                }
                self.inner.registry.update(
                    &source.slot,
                    TenantEntitlements::revoked(
                        self.inner.catalog,
                        CERTIFICATE_REVOKED,
                        now,
                        details,
                    ),
                );
            }
        }
        if let Some(offline) = &self.inner.offline {
            let verdict = self.inner.verifier.trust().verify_offline_license(
                &offline.license,
                now,
                offline.deployment_id.as_deref(),
            );
            if let Err(VerifyError::Revoked(what)) = verdict {
                let own = &self.inner.own;
                let details = own.handle().entitlements().details().cloned();
                tracing::error!(revoked = %what, "the offline license is revoked: entitlements end now (Tier-0)");
                self.inner.registry.update(
                    own,
                    TenantEntitlements::revoked(self.inner.catalog, LICENSE_REVOKED, now, details),
                );
            }
        }
    }
}

/// The revoked reason of a tenant whose token's issuer certificate a list names.
pub const CERTIFICATE_REVOKED: &str = "certificate_revoked";
/// The revoked reason of an offline license a list names.
pub const LICENSE_REVOKED: &str = "offline_license_revoked";
