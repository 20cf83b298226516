//! The one owner of tenant state.
//!
//! Entitlements come from *slots*: one per federation credential, one for the offline
//! license, one for tier0. A slot's [`TenantHandle`] lives as long as the gateway (callers
//! keep it to skip lookups); the tenant it answers for is learned from the first token and
//! may change. Federation, offline licenses and revocation lists only tell the registry
//! "this slot's tenant now has these entitlements" ([`Registry::set`], [`Registry::update`]);
//! the registry swaps the handle's contents, keeps the index `check()` looks tenants up in,
//! forgets a tenant its slot no longer serves, and reports the state to the [`Observer`].
//!
//! The index is a plain map, copied on write and swapped whole, not a cache: see
//! [`Registry`] for why.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use mcpg_license_core::Catalog;

use crate::decision::{Decision, Reason};
use crate::entitlements::{TenantEntitlements, TenantHandle};
use crate::observe::Observer;
use crate::plugins::PluginTable;
use crate::sync::MutexExt;
use crate::tenant::TenantKey;
use crate::time::TimeGuard;

/// One source of a tenant's entitlements: a federation credential, the offline license, or
/// tier0.
#[derive(Debug)]
pub(crate) struct Slot {
    handle: TenantHandle,
    tenant: Mutex<Option<TenantKey>>,
}

impl Slot {
    /// The handle answering for the slot's tenant (the same one for the gateway's life).
    pub(crate) fn handle(&self) -> &TenantHandle {
        &self.handle
    }

    /// The tenant the slot answers for, once known.
    pub(crate) fn tenant(&self) -> Option<TenantKey> {
        self.tenant.lock_or_recover().clone()
    }
}

/// Every known tenant, the index `check()` finds them in, and what unknown tenants get.
///
/// The index is one plain map, read lock-free (an `ArcSwap` load) and replaced whole on the
/// rare change of a slot's tenant. It used to be a moka cache whose per-entry expiry was the
/// grace bound, in front of a map holding the same handles; it is not one any more, because:
/// - there is nothing to evict: the tenants are bounded by the configuration (one per
///   credential, plus an offline license), not by traffic;
/// - the grace bound is decided by the handle on the injected, never-backwards clock
///   (`max(clock, highest time seen)`), while moka expires on the process's monotonic
///   clock: an entry expiring there must not change an answer (a tenant past its grace
///   bound answers `lapsed` with its license, not `not_federated`), so the map behind it
///   had to stay and moka only ever cost time;
/// - the cost: measured in turn with `benches/check.rs`, `check(tenant, plugin)` through
///   the map takes about half the time it took through moka with one tenant, and a fifth
///   to a quarter with 10,000 (numbers in `docs/BENCHMARKS.md`).
pub(crate) struct Registry {
    time: Arc<TimeGuard>,
    plugins: Arc<PluginTable>,
    index: ArcSwap<HashMap<TenantKey, TenantHandle>>,
    /// Serialises changes of the index and of the slots' tenants, so that a slot's tenant
    /// and the index never disagree.
    writer: Mutex<()>,
    unknown: TenantHandle,
    observer: Observer,
}

impl Registry {
    /// An empty registry over `catalog`, reading time from `time`.
    pub(crate) fn new(catalog: &'static Catalog, time: Arc<TimeGuard>) -> Self {
        let plugins = Arc::new(PluginTable::new(catalog));
        let unknown = TenantHandle::new(
            TenantEntitlements::unlicensed(catalog, Reason::NotFederated),
            time.clone(),
            plugins.clone(),
        );
        Self {
            time,
            plugins,
            index: ArcSwap::from_pointee(HashMap::new()),
            writer: Mutex::new(()),
            unknown,
            observer: Observer::default(),
        }
    }

    /// A new slot, answering with `entitlements` for a tenant not known yet.
    pub(crate) fn slot(&self, entitlements: TenantEntitlements) -> Arc<Slot> {
        Arc::new(Slot {
            handle: TenantHandle::new(entitlements, self.time.clone(), self.plugins.clone()),
            tenant: Mutex::new(None),
        })
    }

    /// `slot` now answers for `tenant`, with `entitlements`: the handle's contents are
    /// swapped, the index points `tenant` at the slot (and forgets the slot's previous
    /// tenant), and the observer hears of the state.
    pub(crate) fn set(&self, slot: &Slot, tenant: &TenantKey, entitlements: TenantEntitlements) {
        {
            // The swap is inside the lock too, so that two calls for one slot cannot leave
            // one tenant indexed with the other's entitlements.
            let _writer = self.writer.lock_or_recover();
            slot.handle.replace(entitlements);
            let previous = slot.tenant.lock_or_recover().replace(tenant.clone());
            // The index already points an unchanged tenant at this slot's handle.
            if previous.as_ref() != Some(tenant) {
                let mut index = HashMap::clone(&self.index.load());
                if let Some(old) = previous {
                    index.remove(&old);
                }
                index.insert(tenant.clone(), slot.handle.clone());
                self.index.store(Arc::new(index));
            }
        }
        self.observer.note(tenant, &slot.handle, self.time.now());
    }

