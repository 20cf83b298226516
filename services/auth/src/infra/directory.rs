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
//! - [`Change::All`] (a replica's listener reconnected, and also when it went down) marks
//!   everything dirty until a full reload; on PostgreSQL the directory answers only while
//!   the replica is listening for the others' changes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use mcpg_license_core::{Catalog, EntitlementSet};
use metrics::Counter;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::domain::credential::CredentialHash;
use crate::domain::{LicenseRecord, OrgStatus};
use crate::infra::peers::{ListenerState, PeerStatus};
use crate::infra::plugin_set_cache::{PluginSetCache, PreparedPluginSet};
use crate::infra::store::{Change, DirectoryGateway, DirectoryOrg, Store, StoreError};
use crate::infra::telemetry::{DIRECTORY_GATEWAYS, DIRECTORY_LOADS, TOKENS_ISSUED};

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
    pub(crate) org: Arc<OrgGrant>,
    /// Its environment.
    pub(crate) place: Arc<PlaceGrant>,
}

impl Listed {
    /// The gateway's id as stored.
    pub(crate) fn gateway_id(&self) -> String {
        match &self.id {
            GatewayId::Uuid(id) => id.hyphenated().to_string(),
            GatewayId::Text(id) => id.to_string(),
        }
    }
}

/// A gateway id, compact when it is a UUID (as the service makes them).
#[derive(Debug, Clone)]
enum GatewayId {
    Uuid(uuid::Uuid),
    Text(Box<str>),
}

