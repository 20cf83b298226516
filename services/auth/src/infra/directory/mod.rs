//! The credential directory: every unrevoked gateway's credential hash, with its org
//! (license, entitlement set, metric handle: one shared copy per org) and its environment
//! (slugs and plugin set: one shared copy per environment), loaded at start and kept current
//! by the store's change events, so a fleet's token requests — each gateway refreshing once
//! in 8 hours, every one a cache miss — never wait on the database.
//!
//! Kept current, and trusted only while current:
//! - every committed change marks its org *dirty* before the write returns (on another
//!   replica, when its notification arrives); a dirty org's gateways, and any credential the
//!   directory does not know while some org is dirty (it may have just been registered),
//!   are answered from the database, as before the directory existed;
//! - a background task reloads dirty orgs and clears the mark only when no change to the
//!   org arrived while it was reading (a generation check), so a read that straddles a
//!   change is read again;
//! - a change to an org's own record or license ([`GrantScope::Org`]) reads only that
//!   record again and swaps the org's shared grant under all of its gateways at once (an
//!   [`OrgCell`]); any other change to an org reads its gateways again;
//! - a registration ([`GrantScope::Added`]) changes no gateway the org had: those keep
//!   being answered while the org is read again for the newcomers (which the directory does
//!   not know yet, so they are answered from the database meanwhile). Before, a fleet
//!   registered in batches had every token request of its org on the database path until
//!   the last batch was read, each caching a grant of its own;
//! - [`Change::All`] (a replica's listener reconnected, and also when it went down) marks
//!   everything dirty until a full reload; on PostgreSQL the directory answers only while
//!   the replica is listening for the others' changes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use mcpg_license_core::{Catalog, EntitlementSet};
use metrics::Counter;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::domain::credential::CredentialHash;
use crate::domain::{LicenseRecord, OrgStatus};
use crate::infra::peers::{ListenerState, PeerStatus};
use crate::infra::plugin_set_cache::{PluginSetCache, PreparedPluginSet};
use crate::infra::store::{Change, DirectoryGateway, GrantScope, Store, StoreError};
use crate::infra::telemetry::{DIRECTORY_GATEWAYS, DIRECTORY_LOADS, TOKENS_ISSUED};

mod builder;
mod dirty;
#[cfg(test)]
mod tests;

use builder::{Builder, DirectoryPlace, Loaded};
use dirty::Dirty;

/// What every gateway of one org shares: built once per org load.
#[derive(Debug)]
pub(crate) struct OrgGrant {
    /// Org id.
    pub(crate) id: String,
    /// Org slug.
    pub(crate) slug: String,
    /// Status.
    pub(crate) status: OrgStatus,
    /// End of its trial.
    pub(crate) trial_expires_at: Option<i64>,
    /// Its license, if any.
    pub(crate) license: Option<LicenseRecord>,
    /// The license's entitlement set (tier defaults, additions, removals).
    pub(crate) entitlements: EntitlementSet,
    /// The org's `issued` counter, registered once.
    pub(crate) issued: Counter,
}

impl OrgGrant {
    /// The shared part of an org's grants.
    pub(crate) fn new(
        id: String,
        slug: String,
        status: OrgStatus,
        trial_expires_at: Option<i64>,
        license: Option<LicenseRecord>,
    ) -> Self {
        let entitlements = license
            .as_ref()
            .map(|l| Catalog::builtin().license_entitlements(l.tier, &l.add, &l.remove))
            .unwrap_or_default();
        let issued = metrics::counter!(TOKENS_ISSUED, "org" => slug.clone(), "outcome" => "issued");
        Self {
            id,
            slug,
            status,
            trial_expires_at,
            license,
            entitlements,
            issued,
        }
    }
}

/// An org's place in the directory: every entry of the org points to it, and a change to
/// the org's own record swaps the grant inside it for all of them at once.
#[derive(Debug)]
pub(crate) struct OrgCell {
    /// Org id (what the dirty marks are keyed by).
    id: String,
    grant: ArcSwap<OrgGrant>,
}

impl OrgCell {
    fn new(grant: OrgGrant) -> Self {
        Self {
            id: grant.id.clone(),
            grant: ArcSwap::from_pointee(grant),
        }
    }

    /// The org's shared grant now.
    pub(crate) fn grant(&self) -> Arc<OrgGrant> {
        self.grant.load_full()
    }
}

/// What every gateway of one environment shares.
#[derive(Debug)]
pub(crate) struct PlaceGrant {
    /// Workspace slug.
    pub(crate) workspace: Arc<str>,
    /// Environment slug.
    pub(crate) environment: Arc<str>,
    /// The effective plugin set, one prepared copy per distinct set.
    pub(crate) plugin_set: Option<Arc<PreparedPluginSet>>,
}

