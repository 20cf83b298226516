//! The [`Gateway`]: built from settings, it ties the federation sources, the offline
//! license and the revocation lists to the registry of tenants, and answers the
//! synchronous `check()` hot path.

use std::sync::{Arc, Mutex};

use mcpg_license_core::{Catalog, Clock, SystemClock};
use secrecy::SecretString;
use thiserror::Error;

use crate::client::{FederationClient, HttpFederationClient};
use crate::config::{Mode, ModeSettings, Settings};
use crate::decision::{Decision, Reason};
use crate::entitlements::{TenantEntitlements, TenantHandle};
use crate::federation::Source;
use crate::registry::{Registry, Slot};
use crate::store::{StateStore, StoreError};
use crate::tenant::TenantKey;
use crate::time::{CoarseClock, TimeGuard};
use crate::verify::Verifier;

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
    /// The offline usage ledger could not be opened or does not verify.
    #[error(transparent)]
    Ledger(#[from] crate::usage::ledger::LedgerError),
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

/// What the gateway's modules share. Tenant state is not here: the [`Registry`] owns it,
/// and every change goes through it.
pub(crate) struct Inner {
    pub(crate) mode: Mode,
    pub(crate) catalog: &'static Catalog,
    pub(crate) time: Arc<TimeGuard>,
    pub(crate) verifier: Verifier,
    pub(crate) store: Option<StateStore>,
    pub(crate) registry: Registry,
    pub(crate) sources: Vec<Arc<Source>>,
    /// The gateway's own slot: tier0's, the offline license's, or the first credential's.
    pub(crate) own: Arc<Slot>,
    pub(crate) rng: Mutex<fastrand::Rng>,
    /// The offline license (offline mode), re-verified when a revocation list arrives.
    pub(crate) offline: Option<crate::revocations::OfflineLicense>,
    /// When the federation's revocation list is next fetched (federated mode).
    pub(crate) revocations_due: std::sync::atomic::AtomicI64,
    /// A revocation list file re-read while running.
    pub(crate) revocation_file: Option<std::path::PathBuf>,
    /// The offline usage ledger, when this process records it (offline mode with a
    /// deployment id, and no other process holding the ledger).
    pub(crate) ledger: Option<Mutex<crate::usage::ledger::Ledger>>,
}

/// Sets a [`Gateway`] up: settings from `gateway.toml`, and the seams tests replace.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # let (dir, config) = include!("../doc/offline_gateway.rs");
/// use mcpg_entitlements::{GatewayBuilder, GatewayConfig, Mode};
///
/// // `config` is the path of a gateway.toml (here: offline mode, a license signed for
/// // the example); relative paths in it are resolved against its directory.
/// let file = GatewayConfig::load(&config)?;
/// let settings = file.resolve(dir.path())?;
/// let gateway = GatewayBuilder::new(settings).build()?;
/// assert_eq!(gateway.mode(), Mode::Offline);
/// assert_eq!(gateway.default_tenant().map(|t| t.to_string()).as_deref(), Some("acme/platform/prod"));
/// # Ok(()) }
/// ```
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
            more_tenants,
        } = self.settings;
        let store = match mode {
            ModeSettings::Tier0 => None,
            _ => Some(StateStore::open(&state_dir)?),
        };
        if let Some(store) = &store {
            crate::revocations::apply(store, &mut trust, revocation_list.as_deref())?;
        }
        let floor = store.as_ref().map_or(0, crate::resume::load_max_seen);
        let time = Arc::new(TimeGuard::new(self.clock, floor));
        let registry = Registry::new(catalog, time.clone());
        let verifier = Verifier::new(trust);
        let mut sources = Vec::new();
        let mut offline = None;
        let mut ledger = None;
        let (config_mode, own) = match mode {
            ModeSettings::Tier0 => {
                let tier0 = TenantEntitlements::unlicensed(catalog, Reason::Tier0Only);
                (Mode::Tier0, registry.slot(tier0))
            }
            ModeSettings::Federated {
                url,
                credential,
                timeout,
            } => {
                let client: Arc<dyn FederationClient> = match &self.client {
                    Some(client) => client.clone(),
                    None => Arc::new(HttpFederationClient::new(&url, timeout)?),
                };
                let mut federate = |credential, client| {
                    let slot = registry.slot(TenantEntitlements::unlicensed(
                        catalog,
                        Reason::NotFederated,
                    ));
                    sources.push(Arc::new(Source::new(credential, client, slot)));
                };
                for credential in std::iter::once(credential).chain(self.extra_credentials) {
                    federate(credential, client.clone());
                }
                // `[[tenant]]` entries after the first: each talks to its own URL.
                for tenant in more_tenants {
                    let client: Arc<dyn FederationClient> = match &self.client {
                        Some(client) => client.clone(),
                        None => Arc::new(HttpFederationClient::new(&tenant.url, tenant.timeout)?),
                    };
                    federate(tenant.credential, client);
                }
                (Mode::Federated, sources[0].slot.clone())
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
                let slot = registry.slot(TenantEntitlements::unlicensed(
                    catalog,
                    Reason::NotFederated,
                ));
                if let (Some(store), Some(deployment)) = (&store, &deployment_id) {
                    ledger = open_ledger(store, deployment, &license, time.now())?;
                }
                registry.set(&slot, &key, entitlements);
                offline = Some(crate::revocations::OfflineLicense {
                    license,
                    deployment_id,
                });
                (Mode::Offline, slot)
            }
        };
        let gateway = Gateway {
            inner: Arc::new(Inner {
                mode: config_mode,
                catalog,
                time,
                verifier,
                store,
                registry,
                sources,
                own,
                rng: Mutex::new(fastrand::Rng::new()),
                offline,
                revocations_due: std::sync::atomic::AtomicI64::new(0),
                revocation_file: self.revocation_file,
                ledger: ledger.map(Mutex::new),
            }),
        };
        for source in &gateway.inner.sources {
            gateway.restore(source);
        }
        gateway.tick();
        Ok(gateway)
    }
}

