//! Federated tenants: one source per gateway credential. Refreshing (single-flight per
//! source), applying verified tokens (with their plugin sets), explicit denials, outages
//! and backoff. Persisting and restoring the state is in `resume.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mcpg_license_core::{LEEWAY, UnixTime, Validity, VerifyError};
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;

use crate::client::{Denial, FederationClient, FetchError};
use crate::config::Mode;
use crate::decision::State;
use crate::entitlements::{Basis, TenantEntitlements};
use crate::gateway::Gateway;
use crate::observe::REFRESH_FAILURES;
use crate::plugin_sets::{PluginSetRejection, TenantPluginSet};
use crate::registry::Slot;
use crate::schedule;
use crate::store::{StateKey, credential_fingerprint};
use crate::sync::MutexExt;
use crate::tenant::TenantKey;
use crate::verify::{VerifiedToken, rejection_code};

/// Why a refresh did not produce a new token.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RefreshError {
    /// The gateway is not in federated mode: there is nothing to refresh.
    #[error("the gateway is not federated")]
    NotFederated,
    /// The credential was refused before; refreshing stays off until it is reconfigured.
    #[error("the federation refused this credential; configure a new one")]
    Stopped,
    /// Fetching failed (denied, outage, unexpected answer).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The token or its certificate failed verification; it was not cached.
    #[error("token rejected ({code}): {0}", code = rejection_code(.0))]
    Rejected(VerifyError),
    /// The token verified but is another gateway's (`sub`); it was not cached.
    #[error("token rejected: it is for gateway {got}, this gateway is {expected}")]
    OtherGateway {
        /// This gateway's id (the `sub` of its first token).
        expected: String,
        /// The token's `sub`.
        got: String,
    },
    /// The token names a plugin set the response does not carry or carries otherwise; the
    /// response was not used.
    #[error("token response rejected: {0}")]
    PluginSet(PluginSetRejection),
}

impl RefreshError {
    /// A stable snake_case code (for metrics and JSON).
    pub fn code(&self) -> &'static str {
        match self {
            RefreshError::NotFederated => "not_federated",
            RefreshError::Stopped => "credential_refused",
            RefreshError::Fetch(FetchError::Denied(d)) => d.code(),
            RefreshError::Fetch(FetchError::Outage { .. }) => "outage",
            RefreshError::Fetch(FetchError::Unexpected { .. }) => "unexpected_answer",
            RefreshError::Rejected(e) => rejection_code(e),
            RefreshError::OtherGateway { .. } => "other_gateway",
            RefreshError::PluginSet(_) => "plugin_set_mismatch",
        }
    }
}

/// One gateway credential and the slot its tokens fill.
pub(crate) struct Source {
    credential: SecretString,
    pub(crate) fingerprint: String,
    pub(crate) state_key: StateKey,
    pub(crate) client: Arc<dyn FederationClient>,
    pub(crate) slot: Arc<Slot>,
    flight: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    status: Mutex<SourceStatus>,
    /// The usage reported with token requests, and what the federation acknowledged.
    pub(crate) reporting: Mutex<crate::usage::Reporting>,
}

/// Refresh bookkeeping of a source, for scheduling and status pages.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceStatus {
    pub(crate) next_due: UnixTime,
    pub(crate) failures: u32,
    /// The backoff's step (restarts when the service answers with a `Retry-After`).
    pub(crate) backoff: schedule::Backoff,
    pub(crate) fetches: u64,
    pub(crate) last_success: Option<UnixTime>,
    pub(crate) last_error: Option<RefreshError>,
    pub(crate) last_outcome: Option<Result<State, RefreshError>>,
    pub(crate) stopped: bool,
    /// The certificate id of the token in force (what revocation lists name).
    pub(crate) certificate_id: Option<String>,
    /// This gateway's id: the `sub` of the first token taken for the credential (kept in
    /// the state file); a token for any other `sub` is refused.
    pub(crate) gateway_id: Option<String>,
}

impl Source {
    pub(crate) fn new(
        credential: SecretString,
        client: Arc<dyn FederationClient>,
        slot: Arc<Slot>,
    ) -> Self {
        let fingerprint = credential_fingerprint(credential.expose_secret());
        let state_key = StateKey::derive(credential.expose_secret());
        Self {
            credential,
            fingerprint,
            state_key,
            client,
            slot,
            flight: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            status: Mutex::new(SourceStatus::default()),
            reporting: Mutex::new(crate::usage::Reporting::default()),
        }
    }

