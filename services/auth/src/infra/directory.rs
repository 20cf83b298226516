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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use mcpg_license_core::{Catalog, EntitlementSet};
use metrics::Counter;
use tokio::sync::Notify;

use crate::domain::credential::CredentialHash;
use crate::domain::{LicenseRecord, OrgStatus};
use crate::infra::peers::{ListenerState, PeerStatus};
use crate::infra::plugin_set_cache::{PluginSetCache, PreparedPluginSet};
use crate::infra::store::{
    Change, DirectoryEnvironment, DirectoryGateway, DirectoryOrg, Store, StoreError,
};
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
        match uuid::Uuid::try_parse(text) {
            Ok(id) if id.hyphenated().to_string() == text => Self::Uuid(id),
            _ => Self::Text(text.into()),
        }
    }
}

/// What the directory says about a credential.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// An unrevoked gateway holds it.
    Found(Listed),
    /// No unrevoked gateway holds it.
    Unknown,
    /// The directory cannot say (not loaded, or the credential's org may have changed):
    /// ask the database.
    AskTheStore,
}

#[derive(Debug, Default)]
struct Index {
    gateways: HashMap<CredentialHash, Listed>,
    /// Each org's credentials, to drop them when the org is reloaded.
    by_org: HashMap<String, Vec<CredentialHash>>,
}

/// Orgs whose entries may be stale, with the generation of their last change.
#[derive(Debug, Default)]
struct Dirty {
    generation: u64,
    /// Everything is stale since this generation (`None`: a full load is not pending).
    all: Option<u64>,
    orgs: HashMap<String, u64>,
}