/// Opens the usage ledger of an offline deployment for recording; `None` when another
/// process records it.
fn open_ledger(
    store: &StateStore,
    deployment_id: &str,
    license: &str,
    now: mcpg_license_core::UnixTime,
) -> Result<Option<crate::usage::ledger::Ledger>, StartError> {
    use mcpg_license_core::{Unverified, decode_unverified};
    // The license verified (or expired) a moment ago; its claims name the entries.
    let Ok(Unverified::OfflineLicense { claims, .. }) = decode_unverified(license) else {
        return Ok(None);
    };
    let identity = crate::usage::ledger::Identity {
        deployment_id: deployment_id.to_owned(),
        org: claims.org.clone(),
        license_id: claims.lic.clone(),
    };
    let ledger = crate::usage::ledger::Ledger::open(store.dir(), identity, now)?;
    if ledger.is_none() {
        tracing::info!(dir = %store.dir().display(), "another process records the usage ledger; this one only reads it");
    }
    Ok(ledger)
}

impl Gateway {
    /// The configured mode.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// The catalog index of `plugin`, resolved once so later checks can use
    /// [`TenantHandle::check_index`].
    pub fn plugin_index(&self, plugin: &str) -> Option<crate::entitlements::PluginIndex> {
        self.inner.registry.plugins().resolve(plugin)
    }

    /// The plugin catalog decisions are made against.
    pub fn catalog(&self) -> &'static Catalog {
        self.inner.catalog
    }

    /// Whether `plugin` may load for `tenant`. Synchronous, O(1), allocation-free, no
    /// lock and no signature verification: an index lookup, a bit test and a clock reading.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # let (dir, config) = include!("../doc/offline_gateway.rs");
    /// # let settings = mcpg_entitlements::GatewayConfig::load(&config)?.resolve(dir.path())?;
    /// # let gateway = mcpg_entitlements::GatewayBuilder::new(settings).build()?;
    /// use mcpg_entitlements::{Reason, State, TenantKey};
    /// use mcpg_license_core::Tier;
    ///
    /// // `gateway` runs on an offline Team license of acme/platform/prod.
    /// let acme = TenantKey::parse("acme/platform/prod")?;
    /// let decision = gateway.check(&acme, "workspace.rbac");
    /// assert!(decision.allowed);
    /// assert_eq!((decision.state, decision.tier), (State::Offline, Tier::Team));
    /// // Enterprise plugins are not in a Team license; unknown ids fail closed.
    /// assert_eq!(gateway.check(&acme, "policy.cedar").reason, Reason::NotEntitled);
    /// assert_eq!(gateway.check(&acme, "polcy.cedar").reason, Reason::UnknownPlugin);
    /// // The gateway's own tenant, without naming it:
    /// assert!(gateway.check_default("identity.apikey").allowed);
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn check(&self, tenant: &TenantKey, plugin: &str) -> Decision {
        if self.inner.mode == Mode::Tier0 {
            return self.inner.own.handle().check(plugin);
        }
        self.inner.registry.check(tenant, plugin)
    }

    /// Whether `plugin` may load for the gateway's own tenant.
    #[inline]
    pub fn check_default(&self, plugin: &str) -> Decision {
        self.inner.own.handle().check(plugin)
    }

    /// A handle on `tenant`'s entitlements the caller can keep to skip the index lookup.
    pub fn handle(&self, tenant: &TenantKey) -> Option<TenantHandle> {
        if self.inner.mode == Mode::Tier0 {
            return Some(self.inner.own.handle().clone());
        }
        self.inner.registry.handle(tenant)
    }

    /// The handle of the gateway's own tenant.
    pub fn default_handle(&self) -> TenantHandle {
        self.inner.own.handle().clone()
    }

    /// The gateway's own tenant, once known (federated: after the first good token).
    pub fn default_tenant(&self) -> Option<TenantKey> {
        self.inner.own.tenant()
    }

    /// Every known tenant with its handle, sorted by key.
    pub fn tenants(&self) -> Vec<(TenantKey, TenantHandle)> {
        self.inner.registry.tenants()
    }

    /// How many issuer certificates were verified and cached (one per key id).
    pub fn verified_issuers(&self) -> usize {
        self.inner.verifier.cached_issuers()
    }
}
