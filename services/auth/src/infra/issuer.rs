//! The token hot path: credential → cached grant → checks → claims → signature.
//!
//! A request touches the database at most once, on a cache miss: the grant (gateway, org,
//! license and the computed entitlement set) is cached per credential hash for a short TTL
//! and the whole cache is dropped whenever this process changes an org, license or
//! gateway (other replicas see the change within the TTL). `last_token_at` is kept in
//! memory and flushed in batches by a background task.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpg_license_core::{
    AUDIENCE, BoundsViolation, Catalog, ClaimsError, EntitlementSet, IssuerCertificate,
    LicenseClaims, Tier,
};
use metrics::Counter;
use moka::future::Cache;
use thiserror::Error;

use crate::domain::LicenseRecord;
use crate::domain::Refusal;
use crate::domain::credential::{Credential, CredentialHash};
use crate::domain::tenants_file::{TenantsDoc, TenantsError};
use crate::domain::{OrgStatus, org_standing};
use crate::infra::audit_chain::IssuanceLog;
use crate::infra::keyring::{KeySnapshot, Keyring, TOKEN_LIFETIME};
use crate::infra::limiter::{Decision, Limiter};
use crate::infra::plugin_set_cache::{PluginSetCache, PreparedPluginSet};
use crate::infra::store::{Change, GatewayGrant, Store, StoreError};
use crate::infra::telemetry::TOKENS_ISSUED;

/// `rfa - iat`: when gateways should refresh.
pub(crate) const REFRESH_AFTER: i64 = 8 * 3_600;
/// `grc - exp`: how long a gateway may ride out an outage.
pub(crate) const GRACE: i64 = 7 * 86_400;
/// `iat - nbf`: tolerance for gateways whose clocks run slightly behind.
pub(crate) const NBF_BACKDATE: i64 = 5;

/// Why no token was issued.
#[derive(Debug, Error)]
pub(crate) enum IssueError {
    /// Unknown or revoked credential.
    #[error("invalid credential")]
    InvalidCredential,
    /// An explicit no for the org.
    #[error("refused: {}", .refusal.code())]
    Refused {
        /// Why.
        refusal: Refusal,
        /// The org, for metrics and logs.
        org: String,
    },
    /// The org's request rate is exceeded.
    #[error("rate limited")]
    RateLimited {
        /// The refusal, with the wait.
        decision: Decision,
        /// The org.
        org: String,
    },
    /// The org's license grants more than the active key's certificate allows (another
    /// org, a higher tier, an entitlement it does not list): nothing is signed.
    #[error("outside the signing key's certificate bounds: {violation}")]
    OutsideBounds {
        /// The bound the token would have violated.
        violation: BoundsViolation,
        /// The org.
        org: String,
    },
    /// The revocation list in force names the active key's certificate.
    #[error("the signing key's certificate is revoked")]
    CertificateRevoked,
    /// No active signing key is loaded.
    #[error("no active signing key")]
    NoKey,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] Arc<StoreError>),
    /// The claims could not be signed (a bug).
    #[error("cannot sign: {0}")]
    Sign(#[from] ClaimsError),
}

/// A signed token and what the response says about it.
#[derive(Debug, Clone)]
pub(crate) struct IssuedToken {
    /// The JWT.
    pub(crate) token: String,
    /// Its claims.
    pub(crate) claims: LicenseClaims,
    /// The signing key's id.
    pub(crate) kid: Arc<str>,
    /// The first certificate served with it (for gateways that read only this one).
    pub(crate) issuer_certificate: Arc<str>,
    /// Every certificate served with it, primary first, as a JSON array of strings.
    pub(crate) issuer_certificates: Arc<str>,
    /// The org's rate-limit state after this request (`None`: unlimited).
    pub(crate) rate: Option<Decision>,
    /// The token response's `plugin_set` member as JSON (`{"digest","plugins"}`), exactly
    /// when the claims carry `ps`; rendered once per cached grant.
    pub(crate) plugin_set_json: Option<Arc<str>>,
}

