//! The [`Gateway`]: per-tenant entitlements in a moka cache, and the synchronous
//! `check()` hot path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mcpg_license_core::{Catalog, Clock, SystemClock};
use moka::Expiry;
use moka::sync::Cache;
use secrecy::SecretString;
use thiserror::Error;

use crate::client::{FederationClient, HttpFederationClient};
use crate::config::{Mode, ModeSettings, Settings};
use crate::decision::{Decision, Reason};
use crate::entitlements::{Basis, TenantEntitlements, TenantHandle};
use crate::federation::Source;
use crate::observe::Observer;
use crate::plugins::PluginTable;
use crate::store::{StateStore, StoreError};
use crate::sync::RwLockExt;
use crate::tenant::TenantKey;
use crate::time::{CoarseClock, TimeGuard};
use crate::verify::Verifier;

/// The most tenants kept in the cache of one process.
const CACHE_CAPACITY: u64 = 1_000_000;

/// Why a gateway could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The state directory is unusable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The offline license was rejected (bad signature, untrusted signer, other deployment…).
    #[error("offline license {path} rejected ({code}): {source}")]
    License {
        /// The license file.
        path: String,
        /// The rejection code.
        code: &'static str,
        /// Why.
        source: mcpg_license_core::VerifyError,
    },
    /// The configured revocation list does not verify against the roots.
    #[error("revocation list rejected ({code}): {0}", code = .0.code())]
    Revocations(mcpg_license_core::VerifyError),
    /// The HTTP client could not be built.
    #[error("building the federation HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The gateway side of licensing: cheap to clone, shared by every task.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) mode: Mode,
    pub(crate) catalog: &'static Catalog,
    pub(crate) plugins: Arc<PluginTable>,
    pub(crate) time: Arc<TimeGuard>,
    pub(crate) verifier: Verifier,
    pub(crate) store: Option<StateStore>,
    pub(crate) cache: Cache<TenantKey, TenantHandle>,
    pub(crate) tenants: RwLock<HashMap<TenantKey, TenantHandle>>,
    pub(crate) sources: Vec<Arc<Source>>,
    /// The gateway's own tenant: tier0, the offline license's, or the first credential's.
    pub(crate) default: TenantHandle,
    /// What unknown tenants get.
    pub(crate) unknown: TenantHandle,
    pub(crate) observer: Observer,
    pub(crate) rng: Mutex<fastrand::Rng>,
    /// The offline license (offline mode), re-verified when a revocation list arrives.
    pub(crate) offline: Option<crate::revocations::OfflineLicense>,
    /// When the federation's revocation list is next fetched (federated mode).
    pub(crate) revocations_due: std::sync::atomic::AtomicI64,
    /// A revocation list file re-read while running.
    pub(crate) revocation_file: Option<std::path::PathBuf>,
}

/// Sets a [`Gateway`] up: settings from `gateway.toml`, and the seams tests replace.
pub struct GatewayBuilder {
    settings: Settings,
    clock: Arc<dyn Clock>,
    client: Option<Arc<dyn FederationClient>>,
    extra_credentials: Vec<SecretString>,
    revocation_file: Option<std::path::PathBuf>,
}

