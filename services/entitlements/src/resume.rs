//! Keeping a federated tenant's state across restarts: persisting the last good token (and
//! its plugin set) or the federation's explicit no, and restoring them at start, re-verified.

use mcpg_license_core::{UnixTime, Unverified, Validity, VerifyError, decode_unverified};

use crate::client::{Denial, FetchError};
use crate::entitlements::TenantEntitlements;
use crate::federation::{RefreshError, Source};
use crate::gateway::Gateway;
use crate::plugin_sets::TenantPluginSet;
use crate::schedule;
use crate::store::StateStore;
use crate::sync::MutexExt;
use crate::tenant::TenantKey;
use crate::verify::{VerifiedToken, rejection_code};

/// The persisted highest time, or 0 (with a warning when the file is unreadable).
pub(crate) fn load_max_seen(store: &StateStore) -> UnixTime {
    match store.load_max_seen() {
        Ok(t) => t.unwrap_or(0),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the persisted highest time seen");
            0
        }
    }
}

impl Gateway {
    pub(crate) fn persist(
        &self,
        source: &Source,
        token: Option<(&str, &str)>,
        revoked: Option<(&str, UnixTime)>,
    ) {
        let Some(store) = &self.inner.store else {
            return;
        };
        let now = self.inner.time.now();
        let gateway_id = source.status().gateway_id.clone();
        let record = StateStore::record(
            &source.state_key,
            &source.fingerprint,
            gateway_id.as_deref(),
            token,
            revoked,
            now,
        );
        if let Err(e) = store
            .save_federation(&record)
            .and_then(|()| store.save_max_seen(now))
        {
            tracing::error!(error = %e, "could not persist entitlement state");
        }
        if token.is_none() {
            self.persist_plugin_set(source, None);
        }
    }

    /// After the token naming `keep` is persisted: removes the credential's other plugin
    /// set files.
    pub(crate) fn prune_plugin_sets(&self, source: &Source, keep: Option<&str>) {
        let Some(store) = &self.inner.store else {
            return;
        };
        if let Err(e) = store.prune_plugin_sets(&source.fingerprint, keep) {
            tracing::warn!(error = %e, "could not remove an old plugin set file");
        }
    }

    /// Keeps the configs of the token about to be persisted, in a file named by their
    /// digest (written first; the previous set's file stays until the token is persisted,
    /// so a crash in between leaves the file the kept token names).
    pub(crate) fn persist_plugin_set(&self, source: &Source, set: Option<&TenantPluginSet>) {
        let Some(store) = &self.inner.store else {
            return;
        };
        let saved = match set {
            Some(set) => store.save_plugin_set(&source.fingerprint, set),
            None => store.prune_plugin_sets(&source.fingerprint, None),
        };
        if let Err(e) = saved {
            tracing::error!(error = %e, "could not persist the plugin set");
        }
    }

    /// Loads the last state of `source` from disk, re-verifying the token; anything that
    /// does not verify is ignored with a warning.
    pub(crate) fn restore(&self, source: &Source) {
        let Some(store) = &self.inner.store else {
            return;
        };
        let record = match store.load_federation(&source.fingerprint, &source.state_key) {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring unreadable entitlement state");
                return;
            }
        };
        source.status().gateway_id = record.gateway_id.clone();
        if let Some(code) = record.revoked.as_deref() {
            if let Some(denial) = Denial::from_code(code) {
                // Files written before `decided_at` existed: the save time is when it was said.
                let since = record.decided_at.unwrap_or(record.saved_at);
                self.inner.registry.update(
                    &source.slot,
                    TenantEntitlements::revoked(self.inner.catalog, denial.code(), since, None),
                );
                let mut status = source.status();
                status.stopped = denial == Denial::InvalidCredential;
                status.last_error = Some(RefreshError::Fetch(FetchError::Denied(denial)));
                // The federation said no before the restart; ask again now (unless the
                // credential itself was refused), never "at 1970".
                status.next_due = self.inner.time.now();
            }
            return;
        }
        let (Some(token), Some(cert)) = (&record.token, &record.issuer_certificate) else {
            return;
        };
        match self.reverify(token, cert) {
            Ok(verified) if record.gateway_id.as_deref() != Some(verified.claims.sub.as_str()) => {
                tracing::warn!(
                    "ignoring a persisted token that is not this gateway's (its subject differs)"
                );
            }
            Ok(verified) => {
                // A set kept beside the token counts only if the token's claim vouches for
                // it; otherwise the claim's ids still decide and the configs are fetched
                // again at once.
                let persisted = match &verified.claims.ps {
                    Some(claim) => store.load_plugin_set(&source.fingerprint, &claim.cfg),
                    None => Ok(None),
                };
                let restored = crate::plugin_sets::restore(&verified.claims, persisted);
                // Files of other sets are left by a crash between a set and its token.
                let keep = verified.claims.ps.as_ref().map(|claim| claim.cfg.as_str());
                if let Err(e) = store.prune_plugin_sets(&source.fingerprint, keep) {
                    tracing::warn!(error = %e, "could not remove an old plugin set file");
                }
                let configs_missing = restored.as_ref().is_some_and(|(_, ok)| !ok);
                self.apply_token(source, &verified, restored.map(|(set, _)| set));
                // Due now when the token is in grace or lapsed (or its configs are
                // missing); else at its refresh time.
                let now = self.inner.time.now();
                let c = &verified.claims;
                let mut rng = self.inner.rng.lock_or_recover();
                source.status().next_due = match now < c.exp && !configs_missing {
                    true => schedule::next_refresh(c.iat, c.rfa, c.exp, now, &mut rng),
                    false => now,
                };
                tracing::info!(tenant = %TenantKey::of_claims(c), state = %source.slot.handle().state(), "resumed entitlements from the state directory");
            }
            Err(e) => {
                tracing::warn!(code = rejection_code(&e), error = %e, "ignoring a persisted token that does not verify");
            }
        }
    }

    /// Re-verifies a persisted token until its grace bound; past it, verifies it as of its
    /// issue time so that a genuine but lapsed token resumes as Lapsed (never Active).
    fn reverify(&self, token: &str, cert: &str) -> Result<VerifiedToken, VerifyError> {
        let now = self.inner.time.now();
        let verifier = &self.inner.verifier;
        match verifier.verify(token, cert, now, Validity::UntilGrace) {
            Err(VerifyError::Expired { .. } | VerifyError::CertificateExpired { .. }) => {
                let Ok(Unverified::OnlineToken(claims)) = decode_unverified(token) else {
                    return Err(VerifyError::Malformed("not an online token".into()));
                };
                verifier.verify(token, cert, claims.iat, Validity::UntilGrace)
            }
            other => other,
        }
    }
}