/// One gateway in the directory: 16 bytes of id when it is a UUID, two shared pointers.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    id: GatewayId,
    /// Its org.
    pub(crate) org: Arc<OrgCell>,
    /// Its environment.
    pub(crate) place: Arc<PlaceGrant>,
}

impl Listed {
    /// The gateway's id.
    pub(crate) fn gateway_id(&self) -> &GatewayId {
        &self.id
    }
}

/// A gateway id, compact when it is a UUID (as the service makes them): 24 bytes and no
/// allocation, where a `String` takes 24 and 48 more on the heap. The token path's
/// per-gateway bookkeeping (`last_token_at`, the batched audit entry, the usage meter)
/// holds one per gateway seen since its last flush: 100,000 of them for a fleet at
/// saturation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum GatewayId {
    /// A UUID in its canonical (hyphenated, lowercase) form.
    Uuid(uuid::Uuid),
    /// Any other id, as written.
    Text(Box<str>),
}

impl std::fmt::Display for GatewayId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Uuid(id) => id.hyphenated().fmt(f),
            Self::Text(id) => f.write_str(id),
        }
    }
}

impl GatewayId {
    /// The compact form of `text`.
    pub(crate) fn new(text: &str) -> Self {
        let mut buffer = uuid::Uuid::encode_buffer();
        match uuid::Uuid::try_parse(text) {
            // Only the canonical form round-trips: anything else is kept as written.
            Ok(id) if id.hyphenated().encode_lower(&mut buffer) == text => Self::Uuid(id),
            _ => Self::Text(text.into()),
        }
    }
}

/// A full reload this often, whatever the events said.
pub(crate) const RECONCILE_EVERY: Duration = Duration::from_secs(300);
/// The least time between two passes over dirty orgs: a burst of changes to one org (a
/// bulk revocation) is one reload, not one per change.
const PASS_INTERVAL: Duration = Duration::from_millis(100);
/// A pass is followed by a rest of this many times its own length (at least
/// [`PASS_INTERVAL`]): reloading a large org while it keeps changing (a fleet registered in
/// batches of 1,000) takes at most a quarter of the reloader's time, and the registration
/// is not slowed by reading the whole org again after every batch.
const REST_PER_PASS: u32 = 3;

/// The directory's answer for a credential: the gateway holding it, or `None` when the
/// directory cannot say (not loaded, the org just changed, not hearing the other replicas,
/// or a credential it does not hold) and the database must.
pub(crate) type Lookup = Option<Listed>;

/// The credential directory (see the module docs).
#[derive(Debug)]
pub(crate) struct Directory {
    gateways: RwLock<HashMap<CredentialHash, Listed>>,
    /// Each org's cell, for a change to its own record.
    cells: Mutex<HashMap<String, Arc<OrgCell>>>,
    dirty: Mutex<Dirty>,
    /// Whether `dirty` holds anything: the token path reads only this when all is current.
    any_dirty: AtomicBool,
    wake: Notify,
    peers: Arc<PeerStatus>,
    plugin_sets: Arc<PluginSetCache>,
}

impl Directory {
    /// An empty directory that needs its first full load; subscribed to `store`'s changes.
    pub(crate) fn new(
        store: &Store,
        peers: Arc<PeerStatus>,
        plugin_sets: Arc<PluginSetCache>,
    ) -> Arc<Self> {
        let directory = Arc::new(Self {
            gateways: RwLock::new(HashMap::new()),
            cells: Mutex::new(HashMap::new()),
            dirty: Mutex::new(Dirty {
                generation: 1,
                all: Some(1),
                ..Dirty::default()
            }),
            any_dirty: AtomicBool::new(true),
            wake: Notify::new(),
            peers,
            plugin_sets,
        });
        let weak = Arc::downgrade(&directory);
        store.changes().subscribe(move |changes| {
            if let Some(directory) = weak.upgrade() {
                directory.mark(changes);
            }
        });
        directory
    }

    fn dirty(&self) -> MutexGuard<'_, Dirty> {
        // A panic while holding it left plain data behind; the marks must still work.
        self.dirty.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the directory knows of `hash`.
    pub(crate) fn lookup(&self, hash: &CredentialHash) -> Lookup {
        if !matches!(
            self.peers.get(),
            ListenerState::NotApplicable | ListenerState::Listening
        ) {
            return None;
        }
        // The marks are read while the entry's read guard is held: a reload must take the
        // write lock to replace the entry, and clears its org's mark only after that, so an
        // entry read here is either current or still marked.
        let gateways = self.gateways.read().unwrap_or_else(PoisonError::into_inner);
        let listed = gateways.get(hash)?;
        if !self.any_dirty.load(Ordering::Acquire) {
            return Some(listed.clone());
        }
        let dirty = self.dirty();
        // An org marked only for new gateways still answers for the ones it had.
        let trusted = dirty
            .orgs
            .get(&listed.org.id)
            .is_none_or(|mark| mark.scope == GrantScope::Added);
        (dirty.all.is_none() && trusted).then(|| listed.clone())
    }

