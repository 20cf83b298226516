//! Precomputed, immutable per-tenant entitlements and the handle that answers checks.
//!
//! Everything `check()` needs is computed when a token or license is accepted: a bitset
//! over catalog plugin indices, the tier and the time bounds. Answering is then a bit test
//! and two comparisons against "now", so the state moves Active → Grace → Lapsed by time
//! alone, without a writer.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use arc_swap::ArcSwap;
use mcpg_license_core::{Catalog, EntitlementSet, LicenseClaims, Limits, Tier, UnixTime};
use serde::Serialize;

use crate::decision::{Decision, Reason, State};
use crate::plugin_sets::TenantPluginSet;
use crate::plugins::PluginTable;
use crate::time::TimeGuard;
use crate::usage::UsageCounters;

/// A plugin's position in the catalog, resolved once (e.g. when the gateway loads the
/// plugin) so later checks skip the name lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PluginIndex(usize);

impl PluginIndex {
    /// The index of `plugin` in `catalog`, or `None` for a plugin the catalog does not know.
    pub fn resolve(catalog: &Catalog, plugin: &str) -> Option<Self> {
        catalog.index_of(plugin).map(PluginIndex)
    }

    /// The position in the catalog.
    pub(crate) fn get(self) -> usize {
        self.0
    }
}

/// A set of catalog indices: the first 128 inline (no pointer to follow on the hot path),
/// any beyond in a boxed tail that stays empty for smaller catalogs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bits {
    low: u128,
    rest: Box<[u64]>,
}

impl Bits {
    fn of(catalog: &Catalog, mut keep: impl FnMut(usize) -> bool) -> Self {
        let len = catalog.plugins().len();
        let mut low = 0u128;
        let mut rest = vec![0u64; len.saturating_sub(128).div_ceil(64)];
        for i in (0..len).filter(|i| keep(*i)) {
            match i.checked_sub(128) {
                None => low |= 1 << i,
                Some(j) => rest[j / 64] |= 1 << (j % 64),
            }
        }
        Bits {
            low,
            rest: rest.into_boxed_slice(),
        }
    }

    /// The indices in both `self` and `other` (of the same catalog).
    fn and(&self, other: &Bits) -> Self {
        Bits {
            low: self.low & other.low,
            rest: self
                .rest
                .iter()
                .zip(other.rest.iter())
                .map(|(a, b)| a & b)
                .collect(),
        }
    }

    #[inline]
    fn contains(&self, index: usize) -> bool {
        match index.checked_sub(128) {
            None => self.low & (1 << index) != 0,
            Some(j) => self
                .rest
                .get(j / 64)
                .is_some_and(|w| w & (1 << (j % 64)) != 0),
        }
    }
}

/// Where a tenant's entitlements come from; with "now" it gives the [`State`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// No license. `reason` is what paid plugins are denied with (`tier0_only` in tier0
    /// mode, `not_federated` for a federated tenant without a token).
    Unlicensed {
        /// The denial reason for paid plugins.
        reason: Reason,
    },
    /// A verified online token.
    Federated {
        /// Its expiry.
        exp: UnixTime,
        /// Its grace bound (`exp` when it carries none).
        grc: UnixTime,
    },
    /// The service answered with an explicit no.
    Revoked {
        /// The service's error code (`license_revoked`, `invalid_credential`, …).
        code: &'static str,
        /// When this no was first heard (kept across restarts and repeated answers).
        since: UnixTime,
    },
    /// A verified offline license.
    Offline {
        /// Its expiry.
        exp: UnixTime,
    },
}