impl GatewayId {
    fn new(text: &str) -> Self {
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
/// The first and the longest wait before an org (or a full load) that failed is read again.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The directory's answer for a credential: the gateway holding it, or `None` when the
/// directory cannot say (not loaded, the org just changed, not hearing the other replicas,
/// or a credential it does not hold) and the database must.
pub(crate) type Lookup = Option<Listed>;

/// Orgs whose entries may be stale, with the generation of their last change.
#[derive(Debug, Default)]
struct Dirty {
    generation: u64,
    /// Everything is stale since this generation (`None`: no full load is pending).
    all: Option<u64>,
    orgs: HashMap<String, u64>,
    /// Orgs (and `""` for the full load) whose last read failed: when to try again, and the
    /// wait after that.
    retry: HashMap<String, (Instant, Duration)>,
}

impl Dirty {
    fn is_clean(&self) -> bool {
        self.all.is_none() && self.orgs.is_empty()
    }

    /// Notes a failed read of `key` (an org id, or `""` for a full load): retried after a
    /// wait that doubles up to [`MAX_BACKOFF`].
    fn failed(&mut self, key: &str) {
        let wait = self
            .retry
            .get(key)
            .map_or(FIRST_BACKOFF, |(_, wait)| (*wait * 2).min(MAX_BACKOFF));
        self.retry
            .insert(key.to_owned(), (Instant::now() + wait, wait));
    }

    fn ready(&self, key: &str, now: Instant) -> bool {
        self.retry.get(key).is_none_or(|(at, _)| *at <= now)
    }

    /// The earliest retry still waiting.
    fn next_retry(&self) -> Option<Instant> {
        self.retry.values().map(|(at, _)| *at).min()
    }
}

/// The credential directory (see the module docs).
#[derive(Debug)]
pub(crate) struct Directory {
    gateways: RwLock<HashMap<CredentialHash, Listed>>,
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
        (dirty.all.is_none() && !dirty.orgs.contains_key(&listed.org.id)).then(|| listed.clone())
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
                    Change::Grants { org_id } => {
                        dirty.orgs.insert(org_id.clone(), generation);
                    }
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
    /// each dirty org.
    pub(crate) async fn pass(&self, store: &Store) {
        let (generation, all, orgs) = {
            let dirty = self.dirty();
            let now = Instant::now();
            let orgs: Vec<String> = dirty
                .orgs
                .keys()
                .filter(|org| dirty.ready(org, now))
                .cloned()
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
        for org in orgs {
            match self.load(store, Some(&org)).await {
                Ok(loaded) if loaded.failed.is_empty() => {
                    {
                        let mut gateways = self
                            .gateways
                            .write()
                            .unwrap_or_else(PoisonError::into_inner);
                        gateways.retain(|_, listed| listed.org.id != org);
                        gateways.extend(loaded.gateways);
                    }
                    self.clean(generation, Some(&org));
                    metrics::counter!(DIRECTORY_LOADS, "scope" => "org").increment(1);
                }
                Ok(_) => self.dirty().failed(&org),
                Err(error) => {
                    tracing::warn!(error = %error, org = %org, "cannot reload an org into the credential directory; its gateways are read from the database meanwhile");
                    self.dirty().failed(&org);
                }
            }
        }
        self.publish_size();
    }

    /// A full load, swapped in whole; orgs that could not be read stay dirty (their
    /// gateways are read from the database) and are retried with backoff.
    async fn reload_all(&self, store: &Store, generation: u64) {
        match self.load(store, None).await {
            Ok(loaded) => {
                let old = {
                    let mut gateways = self
                        .gateways
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    std::mem::replace(&mut *gateways, loaded.gateways)
                };
                // Freed outside the lock: the token path does not wait for it.
                drop(old);
                {
                    let mut dirty = self.dirty();
                    dirty.retry.remove("");
                    for org in &loaded.failed {
                        dirty.orgs.insert(org.clone(), generation);
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
                    .retain(|org, g| *g > generation || waiting.contains(org));
            }
            Some(org) => {
                if dirty.orgs.get(org).is_some_and(|g| *g <= generation) {
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

    /// Reads every org (`None`) or one from the store. An org's and an environment's shared
    /// parts are built only for those that have gateways.
    async fn load(&self, store: &Store, org: Option<&str>) -> Result<Loaded, StoreError> {
        let mut failed = Vec::new();
        let mut orgs: HashMap<String, DirectoryOrg> = HashMap::new();
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
            org_grants: HashMap::new(),
            place_grants: HashMap::new(),
            failed: failed.into_iter().collect(),
        };
        let mut gateways = HashMap::new();
        store
            .directory_gateways(org, |page: Vec<DirectoryGateway>| {
                for gateway in page {
                    if let Some((hash, listed)) = builder.list(gateway) {
                        gateways.insert(hash, listed);
                    }
                }
            })
            .await?;
        // An org found unreadable part-way (a plugin set) keeps none of its entries.
        if !builder.failed.is_empty() {
            gateways.retain(|_, listed: &mut Listed| !builder.failed.contains(&listed.org.id));
        }
        Ok(Loaded {
            gateways,
            failed: builder.failed.into_iter().collect(),
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

/// What a load read: the gateways, and the orgs it could not read.
struct Loaded {
    gateways: HashMap<CredentialHash, Listed>,
    failed: Vec<String>,
}

/// An environment's row, until a gateway needs its shared part.
struct DirectoryPlace {
    workspace_id: String,
    workspace: String,
    environment: String,
}

/// Turns gateway rows into entries, building each org's and environment's shared part
/// once, on its first gateway.
struct Builder<'a> {
    orgs: HashMap<String, DirectoryOrg>,
    places: HashMap<String, DirectoryPlace>,
    sets: HashMap<String, String>,
    plugin_sets: &'a PluginSetCache,
    org_grants: HashMap<String, Arc<OrgGrant>>,
    place_grants: HashMap<String, Arc<PlaceGrant>>,
    failed: HashSet<String>,
}

impl Builder<'_> {
    fn list(&mut self, gateway: DirectoryGateway) -> Option<(CredentialHash, Listed)> {
        if self.failed.contains(&gateway.org_id) {
            return None;
        }
        let Some(hash) = CredentialHash::from_hex(&gateway.credential_hash) else {
            // No path can authenticate it; the database path refuses it too.
            tracing::warn!(gateway = %gateway.id, "a stored credential hash is not 64 hex digits; that gateway cannot get tokens");
            return None;
        };
        let org = match self.org_grants.get(&gateway.org_id) {
            Some(org) => org.clone(),
            // Deleted while this load read: its change marks it dirty again.
            None => {
                let read = self.orgs.remove(&gateway.org_id)?;
                let org = Arc::new(OrgGrant::new(
                    read.id,
                    read.slug,
                    read.status,
                    read.trial_expires_at,
                    read.license,
                ));
                self.org_grants.insert(gateway.org_id.clone(), org.clone());
                org
            }
        };
        let place = match self.place_grants.get(&gateway.environment_id) {
            Some(place) => place.clone(),
            None => {
                let read = self.places.remove(&gateway.environment_id)?;
                let text = self
                    .sets
                    .get(&gateway.environment_id)
                    .or_else(|| self.sets.get(&read.workspace_id));
                let plugin_set = match text.map(|text| self.plugin_sets.prepare(text)) {
                    None => None,
                    Some(Ok(set)) => Some(set),
                    Some(Err(error)) => {
                        tracing::warn!(error = %error, org = %gateway.org_id, "a stored plugin set cannot be read into the credential directory; the org's gateways are read from the database");
                        self.failed.insert(gateway.org_id);
                        return None;
                    }
                };
                let place = Arc::new(PlaceGrant {
                    workspace: read.workspace.into(),
                    environment: read.environment.into(),
                    plugin_set,
                });
                self.place_grants
                    .insert(gateway.environment_id.clone(), place.clone());
                place
            }
        };
        let listed = Listed {
            id: GatewayId::new(&gateway.id),
            org,
            place,
        };
        Some((hash, listed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(state: ListenerState) -> Directory {
        Directory {
            gateways: RwLock::new(HashMap::new()),
            dirty: Mutex::new(Dirty::default()),
            any_dirty: AtomicBool::new(false),
            wake: Notify::new(),
            peers: Arc::new(PeerStatus::with_state(state)),
            plugin_sets: Arc::new(PluginSetCache::default()),
        }
    }

    fn listed(org: &str) -> Listed {
        Listed {
            id: GatewayId::new("0193f2ab-7c1d-7e3a-9b2f-0c4d5e6f7a8b"),
            org: Arc::new(OrgGrant::new(
                org.to_owned(),
                format!("{org}-slug"),
                OrgStatus::Active,
                None,
                None,
            )),
            place: Arc::new(PlaceGrant {
                workspace: "main".into(),
                environment: "prod".into(),
                plugin_set: None,
            }),
        }
    }

    fn hash(byte: u8) -> CredentialHash {
        CredentialHash::from_hex(&format!("{byte:02x}").repeat(32)).expect("64 hex digits")
    }

    #[test]
    fn a_dirty_org_is_asked_of_the_database_until_a_reload_that_saw_its_change() {
        let directory = directory(ListenerState::NotApplicable);
        directory
            .gateways
            .write()
            .expect("lock")
            .extend([(hash(1), listed("org-a")), (hash(2), listed("org-b"))]);
        assert!(directory.lookup(&hash(1)).is_some());
        assert!(
            directory.lookup(&hash(3)).is_none(),
            "not held: the database says"
        );

        directory.mark(&[Change::Grants {
            org_id: "org-a".into(),
        }]);
        assert!(directory.lookup(&hash(1)).is_none(), "org-a changed");
        assert!(directory.lookup(&hash(2)).is_some(), "org-b did not");

        // A reload that started before a second change does not clear the mark.
        let before = directory.dirty().generation;
        directory.mark(&[Change::Grants {
            org_id: "org-a".into(),
        }]);
        directory.clean(before, Some("org-a"));
        assert!(directory.lookup(&hash(1)).is_none());
        let after = directory.dirty().generation;
        directory.clean(after, Some("org-a"));
        assert!(directory.lookup(&hash(1)).is_some());
        assert!(!directory.any_dirty.load(Ordering::Acquire));

        // `All` holds every answer back until a full load that started after it.
        directory.mark(&[Change::All]);
        assert!(directory.lookup(&hash(2)).is_none());
        directory.clean(before, None);
        assert!(
            directory.lookup(&hash(2)).is_none(),
            "an older load is not enough"
        );
        let now = directory.dirty().generation;
        directory.clean(now, None);
        assert!(directory.lookup(&hash(2)).is_some());
    }

    #[test]
    fn on_postgresql_the_directory_answers_only_while_listening() {
        let directory = directory(ListenerState::Down);
        directory
            .gateways
            .write()
            .expect("lock")
            .insert(hash(1), listed("org-a"));
        assert!(directory.lookup(&hash(1)).is_none());
        directory.peers.set_for_test(ListenerState::Starting);
        assert!(directory.lookup(&hash(1)).is_none());
        directory.peers.set_for_test(ListenerState::Listening);
        assert!(directory.lookup(&hash(1)).is_some());
    }

    #[test]
    fn a_failed_read_is_retried_after_a_doubling_wait() {
        let mut dirty = Dirty::default();
        let now = Instant::now();
        assert!(dirty.ready("org-a", now));
        dirty.failed("org-a");
        assert!(!dirty.ready("org-a", now));
        assert_eq!(dirty.retry["org-a"].1, FIRST_BACKOFF);
        for _ in 0..10 {
            dirty.failed("org-a");
        }
        assert_eq!(dirty.retry["org-a"].1, MAX_BACKOFF);
        assert!(dirty.ready("org-a", now + MAX_BACKOFF + Duration::from_secs(1)));
        assert!(dirty.next_retry().is_some());
    }

    #[test]
    fn gateway_ids_are_compact_only_in_their_canonical_form() {
        let canonical = "0193f2ab-7c1d-7e3a-9b2f-0c4d5e6f7a8b";
        assert!(matches!(GatewayId::new(canonical), GatewayId::Uuid(_)));
        for other in [
            "0193F2AB-7C1D-7E3A-9B2F-0C4D5E6F7A8B",
            "gw-1",
            "0193f2ab7c1d7e3a9b2f0c4d5e6f7a8b",
        ] {
            assert!(
                matches!(GatewayId::new(other), GatewayId::Text(_)),
                "{other}"
            );
            let listed = Listed {
                id: GatewayId::new(other),
                ..listed("org-a")
            };
            assert_eq!(listed.gateway_id(), other);
        }
        let listed = Listed {
            id: GatewayId::new(canonical),
            ..listed("org-a")
        };
        assert_eq!(listed.gateway_id(), canonical);
    }
}