#[derive(Debug)]
struct Grant {
    record: GatewayGrant,
    /// `record.credential_hash`, decoded once for the constant-time comparison.
    credential_hash: Option<CredentialHash>,
    entitlements: EntitlementSet,
    /// The gateway's effective plugin set (its `ps` claim and token-response member),
    /// one shared copy per distinct set.
    plugin_set: Option<Arc<PreparedPluginSet>>,
    /// The org's `issued` counter, registered once per cached grant rather than looked up
    /// (labels hashed, strings allocated) on every token.
    issued: Counter,
}

/// Issues tokens; shared by all requests.
#[derive(Debug)]
pub(crate) struct Issuer {
    store: Store,
    keyring: Arc<Keyring>,
    issuer: String,
    grants: Cache<CredentialHash, Option<Arc<Grant>>>,
    /// Bumped by every change that drops grants (see [`Issuer::grant`]).
    generation: Arc<AtomicU64>,
    limiter: Arc<Limiter>,
    seen: Mutex<HashMap<String, i64>>,
    issued: IssuanceLog,
    /// One prepared copy of each distinct plugin set, shared by the cached grants.
    plugin_sets: PluginSetCache,
}

impl Issuer {
    /// An issuer for `issuer` (the `iss` of every token), caching grants for `ttl`, holding
    /// each org to its rate in `limits`.
    pub(crate) fn new(
        store: Store,
        keyring: Arc<Keyring>,
        issuer: String,
        ttl: Duration,
        limiter: Arc<Limiter>,
    ) -> Self {
        let grants: Cache<CredentialHash, Option<Arc<Grant>>> = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(ttl)
            .support_invalidation_closures()
            .build();
        // A committed change to an org, its license or its gateways (here, before the write
        // returns to its caller; on another replica, when its notification arrives) drops
        // that org's cached grants, the cached refusals of unknown credentials (one may
        // just have been registered) and the licensed rates.
        let (cached, rates) = (grants.clone(), limiter.clone());
        let generation = Arc::new(AtomicU64::new(0));
        let moved = generation.clone();
        store.changes().subscribe(move |changes| {
            let grants_changed = changes
                .iter()
                .any(|c| matches!(c, Change::All | Change::Grants { .. }));
            if !grants_changed {
                return;
            }
            // Before the invalidation: a lookup that overlaps it sees the bump.
            moved.fetch_add(1, Ordering::AcqRel);
            if changes.iter().any(|c| matches!(c, Change::All)) {
                cached.invalidate_all();
                rates.invalidate();
                return;
            }
            let orgs: HashSet<String> = changes
                .iter()
                .filter_map(|change| match change {
                    Change::Grants { org_id } => Some(org_id.clone()),
                    _ => None,
                })
                .collect();
            let dropped = cached.invalidate_entries_if(move |_, grant| {
                grant
                    .as_ref()
                    .is_none_or(|g| orgs.contains(&g.record.org_id))
            });
            if dropped.is_err() {
                // Unreachable (closures are enabled above); never keep a stale grant.
                cached.invalidate_all();
            }
            rates.invalidate();
        });
        Self {
            store,
            keyring,
            issuer,
            grants,
            generation,
            limiter,
            seen: Mutex::new(HashMap::new()),
            issued: IssuanceLog::default(),
            plugin_sets: PluginSetCache::default(),
        }
    }