/// Facts about the token or license behind a tenant's entitlements, for status pages.
#[derive(Debug, Clone, Serialize)]
pub struct LicenseDetails {
    /// License id (`lic`).
    pub license: String,
    /// Issuer (`iss`).
    pub issuer: String,
    /// Subject (`sub`): gateway id or license id.
    pub subject: String,
    /// Signing key id, when known.
    pub kid: Option<String>,
    /// Issued at.
    pub issued_at: UnixTime,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Refresh after (online tokens).
    pub refresh_after: Option<UnixTime>,
    /// Grace bound (online tokens).
    pub grace_until: Option<UnixTime>,
    /// Expiry of the issuer certificate, when there is one.
    pub certificate_expires_at: Option<UnixTime>,
    /// The granted entitlements.
    pub entitlements: Vec<String>,
    /// The license's limits (`lim`): only those set; absent means unlimited. The gateway
    /// enforces `max_servers` and `max_concurrent_requests`.
    pub limits: Limits,
}

/// One tenant's entitlements, immutable once built.
#[derive(Debug, Clone)]
pub struct TenantEntitlements {
    basis: Basis,
    tier: Tier,
    entitled: Bits,
    free: Bits,
    /// The token's plugin set, when it names one; `entitled` and `free` are then already
    /// narrowed to it, so the allowed path reads nothing more than without a set.
    plugin_set: Option<Arc<SetInForce>>,
    details: Option<Arc<LicenseDetails>>,
}

/// A plugin set in force and what the entitlements allowed before it narrowed them: read
/// only to tell `not_in_plugin_set` from the license's own denials. Kept behind a pointer
/// so the per-tenant struct stays two cache lines, as without sets.
#[derive(Debug)]
struct SetInForce {
    set: Arc<TenantPluginSet>,
    entitled: Bits,
    free: Bits,
}

impl TenantEntitlements {
    /// Tier-0: only free plugins, paid ones denied with `reason`.
    pub fn unlicensed(catalog: &Catalog, reason: Reason) -> Self {
        Self::degraded(catalog, Basis::Unlicensed { reason }, None)
    }

    /// Tier-0 because the service said no, keeping what the tenant had for status pages.
    pub fn revoked(
        catalog: &Catalog,
        code: &'static str,
        since: UnixTime,
        details: Option<Arc<LicenseDetails>>,
    ) -> Self {
        Self::degraded(catalog, Basis::Revoked { code, since }, details)
    }

    /// Tier-0 because the offline license expired at `exp`.
    pub fn offline_expired(catalog: &Catalog, exp: UnixTime) -> Self {
        Self::degraded(catalog, Basis::Offline { exp }, None)
    }

    fn degraded(catalog: &Catalog, basis: Basis, details: Option<Arc<LicenseDetails>>) -> Self {
        let free = free_bits(catalog);
        Self {
            basis,
            tier: Tier::Free,
            entitled: free.clone(),
            free,
            plugin_set: None,
            details,
        }
    }

    /// The entitlements of verified claims: online (`Federated`) or offline (`Offline`).
    pub fn from_claims(
        catalog: &Catalog,
        claims: &LicenseClaims,
        basis: Basis,
        kid: Option<String>,
        certificate_expires_at: Option<UnixTime>,
    ) -> Self {
        Self {
            basis,
            tier: claims.tier,
            entitled: entitled_bits(catalog, &claims.ent),
            free: free_bits(catalog),
            plugin_set: None,
            details: Some(Arc::new(LicenseDetails {
                license: claims.lic.clone(),
                issuer: claims.iss.clone(),
                subject: claims.sub.clone(),
                kid,
                issued_at: claims.iat,
                expires_at: claims.exp,
                refresh_after: claims.rfa,
                grace_until: claims.grc,
                certificate_expires_at,
                entitlements: claims.ent.iter().map(|e| e.to_string()).collect(),
                limits: claims.lim,
            })),
        }
    }