    /// Marks the orgs `changes` touch as dirty and wakes the reloader.
    fn mark(&self, changes: &[Change]) {
        let relevant = changes
            .iter()
            .any(|c| matches!(c, Change::All | Change::Grants { .. }));
        if !relevant {
            return;
        }
        {
            let mut dirty = self.dirty();
            dirty.generation += 1;
            let generation = dirty.generation;
            for change in changes {
                match change {
                    Change::All => dirty.all = Some(generation),
                    Change::Grants { org_id, scope } => dirty.mark(org_id, *scope),
                    Change::Keys | Change::Oidc { .. } => {}
                }
            }
            self.any_dirty.store(true, Ordering::Release);
        }
        self.wake.notify_one();
    }

    /// Reloads what is dirty, for ever (the task is aborted at shutdown): a full load
    /// first, then dirty orgs as their changes arrive, and a full reload every
    /// [`RECONCILE_EVERY`]. Meanwhile the token path reads the database for what is dirty.
    pub(crate) async fn keep_current(self: Arc<Self>, store: Store) {
        let mut reconcile_at = Instant::now() + RECONCILE_EVERY;
        loop {
            // Registered before the pass: a change during it wakes the next one.
            let woken = self.wake.notified();
            let started = Instant::now();
            if started >= reconcile_at {
                reconcile_at = started + RECONCILE_EVERY;
                let generation = self.dirty().generation;
                self.reload_all(&store, generation).await;
            }
            self.pass(&store).await;
            let rest = (started.elapsed() * REST_PER_PASS).max(PASS_INTERVAL);
            let next_retry = self.dirty().next_retry();
            let wake_at = next_retry.map_or(reconcile_at, |at| at.min(reconcile_at));
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
            tokio::time::sleep(rest).await;
        }
    }

    /// One pass over what is dirty and not waiting for a retry: a pending full load, else
    /// each dirty org (its own record only, or all of it).
    pub(crate) async fn pass(&self, store: &Store) {
        let (generation, all, orgs) = {
            let dirty = self.dirty();
            let now = Instant::now();
            let orgs: Vec<(String, GrantScope)> = dirty
                .orgs
                .iter()
                .filter(|(org, _)| dirty.ready(org, now))
                .map(|(org, mark)| (org.clone(), mark.scope))
                .collect();
            (
                dirty.generation,
                dirty.all.is_some() && dirty.ready("", now),
                orgs,
            )
        };
        if all {
            self.reload_all(store, generation).await;
            return;
        }
        for (org, scope) in orgs {
            let read = match scope {
                GrantScope::Org => self.reload_org_record(store, &org).await,
                GrantScope::Added | GrantScope::Everything => self.reload_org(store, &org).await,
            };
            match read {
                Ok(true) => {
                    self.clean(generation, Some(&org));
                    let scope = match scope {
                        GrantScope::Org => "org_record",
                        GrantScope::Added | GrantScope::Everything => "org",
                    };
                    metrics::counter!(DIRECTORY_LOADS, "scope" => scope).increment(1);
                }
                Ok(false) => self.dirty().failed(&org),
                Err(error) => {
                    tracing::warn!(error = %error, org = %org, "cannot reload an org into the credential directory; its gateways are read from the database meanwhile");
                    self.dirty().failed(&org);
                }
            }
        }
        self.publish_size();
    }

    /// Reads `org`'s gateways again and replaces its entries; `false` when the org could
    /// not be read (it stays dirty).
    async fn reload_org(&self, store: &Store, org: &str) -> Result<bool, StoreError> {
        let mut entries = Vec::new();
        let loaded = self.load(store, Some(org), &mut entries).await?;
        if !loaded.failed.is_empty() {
            return Ok(false);
        }
        {
            let mut gateways = self
                .gateways
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            gateways.retain(|_, listed| listed.org.id != org);
            gateways.extend(entries);
        }
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        match loaded.cells.into_iter().find(|(id, _)| id == org) {
            Some((id, cell)) => cells.insert(id, cell),
            None => cells.remove(org),
        };
        Ok(true)
    }

    /// Reads `org`'s own record again and swaps its shared grant under all its gateways;
    /// `false` when the record could not be read (it stays dirty).
    async fn reload_org_record(&self, store: &Store, org: &str) -> Result<bool, StoreError> {
        let cell = self
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(org)
            .cloned();
        // No gateway of the org is held: nothing to swap (its first registration is a
        // change to everything of it).
        let Some(cell) = cell else { return Ok(true) };
        match store.directory_orgs(Some(org)).await?.into_iter().next() {
            Some(Ok(read)) => {
                cell.grant.store(Arc::new(OrgGrant::from_row(read)));
                Ok(true)
            }
            Some(Err((id, error))) => {
                tracing::warn!(error = %error, org = %id, "an org's row cannot be read into the credential directory; its gateways are read from the database");
                Ok(false)
            }
            // Deleted: its deletion is a change to everything of it, which drops the entries.
            None => Ok(true),
        }
    }