    /// The slot's tenant, whoever it is, now has `entitlements` (a denial, a revocation).
    /// A slot with no tenant yet has nothing to index or report.
    pub(crate) fn update(&self, slot: &Slot, entitlements: TenantEntitlements) {
        slot.handle.replace(entitlements);
        if let Some(tenant) = slot.tenant() {
            self.observer.note(&tenant, &slot.handle, self.time.now());
        }
    }

    /// The decision for `plugin` of `tenant`; an unknown tenant gets Tier-0
    /// (`not_federated` for paid plugins). Lock-free and allocation-free.
    #[inline]
    pub(crate) fn check(&self, tenant: &TenantKey, plugin: &str) -> Decision {
        match self.index.load().get(tenant) {
            Some(handle) => handle.check(plugin),
            None => self.unknown.check(plugin),
        }
    }

    /// The handle of `tenant`, if known.
    pub(crate) fn handle(&self, tenant: &TenantKey) -> Option<TenantHandle> {
        self.index.load().get(tenant).cloned()
    }

    /// What unknown tenants get.
    pub(crate) fn unknown(&self) -> &TenantHandle {
        &self.unknown
    }

    /// The plugin table handles resolve names with.
    pub(crate) fn plugins(&self) -> &PluginTable {
        &self.plugins
    }

    /// Every known tenant with its handle, sorted by key.
    pub(crate) fn tenants(&self) -> Vec<(TenantKey, TenantHandle)> {
        let mut list: Vec<_> = self
            .index
            .load()
            .iter()
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// Reports every tenant's state again: states change by time alone.
    pub(crate) fn observe_all(&self) {
        let now = self.time.now();
        for (tenant, handle) in self.tenants() {
            self.observer.note(&tenant, &handle, now);
        }
    }

    /// How many warnings (grace, expiry) were emitted so far.
    pub(crate) fn warnings_emitted(&self) -> u64 {
        self.observer.warnings_emitted()
    }
}

#[cfg(test)]
mod tests {
    use mcpg_license_core::ManualClock;

    use super::*;
    use crate::decision::State;
    use crate::entitlements::Basis;

    fn registry() -> Registry {
        let time = Arc::new(TimeGuard::new(Arc::new(ManualClock::new(1_000)), 0));
        Registry::new(Catalog::builtin(), time)
    }

    fn revoked() -> TenantEntitlements {
        TenantEntitlements::revoked(Catalog::builtin(), "license_revoked", 0, None)
    }

    fn key(text: &str) -> TenantKey {
        TenantKey::parse(text).expect("tenant")
    }

    #[test]
    fn a_slot_moving_to_another_tenant_forgets_the_first() {
        let registry = registry();
        let catalog = Catalog::builtin();
        let slot = registry.slot(TenantEntitlements::unlicensed(
            catalog,
            Reason::NotFederated,
        ));
        registry.set(&slot, &key("acme"), revoked());
        assert_eq!(
            registry.check(&key("acme"), "workspace.rbac").state,
            State::Revoked
        );
        registry.set(&slot, &key("globex"), revoked());
        assert_eq!(slot.tenant(), Some(key("globex")));
        let tenants: Vec<_> = registry.tenants().into_iter().map(|(k, _)| k).collect();
        assert_eq!(tenants, vec![key("globex")]);
        let forgotten = registry.check(&key("acme"), "workspace.rbac");
        assert_eq!(
            (forgotten.state, forgotten.reason),
            (State::Unlicensed, Reason::NotFederated)
        );
    }

    #[test]
    fn an_update_reaches_every_holder_of_the_handle() {
        let registry = registry();
        let catalog = Catalog::builtin();
        let slot = registry.slot(TenantEntitlements::unlicensed(
            catalog,
            Reason::NotFederated,
        ));
        let kept = slot.handle().clone();
        registry.update(&slot, revoked());
        assert!(registry.tenants().is_empty(), "no tenant known yet");
        assert_eq!(kept.state(), State::Revoked);
        registry.set(
            &slot,
            &key("acme"),
            TenantEntitlements::offline_expired(catalog, 500),
        );
        let found = registry.handle(&key("acme")).expect("indexed");
        assert!(matches!(
            found.entitlements().basis(),
            Basis::Offline { exp: 500 }
        ));
        assert_eq!(kept.state(), State::OfflineExpired);
    }
}