    /// Narrows the entitlements to the plugin set of a federated token: from then on a
    /// plugin is allowed only if it also is in the set. Only tokens carry sets (offline
    /// licenses have no `ps`), and the Tier-0 bases (unlicensed, revoked, offline expired)
    /// are built without one, so the set is in force exactly while the token it came with
    /// is the basis: Active, Grace and Lapsed. Set members this catalog does not know are
    /// ignored by checks (they stay in [`TenantPluginSet::ids`] for status pages).
    pub(crate) fn with_plugin_set(mut self, catalog: &Catalog, set: Arc<TenantPluginSet>) -> Self {
        let plugins = catalog.plugins();
        let members = Bits::of(catalog, |i| set.contains(&plugins[i].id));
        let narrowed_entitled = self.entitled.and(&members);
        let narrowed_free = self.free.and(&members);
        self.plugin_set = Some(Arc::new(SetInForce {
            set,
            entitled: std::mem::replace(&mut self.entitled, narrowed_entitled),
            free: std::mem::replace(&mut self.free, narrowed_free),
        }));
        self
    }

    /// The plugin set in force with these entitlements, if the token named one.
    pub fn plugin_set(&self) -> Option<&Arc<TenantPluginSet>> {
        self.plugin_set.as_ref().map(|s| &s.set)
    }

    /// The limits in force at `now`: the license's while it is licensed (Active, Grace,
    /// Offline), else the Tier-0 limits ([`crate::limits::TIER0_LIMITS`]).
    #[inline]
    pub fn limits_at(&self, now: UnixTime) -> Limits {
        match (self.state_at(now).is_licensed(), &self.details) {
            (true, Some(details)) => details.limits,
            _ => crate::limits::TIER0_LIMITS,
        }
    }

    /// Where the entitlements come from.
    pub fn basis(&self) -> Basis {
        self.basis
    }

    /// The licensed tier (`free` for Tier-0 bases).
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The token or license behind the entitlements, if any.
    pub fn details(&self) -> Option<&Arc<LicenseDetails>> {
        self.details.as_ref()
    }

    /// The state at `now`.
    #[inline]
    pub fn state_at(&self, now: UnixTime) -> State {
        match self.basis {
            Basis::Unlicensed { .. } => State::Unlicensed,
            Basis::Federated { exp, .. } if now < exp => State::Active,
            Basis::Federated { grc, .. } if now < grc => State::Grace,
            Basis::Federated { .. } => State::Lapsed,
            Basis::Revoked { .. } => State::Revoked,
            Basis::Offline { exp } if now < exp => State::Offline,
            Basis::Offline { .. } => State::OfflineExpired,
        }
    }

    /// The decision for the plugin at `index` (`None`: unknown plugin) at `now`.
    #[inline]
    pub fn decide(&self, index: Option<PluginIndex>, now: UnixTime) -> Decision {
        let state = self.state_at(now);
        let licensed = state.is_licensed();
        let tier = if licensed { self.tier } else { Tier::Free };
        let decision = |allowed, reason| Decision {
            allowed,
            reason,
            state,
            tier,
        };
        let Some(PluginIndex(index)) = index else {
            return decision(false, Reason::UnknownPlugin);
        };
        // With a plugin set both bitsets are already narrowed to it: allowed means
        // allowed by the license and in the set.
        let bits = if licensed { &self.entitled } else { &self.free };
        if bits.contains(index) {
            return decision(true, Reason::Allowed);
        }
        // Denied. The set never widens what the license allows, and a denial by the
        // license keeps its own reason: `not_in_plugin_set` only for what the license alone
        // would have allowed.
        if let Some(set) = &self.plugin_set {
            let unnarrowed = if licensed { &set.entitled } else { &set.free };
            if unnarrowed.contains(index) {
                return decision(false, Reason::NotInPluginSet);
            }
        }
        let reason = match self.basis {
            _ if licensed => Reason::NotEntitled,
            Basis::Unlicensed { reason } => reason,
            Basis::Revoked { .. } => Reason::Revoked,
            Basis::Offline { .. } => Reason::OfflineExpired,
            Basis::Federated { .. } => Reason::Lapsed,
        };
        decision(false, reason)
    }
}

fn free_bits(catalog: &Catalog) -> Bits {
    let plugins = catalog.plugins();
    Bits::of(catalog, |i| plugins[i].tier == Tier::Free)
}

fn entitled_bits(catalog: &Catalog, ent: &EntitlementSet) -> Bits {
    let plugins = catalog.plugins();
    Bits::of(catalog, |i| ent.contains(plugins[i].entitlement.as_str()))
}

