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
use moka::future::Cache;
use thiserror::Error;

use crate::domain::LicenseRecord;
use crate::domain::Refusal;
use crate::domain::credential::{Credential, CredentialHash};
use crate::domain::tenants_file::{TenantsDoc, TenantsError};
use crate::domain::{OrgStatus, org_standing};
use crate::infra::audit_chain::IssuanceLog;
use crate::infra::directory::{Directory, GatewayId, OrgGrant, PlaceGrant};
use crate::infra::keyring::{KeySnapshot, Keyring, TOKEN_LIFETIME};
use crate::infra::limiter::{Decision, Limiter};
use crate::infra::plugin_set_cache::PluginSetCache;
use crate::infra::store::{Change, GatewayGrant, Store, StoreError};
use crate::infra::telemetry::GRANT_LOOKUPS;

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
    /// The gateway's org, for the usage meter.
    pub(crate) org: Arc<OrgGrant>,
    /// The gateway's workspace and environment, for the usage meter.
    pub(crate) place: Arc<PlaceGrant>,
    /// The gateway's id (the claims' `sub`), compact, for the usage meter.
    pub(crate) gateway: GatewayId,
}

/// One gateway's grant: its own id and the org's and environment's shared parts, from the
/// credential directory or, when it cannot answer, from the database.
#[derive(Debug)]
struct Grant {
    gateway_id: GatewayId,
    /// The stored credential hash, compared again in constant time (`None`: not 64 hex
    /// digits, so nothing matches).
    credential_hash: Option<CredentialHash>,
    revoked: bool,
    org: Arc<OrgGrant>,
    place: Arc<PlaceGrant>,
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
    seen: Mutex<HashMap<GatewayId, i64>>,
    issued: IssuanceLog,
    /// One prepared copy of each distinct plugin set, shared by the cached grants and
    /// the directory.
    plugin_sets: Arc<PluginSetCache>,
    /// Every unrevoked credential, kept current by change events: the token path's first
    /// stop, so a fleet's requests (every one a cache miss) skip the database.
    directory: Arc<Directory>,
    /// Grant lookups answered by the directory, and by the database.
    lookups: [metrics::Counter; 2],
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
        directory: Arc<Directory>,
        plugin_sets: Arc<PluginSetCache>,
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
                    Change::Grants { org_id, .. } => Some(org_id.clone()),
                    _ => None,
                })
                .collect();
            let dropped = cached.invalidate_entries_if(move |_, grant| {
                grant.as_ref().is_none_or(|g| orgs.contains(&g.org.id))
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
            plugin_sets,
            directory,
            lookups: [
                metrics::counter!(GRANT_LOOKUPS, "source" => "directory"),
                metrics::counter!(GRANT_LOOKUPS, "source" => "database"),
            ],
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
        let org = &grant.org;
        let refuse = |refusal| IssueError::Refused {
            refusal,
            org: org.slug.clone(),
        };
        org_standing(org.status, org.trial_expires_at, now).map_err(refuse)?;
        let license = license_in_force(org, now).map_err(refuse)?;
        let rate = self.limiter.check_org(&org.id, license.limits.rps);
        if let Some(decision) = rate.filter(|d| !d.allowed()) {
            return Err(IssueError::RateLimited {
                decision,
                org: org.slug.clone(),
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
                    org: org.slug.clone(),
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
            plugin_set_json: grant.place.plugin_set.as_ref().map(|set| set.json.clone()),
            org: grant.org.clone(),
            place: grant.place.clone(),
            gateway: grant.gateway_id.clone(),
        })
    }

    /// The grant of the gateway holding `credential`, if the credential is known, unrevoked
    /// and matches in constant time: from the directory, or when it cannot answer, from
    /// the database (cached per credential hash).
    async fn grant(&self, credential: &Credential) -> Result<Arc<Grant>, IssueError> {
        let hash = credential.hash();
        let [from_directory, from_database] = &self.lookups;
        if let Some(listed) = self.directory.lookup(&hash) {
            from_directory.increment(1);
            return Ok(Arc::new(Grant {
                gateway_id: listed.gateway_id().clone(),
                credential_hash: Some(hash),
                revoked: false,
                org: listed.org.grant(),
                place: listed.place,
            }));
        }
        // Not held (unknown, or registered on another replica a moment ago), or the
        // directory cannot say: the database decides, as before the directory existed.
        from_database.increment(1);
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
                if !grant.revoked
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
        let (org, place) = (&grant.org, &grant.place);
        // Times are capped to what the certificates allow (lifetime, grace and expiry);
        // what the license itself grants beyond the bounds is refused afterwards. Nothing
        // outlives the license or the trial: a token issued just before a trial ends must
        // not carry a day of validity and a week of grace past it.
        let trial_end = match org.status {
            OrgStatus::Trial => org.trial_expires_at,
            _ => None,
        };
        let end = trial_end.map_or(license.valid_until, |t| t.min(license.valid_until));
        let exp = (now + window.lifetime).min(end).min(window.expires_at);
        LicenseClaims {
            iss: self.issuer.clone(),
            sub: grant.gateway_id.to_string(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            nbf: now - NBF_BACKDATE,
            exp,
            jti: jti.to_string(),
            org: org.slug.clone(),
            ws: Some(place.workspace.to_string()),
            env: Some(place.environment.to_string()),
            tier: license.tier,
            ent: org.entitlements.clone(),
            lim: license.limits,
            lic: license.id.clone(),
            rfa: Some((now + REFRESH_AFTER).min(exp)),
            grc: Some((exp + window.grace).min(end).max(exp)),
            bind: None,
            ps: place.plugin_set.as_ref().map(|set| set.claim.clone()),
        }
    }

    /// Counts the token on the org's counter, notes the gateway as seen and the token for
    /// the batched audit entry.
    fn note_issued(&self, grant: &Grant, now: i64, jti: uuid::Uuid) {
        grant.org.issued.increment(1);
        if let Ok(mut seen) = self.seen.lock() {
            match seen.get_mut(&grant.gateway_id) {
                Some(at) => *at = now,
                None => {
                    seen.insert(grant.gateway_id.clone(), now);
                }
            }
        }
        self.issued.record(&grant.org.id, &grant.gateway_id, jti);
    }

    /// The credential directory the token path asks first.
    pub(crate) fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Appends the batched `token.issued` audit entries (one per org with new tokens).
    pub(crate) async fn flush_issued(&self, now: i64) -> Result<usize, StoreError> {
        self.issued.flush(&self.store, now).await
    }

    /// Writes the buffered `last_token_at` times to the database.
    pub(crate) async fn flush_seen(&self) -> Result<(), StoreError> {
        let batch: Vec<(String, i64)> = match self.seen.lock() {
            Ok(mut seen) => seen.drain().map(|(id, at)| (id.to_string(), at)).collect(),
            Err(_) => return Ok(()),
        };
        self.store.record_token_times(&batch).await
    }
}

/// The org's license, if one is in force at `now`.
fn license_in_force(org: &OrgGrant, now: i64) -> Result<&LicenseRecord, Refusal> {
    let license = org.license.as_ref().ok_or(Refusal::NoLicense)?;
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
    /// A grant read from the database: its org's and environment's parts are its own (the
    /// directory shares them; this path is the exception).
    fn new(record: GatewayGrant, plugin_sets: &PluginSetCache) -> Result<Self, StoreError> {
        let plugin_set = match &record.plugin_set {
            Some(text) => Some(plugin_sets.prepare(text)?),
            None => None,
        };
        Ok(Self {
            credential_hash: CredentialHash::from_hex(&record.credential_hash),
            gateway_id: GatewayId::new(&record.gateway_id),
            revoked: record.revoked,
            org: Arc::new(OrgGrant::new(
                record.org_id,
                record.org_slug,
                record.org_status,
                record.trial_expires_at,
                record.license,
            )),
            place: Arc::new(PlaceGrant {
                workspace: record.workspace.into(),
                environment: record.environment.into(),
                plugin_set,
            }),
        })
    }
}