    pub(crate) fn status(&self) -> MutexGuard<'_, SourceStatus> {
        self.status.lock_or_recover()
    }

    /// The tenant the credential's tokens are for, once known.
    pub(crate) fn tenant(&self) -> Option<TenantKey> {
        self.slot.tenant()
    }

    /// Checks that a verified token's `sub` is this gateway, learning the id from the first
    /// token when none is known yet (the credential does not carry it).
    fn claim_gateway_id(&self, sub: &str) -> Result<(), RefreshError> {
        let mut status = self.status();
        match &status.gateway_id {
            Some(expected) if expected != sub => Err(RefreshError::OtherGateway {
                expected: expected.clone(),
                got: sub.to_owned(),
            }),
            Some(_) => Ok(()),
            None => {
                status.gateway_id = Some(sub.to_owned());
                Ok(())
            }
        }
    }
}

impl Gateway {
    /// Refreshes every federated tenant whose refresh is due now (all of them on the first
    /// call). Returns how many refreshes succeeded.
    pub async fn refresh_due(&self) -> usize {
        let now = self.inner.time.now();
        // The revocation list first, so that no token under a revoked certificate is taken.
        if self.revocations_due().is_some_and(|due| due <= now)
            && let Err(e) = self.refresh_revocations().await
        {
            tracing::warn!(error = %e, "could not refresh the revocation list");
        }
        let mut ok = 0;
        for source in &self.inner.sources {
            let due = {
                let status = source.status();
                !status.stopped && status.next_due <= now
            };
            if due && self.refresh_source(source).await.is_ok() {
                ok += 1;
            }
        }
        ok
    }

    /// Refreshes the gateway's own (first) credential now, whatever the schedule says.
    /// Concurrent callers share one fetch.
    pub async fn refresh_now(&self) -> Result<State, RefreshError> {
        match self.inner.sources.first() {
            Some(source) => self.refresh_source(source).await,
            None => Err(RefreshError::NotFederated),
        }
    }

    /// The earliest time a federated tenant is due for a refresh.
    pub fn next_refresh_at(&self) -> Option<UnixTime> {
        self.inner
            .sources
            .iter()
            .filter_map(|s| {
                let status = s.status();
                (!status.stopped).then_some(status.next_due)
            })
            .min()
    }

    /// How many token requests went to the federation (all sources).
    pub fn fetch_count(&self) -> u64 {
        self.inner.sources.iter().map(|s| s.status().fetches).sum()
    }

    async fn refresh_source(&self, source: &Source) -> Result<State, RefreshError> {
        let seen = source.generation.load(Ordering::Acquire);
        let _flight = source.flight.lock().await;
        if source.generation.load(Ordering::Acquire) != seen
            && let Some(outcome) = source.status().last_outcome.clone()
        {
            // Another caller refreshed while this one waited: share its outcome.
            return outcome;
        }
        let outcome = self.fetch_and_apply(source).await;
        source.status().last_outcome = Some(outcome.clone());
        source.generation.fetch_add(1, Ordering::Release);
        outcome
    }

    async fn fetch_and_apply(&self, source: &Source) -> Result<State, RefreshError> {
        if source.status().stopped {
            return Err(RefreshError::Stopped);
        }
        source.status().fetches += 1;
        let outgoing = source.reporting.lock_or_recover().prepare(
            self.inner.catalog,
            &source.slot.handle().usage_totals(),
            self.inner.time.now(),
        );
        let fetched = source
            .client
            .fetch_token_reporting(&source.credential, Some(&outgoing.report))
            .await;
        let now = self.inner.time.now();
        match fetched {
            Ok(response) => {
                // A 200 answer took the report, whatever becomes of the token: what it held
                // is not sent again; checks counted meanwhile go with the next one.
                source.reporting.lock_or_recover().acknowledge(&outgoing);
                // The first served certificate that chains to a pinned root (during a
                // root rollover the federation serves one per root); persisted with the
                // token, so a restart verifies it the same way.
                let verified = self.inner.verifier.verify_served(
                    &response.token,
                    response.certificates(),
                    now,
                    Validity::Strict,
                );
                let verified =
                    verified
                        .map_err(RefreshError::Rejected)
                        .and_then(|(token, certificate)| {
                            // Configs only with the signed claim's word for them: a token whose
                            // set is missing or differs makes the whole response invalid.
                            let set = crate::plugin_sets::accept(
                                &token.claims,
                                response.plugin_set.as_ref(),
                            )
                            .map_err(RefreshError::PluginSet)?;
                            source.claim_gateway_id(&token.claims.sub)?;
                            Ok((token, certificate, set))
                        });
                match verified {
                    Ok((token, certificate, set)) => {
                        self.persist_plugin_set(source, set.as_deref());
                        let keep = set.as_ref().map(|set| set.digest().to_owned());
                        self.apply_token(source, &token, set);
                        self.persist(source, Some((&response.token, certificate)), None);
                        self.prune_plugin_sets(source, keep.as_deref());
                        let mut status = source.status();
                        let mut rng = self.inner.rng.lock_or_recover();
                        let c = &token.claims;
                        status.next_due =
                            schedule::next_refresh(c.iat, c.rfa, c.exp, now, &mut rng);
                        status.failures = 0;
                        status.backoff.reset();
                        status.last_success = Some(now);
                        status.last_error = None;
                        drop(status);
                        Ok(source.slot.handle().state())
                    }
                    Err(e) => Err(self.failed(source, e, None, now)),
                }
            }
            Err(FetchError::Denied(denial)) => {
                self.deny(source, denial, now);
                Err(RefreshError::Fetch(FetchError::Denied(denial)))
            }
            Err(e @ FetchError::Outage { retry_after, .. }) => {
                Err(self.failed(source, RefreshError::Fetch(e), retry_after, now))
            }
            Err(e) => Err(self.failed(source, RefreshError::Fetch(e), None, now)),
        }
    }