impl GatewayBuilder {
    /// A builder for `settings`, with the system clock (read through a [`CoarseClock`]
    /// updated every 100 ms) and the HTTP client.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            clock: CoarseClock::start(Arc::new(SystemClock), CoarseClock::DEFAULT_EVERY),
            client: None,
            extra_credentials: Vec::new(),
            revocation_file: None,
        }
    }

    /// Re-reads this revocation list file while running ([`Gateway::run`], every tick), so
    /// a newer list dropped in place applies without a restart (air-gapped sites).
    pub fn revocation_file(mut self, path: std::path::PathBuf) -> Self {
        self.revocation_file = Some(path);
        self
    }

    /// Uses `clock` for every time decision.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Talks to the federation through `client` instead of HTTP.
    pub fn client(mut self, client: Arc<dyn FederationClient>) -> Self {
        self.client = Some(client);
        self
    }

    /// Federates one more tenant with its own credential (multi-tenant gateways).
    pub fn credential(mut self, credential: SecretString) -> Self {
        self.extra_credentials.push(credential);
        self
    }

    /// Builds the gateway: reads persisted state and the offline license, verifies them.
    /// Makes no network call (the first refresh is [`Gateway::refresh_due`] or
    /// [`Gateway::run`]); in tier0 mode it reads and writes nothing at all.
    pub fn build(self) -> Result<Gateway, StartError> {
        let catalog = Catalog::builtin();
        let Settings {
            mode,
            state_dir,
            mut trust,
            revocation_list,
        } = self.settings;
        let store = match mode {
            ModeSettings::Tier0 => None,
            _ => Some(StateStore::open(&state_dir)?),
        };
        if let Some(store) = &store {
            crate::revocations::apply(store, &mut trust, revocation_list.as_deref())?;
        }
        let floor = store.as_ref().map_or(0, crate::federation::load_max_seen);
        let time = Arc::new(TimeGuard::new(self.clock, floor));
        let plugins = Arc::new(PluginTable::new(catalog));
        let unknown = TenantHandle::new(
            TenantEntitlements::unlicensed(catalog, Reason::NotFederated),
            time.clone(),
            plugins.clone(),
        );
        let verifier = Verifier::new(trust);
        let cache = Cache::builder()
            .max_capacity(CACHE_CAPACITY)
            .expire_after(GraceExpiry { time: time.clone() })
            .build();
        let mut sources = Vec::new();
        let mut offline = None;
        let (config_mode, default, offline_key) = match mode {
            ModeSettings::Tier0 => {
                let tier0 = TenantEntitlements::unlicensed(catalog, Reason::Tier0Only);
                (
                    Mode::Tier0,
                    TenantHandle::new(tier0, time.clone(), plugins.clone()),
                    None,
                )
            }
            ModeSettings::Federated {
                url,
                credential,
                timeout,
            } => {
                let client: Arc<dyn FederationClient> = match self.client {
                    Some(client) => client,
                    None => Arc::new(HttpFederationClient::new(&url, timeout)?),
                };
                for credential in std::iter::once(credential).chain(self.extra_credentials) {
                    let handle = TenantHandle::new(
                        TenantEntitlements::unlicensed(catalog, Reason::NotFederated),
                        time.clone(),
                        plugins.clone(),
                    );
                    sources.push(Arc::new(Source::new(credential, client.clone(), handle)));
                }
                (Mode::Federated, sources[0].handle.clone(), None)
            }
            ModeSettings::Offline {
                license,
                license_path,
                deployment_id,
            } => {
                let (key, entitlements) = crate::offline::load(
                    catalog,
                    &verifier.trust(),
                    &license,
                    &license_path,
                    time.now(),
                    deployment_id.as_deref(),
                )?;
                let handle = TenantHandle::new(entitlements, time.clone(), plugins.clone());
                offline = Some(crate::revocations::OfflineLicense {
                    license,
                    deployment_id,
                });
                (Mode::Offline, handle, Some(key))
            }
        };
        let gateway = Gateway {
            inner: Arc::new(Inner {
                mode: config_mode,
                catalog,
                plugins,
                time,
                verifier,
                store,
                cache,
                tenants: RwLock::new(HashMap::new()),
                sources,
                default,
                unknown,
                observer: Observer::default(),
                rng: Mutex::new(fastrand::Rng::new()),
                offline,
                revocations_due: std::sync::atomic::AtomicI64::new(0),
                revocation_file: self.revocation_file,
            }),
        };
        if let Some(key) = offline_key {
            gateway.register(&key, &gateway.inner.default);
        }
        for source in &gateway.inner.sources {
            gateway.restore(source);
        }
        gateway.tick();
        Ok(gateway)
    }
}

impl Gateway {
    /// The configured mode.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// The catalog index of `plugin`, resolved once so later checks can use
    /// [`TenantHandle::check_index`].
    pub fn plugin_index(&self, plugin: &str) -> Option<crate::entitlements::PluginIndex> {
        self.inner.plugins.resolve(plugin)
    }