/// A tenant's live entitlements: cheap to clone and to keep. The gateway can hold one per
/// tenant and skip every map lookup; refreshes swap the contents underneath it.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # let (dir, config) = include!("../doc/offline_gateway.rs");
/// # let settings = mcpg_entitlements::GatewayConfig::load(&config)?.resolve(dir.path())?;
/// # let gateway = mcpg_entitlements::GatewayBuilder::new(settings).build()?;
/// use mcpg_entitlements::{Reason, State, TenantKey};
///
/// // `gateway` runs on an offline Team license of acme/platform/prod.
/// let acme = TenantKey::parse("acme/platform/prod")?;
/// let handle = gateway.handle(&acme).expect("the license's tenant");
/// assert_eq!(handle.state(), State::Offline);
/// // Resolve a plugin once, check it on every request.
/// let rbac = gateway.plugin_index("workspace.rbac");
/// assert!(handle.check_index(rbac).allowed);
/// assert_eq!(handle.check("policy.cedar").reason, Reason::NotEntitled);
/// // A tenant the gateway does not serve has no handle; `handle_or_default` answers Tier-0.
/// let globex = TenantKey::parse("globex/main/prod")?;
/// assert!(gateway.handle(&globex).is_none());
/// let fallback = gateway.handle_or_default(Some(&globex));
/// assert_eq!(fallback.check("workspace.rbac").reason, Reason::NotFederated);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TenantHandle {
    pub(crate) inner: Arc<HandleInner>,
}

#[derive(Debug)]
pub(crate) struct HandleInner {
    pub(crate) current: ArcSwap<TenantEntitlements>,
    pub(crate) time: Arc<TimeGuard>,
    plugins: Arc<PluginTable>,
    /// Requests in flight (see [`TenantHandle::try_begin_request`]); kept across refreshes.
    pub(crate) in_flight: AtomicU64,
    /// Checks allowed and refused per plugin, kept across refreshes (usage reports).
    pub(crate) usage: UsageCounters,
}

impl TenantHandle {
    /// A handle starting with `entitlements`.
    pub(crate) fn new(
        entitlements: TenantEntitlements,
        time: Arc<TimeGuard>,
        plugins: Arc<PluginTable>,
    ) -> Self {
        let usage = UsageCounters::new(plugins.len());
        Self {
            inner: Arc::new(HandleInner {
                current: ArcSwap::from_pointee(entitlements),
                time,
                plugins,
                in_flight: AtomicU64::new(0),
                usage,
            }),
        }
    }

    /// Whether `plugin` may load now. Synchronous, allocation-free, no signature check.
    #[inline]
    pub fn check(&self, plugin: &str) -> Decision {
        self.check_index(self.inner.plugins.resolve(plugin))
    }

    /// Like [`TenantHandle::check`] with a plugin resolved beforehand.
    #[inline]
    pub fn check_index(&self, plugin: Option<PluginIndex>) -> Decision {
        let now = self.inner.time.now();
        let decision = self.inner.current.load().decide(plugin, now);
        self.inner.usage.record(plugin, decision.allowed);
        decision
    }

    /// Checks allowed and refused so far, per catalog plugin (then the unknown bucket),
    /// since the gateway started. Never reset: reports subtract what they acknowledged.
    pub fn usage_totals(&self) -> Vec<mcpg_license_core::usage::PluginCounts> {
        self.inner.usage.totals()
    }

    /// The current entitlements.
    pub fn entitlements(&self) -> Arc<TenantEntitlements> {
        self.inner.current.load_full()
    }

    /// The state now.
    pub fn state(&self) -> State {
        self.inner.current.load().state_at(self.inner.time.now())
    }

    /// Replaces the entitlements (after a refresh, a revocation, a restore).
    pub(crate) fn replace(&self, entitlements: TenantEntitlements) {
        self.inner.current.store(Arc::new(entitlements));
    }
}