    /// Installs a verified token as the source's entitlements, narrowed to its plugin set
    /// when it names one.
    pub(crate) fn apply_token(
        &self,
        source: &Source,
        token: &VerifiedToken,
        set: Option<Arc<TenantPluginSet>>,
    ) {
        let claims = &token.claims;
        // A genuine token proves the time was at least its issue time (less the skew allowed).
        self.inner.time.observe(claims.iat.saturating_sub(LEEWAY));
        let basis = Basis::Federated {
            exp: claims.exp,
            grc: claims.grc.unwrap_or(claims.exp).max(claims.exp),
        };
        let mut entitlements = TenantEntitlements::from_claims(
            self.inner.catalog,
            claims,
            basis,
            Some(token.kid.clone()),
            Some(token.certificate_exp),
        );
        if let Some(set) = set {
            entitlements = entitlements.with_plugin_set(self.inner.catalog, set);
        }
        source.status().certificate_id = Some(token.certificate_id.clone());
        let key = TenantKey::of_claims(claims);
        self.inner.registry.set(&source.slot, &key, entitlements);
    }

    fn deny(&self, source: &Source, denial: Denial, now: UnixTime) {
        let current = source.slot.handle().entitlements();
        let details = current.details().cloned();
        // The same no again (each retry, or after a restart) keeps the time it was first said.
        let since = match current.basis() {
            Basis::Revoked { code, since } if code == denial.code() => since,
            _ => now,
        };
        self.inner.registry.update(
            &source.slot,
            TenantEntitlements::revoked(self.inner.catalog, denial.code(), since, details),
        );
        {
            let mut status = source.status();
            status.last_error = Some(RefreshError::Fetch(FetchError::Denied(denial)));
            status.failures = 0;
            status.backoff.reset();
            // A refused credential never works again; a refused license may be reinstated.
            status.stopped = denial == Denial::InvalidCredential;
            status.next_due = schedule::after(now, schedule::BACKOFF_CAP);
        }
        tracing::error!(
            code = denial.code(),
            "the federation refused: entitlements end now (Tier-0)"
        );
        self.persist(source, None, Some((denial.code(), since)));
    }

    fn failed(
        &self,
        source: &Source,
        error: RefreshError,
        retry_after: Option<Duration>,
        now: UnixTime,
    ) -> RefreshError {
        let tenant = source.tenant();
        let label = tenant
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        metrics::counter!(REFRESH_FAILURES, "tenant" => label.clone(), "reason" => error.code())
            .increment(1);
        let mut status = source.status();
        status.failures = status.failures.saturating_add(1);
        let mut rng = self.inner.rng.lock_or_recover();
        let (next_due, wait) = schedule::retry_at(now, &mut status.backoff, retry_after, &mut rng);
        status.next_due = next_due;
        status.last_error = Some(error.clone());
        tracing::warn!(tenant = %label, error = %error, failures = status.failures, retry_in_s = wait.as_secs(), "entitlement refresh failed; entitlements kept until the grace bound");
        error
    }

    /// Whether the gateway runs federated.
    pub fn is_federated(&self) -> bool {
        self.inner.mode == Mode::Federated
    }
}