    /// The plugin catalog decisions are made against.
    pub fn catalog(&self) -> &'static Catalog {
        self.inner.catalog
    }

    /// Whether `plugin` may load for `tenant`. Synchronous, O(1), allocation-free, no
    /// signature verification: a cache lookup, a bit test and a clock reading.
    #[inline]
    pub fn check(&self, tenant: &TenantKey, plugin: &str) -> Decision {
        if self.inner.mode == Mode::Tier0 {
            return self.inner.default.check(plugin);
        }
        if let Some(handle) = self.inner.cache.get(tenant) {
            return handle.check(plugin);
        }
        // Past its grace bound an entry leaves the cache, but the tenant is still known.
        let tenants = self.inner.tenants.read_or_recover();
        match tenants.get(tenant) {
            Some(handle) => handle.check(plugin),
            None => self.inner.unknown.check(plugin),
        }
    }

    /// Whether `plugin` may load for the gateway's own tenant.
    #[inline]
    pub fn check_default(&self, plugin: &str) -> Decision {
        self.inner.default.check(plugin)
    }

    /// A handle on `tenant`'s entitlements the caller can keep to skip the cache lookup.
    pub fn handle(&self, tenant: &TenantKey) -> Option<TenantHandle> {
        if self.inner.mode == Mode::Tier0 {
            return Some(self.inner.default.clone());
        }
        self.inner.cache.get(tenant).or_else(|| {
            let tenants = self.inner.tenants.read_or_recover();
            tenants.get(tenant).cloned()
        })
    }

    /// The handle of the gateway's own tenant.
    pub fn default_handle(&self) -> TenantHandle {
        self.inner.default.clone()
    }

    /// The gateway's own tenant, once known (federated: after the first good token).
    pub fn default_tenant(&self) -> Option<TenantKey> {
        match self.inner.mode {
            Mode::Tier0 => None,
            Mode::Federated => self.inner.sources.first().and_then(|s| s.tenant()),
            Mode::Offline => {
                let tenants = self.inner.tenants.read_or_recover();
                tenants.keys().next().cloned()
            }
        }
    }

    /// Every known tenant with its handle, sorted by key.
    pub fn tenants(&self) -> Vec<(TenantKey, TenantHandle)> {
        let tenants = self.inner.tenants.read_or_recover();
        let mut list: Vec<_> = tenants
            .iter()
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// Makes `handle` the one answering for `key`, in the map and the cache.
    pub(crate) fn register(&self, key: &TenantKey, handle: &TenantHandle) {
        {
            let mut tenants = self.inner.tenants.write_or_recover();
            tenants.insert(key.clone(), handle.clone());
        }
        // Re-inserting recomputes the entry's expiry from the new grace bound.
        self.inner.cache.insert(key.clone(), handle.clone());
    }

    /// Forgets `key` (its source now serves another tenant).
    pub(crate) fn unregister(&self, key: &TenantKey) {
        self.inner.tenants.write_or_recover().remove(key);
        self.inner.cache.invalidate(key);
    }

    /// How many issuer certificates were verified and cached (one per key id).
    pub fn verified_issuers(&self) -> usize {
        self.inner.verifier.cached_issuers()
    }

    /// How many entries the moka cache holds (after pending maintenance).
    pub fn cached_tenants(&self) -> u64 {
        self.inner.cache.run_pending_tasks();
        self.inner.cache.entry_count()
    }
}

/// Cache entries live until the tenant's grace bound (or the offline license's expiry);
/// Tier-0 and revoked entries do not expire.
struct GraceExpiry {
    time: Arc<TimeGuard>,
}

impl GraceExpiry {
    fn until_end(&self, handle: &TenantHandle) -> Option<Duration> {
        let end = match handle.entitlements().basis() {
            Basis::Federated { grc, .. } => grc,
            Basis::Offline { exp } => exp,
            Basis::Unlicensed { .. } | Basis::Revoked { .. } => return None,
        };
        Some(Duration::from_secs(
            (end - self.time.now()).max(0).unsigned_abs(),
        ))
    }
}

impl Expiry<TenantKey, TenantHandle> for GraceExpiry {
    fn expire_after_create(
        &self,
        _key: &TenantKey,
        value: &TenantHandle,
        _created_at: Instant,
    ) -> Option<Duration> {
        self.until_end(value)
    }

    fn expire_after_update(
        &self,
        _key: &TenantKey,
        value: &TenantHandle,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.until_end(value)
    }
}