/// The credential directory (see the module docs).
#[derive(Debug)]
pub(crate) struct Directory {
    index: RwLock<Index>,
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
            index: RwLock::new(Index::default()),
            dirty: Mutex::new(Dirty {
                generation: 1,
                all: Some(1),
                orgs: HashMap::new(),
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

    /// What the directory knows of `hash`.
    pub(crate) fn lookup(&self, hash: &CredentialHash) -> Lookup {
        if !matches!(
            self.peers.get(),
            ListenerState::NotApplicable | ListenerState::Listening
        ) {
            return Lookup::AskTheStore;
        }
        let any_dirty = self.any_dirty.load(Ordering::Acquire);
        let found = match self.index.read() {
            Ok(index) => index.gateways.get(hash).cloned(),
            Err(_) => return Lookup::AskTheStore,
        };
        if !any_dirty {
            return found.map_or(Lookup::Unknown, Lookup::Found);
        }
        let Ok(dirty) = self.dirty.lock() else {
            return Lookup::AskTheStore;
        };
        match found {
            _ if dirty.all.is_some() => Lookup::AskTheStore,
            Some(listed) if !dirty.orgs.contains_key(&listed.org.id) => Lookup::Found(listed),
            _ => Lookup::AskTheStore,
        }
    }

    /// Marks the orgs `changes` touch as dirty and wakes the reloader.
    fn mark(&self, changes: &[Change]) {
        let relevant = changes
            .iter()
            .any(|c| matches!(c, Change::All | Change::Grants { .. }));
        if !relevant {
            return;
        }
        if let Ok(mut dirty) = self.dirty.lock() {
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
    /// first, then dirty orgs as their changes arrive. A failed load is retried after a
    /// second; meanwhile the token path reads the database.
    pub(crate) async fn keep_current(self: Arc<Self>, store: Store) {
        loop {
            // Registered before the pass: a change during it wakes the next one.
            let woken = self.wake.notified();
            if let Err(error) = self.reload_dirty(&store).await {
                tracing::warn!(error = %error, "cannot load the credential directory; the token path reads the database meanwhile");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            woken.await;
        }
    }

    /// One pass: a full load when one is pending, else each dirty org.
    pub(crate) async fn reload_dirty(&self, store: &Store) -> Result<(), StoreError> {
        loop {
            let (generation, all, orgs) = match self.dirty.lock() {
                Ok(dirty) => (
                    dirty.generation,
                    dirty.all.is_some(),
                    dirty.orgs.keys().cloned().collect::<Vec<_>>(),
                ),
                Err(_) => return Ok(()),
            };
            if all {
                let index = self.load(store, None).await?;
                if let Ok(mut current) = self.index.write() {
                    *current = index;
                }
                self.clean(generation, None);
                metrics::counter!(DIRECTORY_LOADS, "scope" => "all").increment(1);
            } else if orgs.is_empty() {
                return Ok(());
            } else {
                for org in orgs {
                    let index = self.load(store, Some(&org)).await?;
                    self.install(&org, index);
                    self.clean(generation, Some(&org));
                    metrics::counter!(DIRECTORY_LOADS, "scope" => "org").increment(1);
                }
            }
            metrics::gauge!(DIRECTORY_GATEWAYS).set(self.len() as f64);
        }
    }

    /// Replaces `org`'s entries with `loaded` (which holds only that org's).
    fn install(&self, org: &str, loaded: Index) {
        let Ok(mut index) = self.index.write() else {
            return;
        };
        if let Some(old) = index.by_org.remove(org) {
            for hash in old {
                index.gateways.remove(&hash);
            }
        }
        index.gateways.extend(loaded.gateways);
        index.by_org.extend(loaded.by_org);
    }

    /// Clears the marks (everything, or `org`'s) that no change after `generation` renewed.
    fn clean(&self, generation: u64, org: Option<&str>) {
        let Ok(mut dirty) = self.dirty.lock() else {
            return;
        };
        match org {
            None => {
                if dirty.all.is_some_and(|g| g <= generation) {
                    dirty.all = None;
                }
                dirty.orgs.retain(|_, g| *g > generation);
            }
            Some(org) => {
                if dirty.orgs.get(org).is_some_and(|g| *g <= generation) {
                    dirty.orgs.remove(org);
                }
            }
        }
        let clean = dirty.all.is_none() && dirty.orgs.is_empty();
        if clean {
            self.any_dirty.store(false, Ordering::Release);
        }
    }

    /// Reads every org (`None`) or one from the store into a fresh index.
    async fn load(&self, store: &Store, org: Option<&str>) -> Result<Index, StoreError> {
        let orgs: HashMap<String, Arc<OrgGrant>> = store
            .directory_orgs(org)
            .await?
            .into_iter()
            .map(|o: DirectoryOrg| {
                let grant = OrgGrant::new(o.id, o.slug, o.status, o.trial_expires_at, o.license);
                (grant.id.clone(), Arc::new(grant))
            })
            .collect();
        let mut places: HashMap<String, Arc<PlaceGrant>> = HashMap::new();
        for env in store.directory_environments(org).await? {
            let DirectoryEnvironment {
                id,
                workspace,
                environment,
                plugin_set,
                ..
            } = env;
            let plugin_set = match plugin_set {
                Some(text) => Some(self.plugin_sets.prepare(&text)?),
                None => None,
            };
            let place = PlaceGrant {
                workspace: workspace.into(),
                environment: environment.into(),
                plugin_set,
            };
            places.insert(id, Arc::new(place));
        }
        let mut index = Index::default();
        let mut corrupt = None;
        store
            .directory_gateways(org, |page: Vec<DirectoryGateway>| {
                for gateway in page {
                    let (Some(org), Some(place)) = (
                        orgs.get(&gateway.org_id),
                        places.get(&gateway.environment_id),
                    ) else {
                        // Deleted while this load read: its change marks it dirty again.
                        continue;
                    };
                    let Some(hash) = CredentialHash::from_hex(&gateway.credential_hash) else {
                        corrupt.get_or_insert(gateway.id);
                        continue;
                    };
                    index.by_org.entry(gateway.org_id).or_default().push(hash);
                    let listed = Listed {
                        id: GatewayId::new(&gateway.id),
                        org: org.clone(),
                        place: place.clone(),
                    };
                    index.gateways.insert(hash, listed);
                }
            })
            .await?;
        if let Some(id) = corrupt {
            // Such a gateway cannot authenticate by any path; say so once per load.
            tracing::warn!(gateway = %id, "a stored credential hash is not 64 hex digits; that gateway cannot get tokens");
        }
        Ok(index)
    }

    /// How many gateways the directory holds.
    pub(crate) fn len(&self) -> usize {
        self.index.read().map_or(0, |index| index.gateways.len())
    }
}