    /// Issues a token for the gateway holding `credential`, at `now`: its grant, the org's
    /// standing and license, the org's rate, the certificates' window, the claims, the
    /// certificates they fit, the signature.
    pub(crate) async fn issue(
        &self,
        credential: &Credential,
        now: i64,
    ) -> Result<IssuedToken, IssueError> {
        let grant = self.grant(credential).await?;
        let record = &grant.record;
        let refuse = |refusal| IssueError::Refused {
            refusal,
            org: record.org_slug.clone(),
        };
        org_standing(record.org_status, record.trial_expires_at, now).map_err(refuse)?;
        let license = license_in_force(record, now).map_err(refuse)?;
        let rate = self.limiter.check_org(&record.org_id, license.limits.rps);
        if let Some(decision) = rate.filter(|d| !d.allowed()) {
            return Err(IssueError::RateLimited {
                decision,
                org: record.org_slug.clone(),
            });
        }
        let snapshot = self.keyring.snapshot().ok_or(IssueError::NoKey)?;
        let window = CertificateWindow::of(&snapshot, now)?;
        let jti = uuid::Uuid::new_v4();
        let claims = self.claims(&grant, license, &window, now, jti);
        let fits =
            fitting_certificates(&snapshot, &claims, now).map_err(|violation| match violation {
                Some(BoundsViolation::PredatesCertificate) | None => IssueError::NoKey,
                Some(violation) => IssueError::OutsideBounds {
                    violation,
                    org: record.org_slug.clone(),
                },
            })?;
        let (issuer_certificate, issuer_certificates) = served_certificates(&snapshot, fits);
        let token = snapshot.signer.sign(&claims)?;
        self.note_issued(&grant, now, jti);
        Ok(IssuedToken {
            token,
            claims,
            kid: snapshot.kid.clone(),
            issuer_certificate,
            issuer_certificates,
            rate,
            plugin_set_json: grant.plugin_set.as_ref().map(|set| set.json.clone()),
        })
    }

    /// The grant of the gateway holding `credential` (cached per credential hash), if the
    /// credential is known, unrevoked and matches in constant time.
    async fn grant(&self, credential: &Credential) -> Result<Arc<Grant>, IssueError> {
        let hash = credential.hash();
        let store = &self.store;
        let plugin_sets = &self.plugin_sets;
        let load = || async move {
            let record = store.gateway_grant(&hash.to_hex()).await?;
            record
                .map(|record| Grant::new(record, plugin_sets).map(Arc::new))
                .transpose()
        };
        // A grant read just before a change committed, and cached just after the change
        // invalidated the cache, would outlive the change until its TTL. So a lookup during
        // which a change arrived is not trusted: it is dropped and made again, and under
        // constant churn read from the database without caching.
        let mut grant = None;
        for _ in 0..2 {
            let seen = self.generation.load(Ordering::Acquire);
            let found = self.grants.try_get_with(hash, load()).await?;
            if self.generation.load(Ordering::Acquire) == seen {
                grant = Some(found);
                break;
            }
            self.grants.invalidate(&hash).await;
        }
        let grant = match grant {
            Some(grant) => grant,
            None => load().await.map_err(Arc::new)?,
        };
        match grant {
            Some(grant)
                if !grant.record.revoked
                    && grant
                        .credential_hash
                        .is_some_and(|stored| hash.matches(&stored)) =>
            {
                Ok(grant)
            }
            _ => Err(IssueError::InvalidCredential),
        }
    }