    /// A full load, swapped in whole; orgs that could not be read stay dirty (their
    /// gateways are read from the database) and are retried with backoff.
    async fn reload_all(&self, store: &Store, generation: u64) {
        // Sized for what is held now: the map is not grown (and copied) as it fills.
        let mut fresh = HashMap::with_capacity(self.len());
        match self.load(store, None, &mut fresh).await {
            Ok(loaded) => {
                if !loaded.failed.is_empty() {
                    fresh.retain(|_, listed| !loaded.failed.contains(&listed.org.id));
                }
                let old = {
                    let mut gateways = self
                        .gateways
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    std::mem::replace(&mut *gateways, fresh)
                };
                // Freed outside the lock: the token path does not wait for it.
                drop(old);
                *self.cells.lock().unwrap_or_else(PoisonError::into_inner) = loaded.cells;
                {
                    let mut dirty = self.dirty();
                    dirty.retry.remove("");
                    for org in &loaded.failed {
                        dirty.mark(org, GrantScope::Everything);
                        dirty.failed(org);
                    }
                }
                self.clean(generation, None);
                metrics::counter!(DIRECTORY_LOADS, "scope" => "all").increment(1);
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot load the credential directory; the token path reads the database meanwhile");
                self.dirty().failed("");
            }
        }
        self.publish_size();
    }

    /// Clears the marks (everything, or `org`'s) that no change after `generation` renewed.
    fn clean(&self, generation: u64, org: Option<&str>) {
        let mut dirty = self.dirty();
        match org {
            None => {
                if dirty.all.is_some_and(|g| g <= generation) {
                    dirty.all = None;
                }
                // A full load covers every org marked before it read, except those it could
                // not read, which wait for a retry.
                let waiting: HashSet<String> = dirty.retry.keys().cloned().collect();
                dirty
                    .orgs
                    .retain(|org, mark| mark.generation > generation || waiting.contains(org));
            }
            Some(org) => {
                if dirty
                    .orgs
                    .get(org)
                    .is_some_and(|m| m.generation <= generation)
                {
                    dirty.orgs.remove(org);
                }
                dirty.retry.remove(org);
            }
        }
        if dirty.is_clean() {
            self.any_dirty.store(false, Ordering::Release);
        }
    }

    fn publish_size(&self) {
        let size = self.len();
        metrics::gauge!(DIRECTORY_GATEWAYS).set(size as f64);
    }

    /// Reads every org (`None`) or one from the store into `into`. An org's and an
    /// environment's shared parts are built only for those that have gateways. The entries
    /// of orgs found unreadable part-way (a plugin set) are in `into` too: the caller drops
    /// those of [`Loaded::failed`].
    async fn load(
        &self,
        store: &Store,
        org: Option<&str>,
        into: &mut impl Extend<(CredentialHash, Listed)>,
    ) -> Result<Loaded, StoreError> {
        let mut failed = Vec::new();
        let mut orgs = HashMap::new();
        for read in store.directory_orgs(org).await? {
            match read {
                Ok(read) => {
                    orgs.insert(read.id.clone(), read);
                }
                Err((id, error)) => {
                    tracing::warn!(error = %error, org = %id, "an org's row cannot be read into the credential directory; its gateways are read from the database");
                    failed.push(id);
                }
            }
        }
        let places: HashMap<String, DirectoryPlace> = store
            .directory_environments(org)
            .await?
            .into_iter()
            .map(|env| {
                let place = DirectoryPlace {
                    workspace_id: env.workspace_id,
                    workspace: env.workspace,
                    environment: env.environment,
                };
                (env.id, place)
            })
            .collect();
        let sets: HashMap<String, String> = store
            .directory_plugin_sets(org)
            .await?
            .into_iter()
            .collect();
        let mut builder = Builder {
            orgs,
            places,
            sets,
            plugin_sets: &self.plugin_sets,
            cells: HashMap::new(),
            place_grants: HashMap::new(),
            failed: failed.into_iter().collect(),
        };
        store
            .directory_gateways(org, |page: Vec<DirectoryGateway>| {
                into.extend(page.into_iter().filter_map(|g| builder.list(g)));
            })
            .await?;
        builder.cells.retain(|id, _| !builder.failed.contains(id));
        Ok(Loaded {
            cells: builder.cells,
            failed: builder.failed,
        })
    }

    /// How many gateways the directory holds.
    pub(crate) fn len(&self) -> usize {
        self.gateways
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