    /// The claims of a token for `grant`, its times capped by the certificates' window,
    /// the license and the trial.
    fn claims(
        &self,
        grant: &Grant,
        license: &LicenseRecord,
        window: &CertificateWindow,
        now: i64,
        jti: uuid::Uuid,
    ) -> LicenseClaims {
        let record = &grant.record;
        // Times are capped to what the certificates allow (lifetime, grace and expiry);
        // what the license itself grants beyond the bounds is refused afterwards. Nothing
        // outlives the license or the trial: a token issued just before a trial ends must
        // not carry a day of validity and a week of grace past it.
        let trial_end = match record.org_status {
            OrgStatus::Trial => record.trial_expires_at,
            _ => None,
        };
        let end = trial_end.map_or(license.valid_until, |t| t.min(license.valid_until));
        let exp = (now + window.lifetime).min(end).min(window.expires_at);
        LicenseClaims {
            iss: self.issuer.clone(),
            sub: record.gateway_id.clone(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            nbf: now - NBF_BACKDATE,
            exp,
            jti: jti.to_string(),
            org: record.org_slug.clone(),
            ws: Some(record.workspace.clone()),
            env: Some(record.environment.clone()),
            tier: license.tier,
            ent: grant.entitlements.clone(),
            lim: license.limits,
            lic: license.id.clone(),
            rfa: Some((now + REFRESH_AFTER).min(exp)),
            grc: Some((exp + window.grace).min(end).max(exp)),
            bind: None,
            ps: grant.plugin_set.as_ref().map(|set| set.claim.clone()),
        }
    }

    /// Counts the token on the org's counter, notes the gateway as seen and the token for
    /// the batched audit entry.
    fn note_issued(&self, grant: &Grant, now: i64, jti: uuid::Uuid) {
        let record = &grant.record;
        grant.issued.increment(1);
        if let Ok(mut seen) = self.seen.lock() {
            match seen.get_mut(&record.gateway_id) {
                Some(at) => *at = now,
                None => {
                    seen.insert(record.gateway_id.clone(), now);
                }
            }
        }
        self.issued.record(&record.org_id, &record.gateway_id, jti);
    }

    /// Appends the batched `token.issued` audit entries (one per org with new tokens).
    pub(crate) async fn flush_issued(&self, now: i64) -> Result<usize, StoreError> {
        self.issued.flush(&self.store, now).await
    }

    /// Writes the buffered `last_token_at` times to the database.
    pub(crate) async fn flush_seen(&self) -> Result<(), StoreError> {
        let batch: Vec<(String, i64)> = match self.seen.lock() {
            Ok(mut seen) => seen.drain().collect(),
            Err(_) => return Ok(()),
        };
        self.store.record_token_times(&batch).await
    }
}

/// The org's license, if one is in force at `now`.
fn license_in_force(record: &GatewayGrant, now: i64) -> Result<&LicenseRecord, Refusal> {
    let license = record.license.as_ref().ok_or(Refusal::NoLicense)?;
    if license.revoked_at.is_some() {
        return Err(Refusal::LicenseRevoked);
    }
    if license.valid_until <= now {
        return Err(Refusal::LicenseExpired);
    }
    if license.valid_from > now {
        return Err(Refusal::NoLicense);
    }
    Ok(license)
}

/// What the served certificates allow a token: the tightest of their lifetimes, graces
/// and expiries. Only certificates that outlive this second are served.
struct CertificateWindow {
    lifetime: i64,
    grace: i64,
    expires_at: i64,
}

/// Whether a certificate is served at `now`.
fn live(cert: &IssuerCertificate, now: i64) -> bool {
    cert.exp > now + 1
}

impl CertificateWindow {
    fn of(snapshot: &KeySnapshot, now: i64) -> Result<Self, IssueError> {
        let mut window = Self {
            lifetime: TOKEN_LIFETIME,
            grace: GRACE,
            expires_at: i64::MAX,
        };
        for cert in snapshot.certificates.iter().map(|c| &*c.cert) {
            if live(cert, now) {
                window.lifetime = window.lifetime.min(cert.bounds.max_token_lifetime);
                window.grace = window.grace.min(cert.bounds.max_grace);
                window.expires_at = window.expires_at.min(cert.exp);
            }
        }
        if window.expires_at == i64::MAX {
            return Err(IssueError::NoKey);
        }
        if snapshot.revoked {
            return Err(IssueError::CertificateRevoked);
        }
        Ok(window)
    }
}

/// Whether a license for `org` granting `tier` and `entitlements` fits at least one served
/// live certificate of the active key: the rule of [`fitting_certificates`] on the part
/// only the license decides, so a license that could never be served is refused when it
/// is written. With no active key, or no live certificate, there is nothing to fit and the
/// write passes (the token endpoint answers for the key). When none fits, the first
/// violation is the answer.
pub(crate) fn check_grant_fits(
    snapshot: Option<&KeySnapshot>,
    org: &str,
    tier: Tier,
    entitlements: &EntitlementSet,
    now: i64,
) -> Result<(), BoundsViolation> {
    let Some(snapshot) = snapshot else {
        return Ok(());
    };
    let mut violation = None;
    let served = snapshot.certificates.iter().filter(|c| live(&c.cert, now));
    for served in served {
        match served.cert.bounds.check_grant(org, tier, entitlements) {
            Ok(()) => return Ok(()),
            Err(v) => {
                violation.get_or_insert(v);
            }
        }
    }
    violation.map_or(Ok(()), Err)
}

/// [`check_grant_fits`] for every tenant of a `tenants.yaml`: its org, tier and entitlements.
pub(crate) fn check_tenants_fit(
    snapshot: Option<&KeySnapshot>,
    doc: &TenantsDoc,
    now: i64,
) -> Result<(), TenantsError> {
    for tenant in &doc.tenants.0 {
        let entitlements =
            Catalog::builtin().license_entitlements(tenant.tier, &tenant.add, &tenant.remove);
        check_grant_fits(
            snapshot,
            tenant.id.as_str(),
            tenant.tier,
            &entitlements,
            now,
        )
        .map_err(|violation| {
            TenantsError::OutsideCertificateBounds(format!(
                "tenant {}: the signing key's certificate does not allow it: {violation} ({})",
                tenant.id,
                violation.code()
            ))
        })?;
    }
    Ok(())
}

/// The served certificates whose bounds the claims fit, as a bit set over
/// `snapshot.certificates` — the gateway runs the same check on every token it accepts.
/// When none fits, the first violation is the answer.
fn fitting_certificates(
    snapshot: &KeySnapshot,
    claims: &LicenseClaims,
    now: i64,
) -> Result<u64, Option<BoundsViolation>> {
    let mut fits = 0_u64;
    let mut violation = None;
    let served = snapshot.certificates.iter().enumerate();
    for (i, served) in served.filter(|(_, c)| live(&c.cert, now)) {
        match served.cert.check_bounds(claims) {
            Ok(()) => fits |= 1 << i,
            Err(v) => {
                violation.get_or_insert(v);
            }
        }
    }
    if fits == 0 { Err(violation) } else { Ok(fits) }
}

/// The first served certificate and the JSON array of all served ones: the snapshot's
/// pre-rendered array when every certificate fits (the usual case), else rendered here.
fn served_certificates(snapshot: &KeySnapshot, fits: u64) -> (Arc<str>, Arc<str>) {
    let certs = &snapshot.certificates;
    let served = || {
        certs
            .iter()
            .enumerate()
            .filter(move |(i, _)| fits & (1 << i) != 0)
            .map(|(_, c)| c)
    };
    let first = served()
        .next()
        .map_or_else(|| snapshot.certificate.clone(), |c| c.text.clone());
    let all = if certs.len() < 64 {
        (1_u64 << certs.len()) - 1
    } else {
        u64::MAX
    };
    if fits == all {
        return (first, snapshot.certificates_json.clone());
    }
    let texts: Vec<&str> = served().map(|c| &*c.text).collect();
    let json = serde_json::to_string(&texts).unwrap_or_else(|_| "[]".into());
    (first, Arc::from(json))
}

impl Grant {
    fn new(mut record: GatewayGrant, plugin_sets: &PluginSetCache) -> Result<Self, StoreError> {
        let entitlements = record
            .license
            .as_ref()
            .map(|l| Catalog::builtin().license_entitlements(l.tier, &l.add, &l.remove))
            .unwrap_or_default();
        let issued = metrics::counter!(
            TOKENS_ISSUED,
            "org" => record.org_slug.clone(),
            "outcome" => "issued"
        );
        // The stored text is not kept per grant: the prepared copy is shared.
        let plugin_set = match record.plugin_set.take() {
            Some(text) => Some(plugin_sets.prepare(&text)?),
            None => None,
        };
        Ok(Self {
            credential_hash: CredentialHash::from_hex(&record.credential_hash),
            plugin_set,
            record,
            entitlements,
            issued,
        })
    }
}
