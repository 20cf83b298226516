//! Building and running the service: `Application::build(settings)` binds the API and
//! operations listeners and prepares everything (data dir, database, keys, bootstrap
//! token); `run_until_stopped` serves both until SIGTERM/SIGINT, letting in-flight
//! requests finish.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mcpg_license_core::{
    Clock, PublicKey, SigningKey, SystemClock, Unverified, decode_unverified, keys::vendor_roots,
};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::domain::credential::{Credential, CredentialKind};
use crate::domain::settings::Settings;
use crate::domain::settings::TenantsFile;
use crate::http::api::{RequestGuards, ops_service, service};
use crate::http::denials::DenialLog;
use crate::http::state::{AppState, ServiceInfo, SharedState};
use crate::http::tasks::{
    spawn_archive_purger, spawn_checkpointer, spawn_housekeeping, spawn_issuance_flusher,
    spawn_key_reloader, spawn_metrics_upkeep, spawn_usage_flusher, spawn_usage_roll_up,
};
use crate::http::tenants_status::TenantsStatus;
use crate::http::tenants_watch;
use crate::infra::certwatch::ExpiryWatch;
use crate::infra::directory::Directory;
use crate::infra::files::{MAX_KEY_FILE, read_text};
use crate::infra::issuer::Issuer;
use crate::infra::keyring::{ConfiguredKey, Keyring, RootOrigin, cluster_dev_root};
use crate::infra::limiter::{Limiter, spawn_pruner};
use crate::infra::oidc::OidcVerifier;
use crate::infra::peers::{PeerListener, PeerStatus};
use crate::infra::plugin_set_cache::PluginSetCache;
use crate::infra::replicas::{AliveCount, Heartbeat, spawn_heartbeat};
use crate::infra::secrets::{self, DEV_ROOT_PUBLIC, Kek, write_secret_file};
use crate::infra::store::{Change, DatabaseOptions, Store};
use crate::infra::telemetry;
use crate::infra::usage_flush::UsageFlusher;
use crate::infra::usage_meter::UsageMeter;
use mcpg_runtime::serve::{ServeOptions, serve};

/// A built, bound service.
pub struct Application {
    listener: TcpListener,
    port: u16,
    ops_listener: TcpListener,
    ops_port: u16,
    state: AppState,
    guards: RequestGuards,
    key_reload_interval: Duration,
    tenants: Option<(TenantsFile, Option<[u8; 32]>)>,
    checkpoint_interval: Duration,
    archive_purge_interval: Duration,
}

impl Application {
    /// Prepares the data directory, database, keys and bootstrap token, and binds.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with an injected clock (tests jump days ahead with it).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let now = clock.now();
        // Bind both listeners first: a start that cannot listen (port taken, no
        // permission) must fail before it spends the one-time bootstrap token or generates
        // any key.
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let ops_listener = TcpListener::bind(settings.ops_listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (the operations listener, --ops-listen)",
                    settings.ops_listen
                )
            })?;
        let bound = listener.local_addr()?;
        let issuer = settings.issuer_for(bound);
        if settings.issuer.is_none() && bound.ip().is_unspecified() {
            tracing::warn!(
                issuer = %issuer,
                "no --issuer: tokens name {issuer}, which gateways elsewhere cannot reach; set --issuer to the service's public URL"
            );
        }
        create_data_dir(&settings.data_dir)?;
        let store = open_store(&settings).await?;
        let kek = Kek::load(&settings.kek, &settings.data_dir)?;
        let (root, external, root_kids) = signing_identity(&settings, &store, &kek, now).await?;
        let publish_delay =
            i64::try_from(settings.key_publish_delay.as_secs()).unwrap_or(i64::MAX / 4);
        let keyring = Arc::new(Keyring::new(
            store.clone(),
            kek,
            issuer.clone(),
            root,
            trusted_roots(&settings.trusted_roots)?,
            publish_delay,
        ));
        keyring
            .initialize(external, now)
            .await
            .context("cannot prepare the signing keys")?;
        issue_bootstrap_token(&store, settings.bootstrap_token_file.as_deref(), now).await?;
        let state = shared_state(&settings, issuer, store, keyring, root_kids, clock, bound)?;
        let tenants = match settings.tenants {
            Some(file) => {
                let applied = tenants_watch::apply_at_start(&state, &file)
                    .await
                    .with_context(|| {
                        format!("cannot apply the tenants file {}", file.path.display())
                    })?;
                Some((file, applied))
            }
            None => None,
        };
        let ops_port = ops_listener.local_addr()?.port();
        Ok(Self {
            listener,
            port: bound.port(),
            ops_listener,
            ops_port,
            state,
            guards: RequestGuards {
                timeout: settings.request_timeout,
                max_in_flight: settings.max_in_flight,
                header_read_timeout: settings.header_read_timeout,
            },
            key_reload_interval: settings.key_reload_interval,
            tenants,
            checkpoint_interval: settings.audit_checkpoint_interval,
            archive_purge_interval: settings.archive_purge_interval,
        })
    }

    /// The bound port of the API.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bound port of the operations listener (`/metrics`, probes, version).
    pub fn ops_port(&self) -> u16 {
        self.ops_port
    }

    /// The issuer URL the service runs as: `--issuer`, else `http://` and the bound API
    /// address.
    pub fn issuer(&self) -> &str {
        &self.state.info.issuer_url
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests and flushes buffers.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then drains in-flight requests and flushes buffers.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // The first beat before serving, so the limits are divided from the first request.
        self.state.heartbeat.beat(&self.state.store).await;
        let mut tasks = vec![
            spawn_heartbeat(self.state.heartbeat.clone(), self.state.store.clone()),
            spawn_key_reloader(self.state.clone(), self.key_reload_interval),
            spawn_housekeeping(self.state.clone()),
            spawn_pruner(self.state.limiter.clone()),
            spawn_issuance_flusher(self.state.clone()),
            spawn_usage_roll_up(self.state.clone()),
            spawn_checkpointer(self.state.clone(), self.checkpoint_interval),
            spawn_archive_purger(self.state.clone(), self.archive_purge_interval),
            spawn_metrics_upkeep(self.state.metrics.clone()),
            tokio::spawn(
                self.state
                    .issuer
                    .directory()
                    .clone()
                    .keep_current(self.state.store.clone()),
            ),
        ];
        let usage_flusher = spawn_usage_flusher(self.state.clone());
        let peers = PeerListener::spawn(self.state.store.clone(), self.state.peers.clone());
        if let Some((file, applied)) = self.tenants {
            tasks.push(tenants_watch::spawn(self.state.clone(), file, applied));
        }
        tracing::info!(
            port = self.port,
            ops_port = self.ops_port,
            issuer = %self.state.info.issuer_url,
            "mcpg-auth listening"
        );
        let app = service(self.state.clone(), self.guards);
        let ops = ops_service(self.state.clone(), self.guards);
        // Every request in flight ends within the request timeout (the guard cuts it off):
        // past that and a second more, what is still open is a client that stopped
        // sending, and shutdown does not wait for it.
        let options = ServeOptions {
            header_read_timeout: self.guards.header_read_timeout,
            drain: self.guards.timeout + Duration::from_secs(1),
        };
        // One stop for both listeners: `stop` flips the flag, each server loop waits for it.
        let (stopping, stopped) = watch::channel(false);
        let signal = async move {
            stop.await;
            let _ = stopping.send(true);
        };
        tokio::join!(
            signal,
            serve(self.listener, app, stop_requested(stopped.clone()), options),
            serve(self.ops_listener, ops, stop_requested(stopped), options),
        );
        for task in tasks {
            task.abort();
        }
        {
            // A flush in progress holds drained counts: let it finish, then stop the task
            // and wait until it is gone while the flusher is still held (an aborted task
            // runs on until its next await, and could start a flush as soon as the lock
            // is released).
            let _paused = self.state.usage_flusher.pause().await;
            usage_flusher.abort();
            let _ = usage_flusher.await;
        }
        if let Some(peers) = peers {
            peers.stop().await;
        }
        self.state.heartbeat.leave(&self.state.store).await;
        if let Err(error) = self.state.issuer.flush_issued(self.state.now()).await {
            tracing::warn!(error = %error, "could not record issued tokens in the audit chain at shutdown");
        }
        if let Err(error) = self.state.issuer.flush_seen().await {
            tracing::warn!(error = %error, "could not flush gateway activity at shutdown");
        }
        if let Err(error) = self.state.flush_usage().await {
            tracing::warn!(error = %error, "could not flush usage at shutdown");
        }
        self.state.store.close().await;
        tracing::info!("mcpg-auth stopped");
        Ok(())
    }
}

fn create_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    Ok(())
}

/// Creates the default SQLite database file empty with mode 0600 when it does not exist yet
/// (SQLite gives its `-wal` and `-shm` files the database file's mode). The directory is
/// 0700 already; the file holds credential hashes and the encrypted signing keys.
fn create_private_file(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => {
            Err(error).with_context(|| format!("cannot create the database {}", path.display()))
        }
    }
}

/// The compiled-in vendor roots plus the `--trusted-root` files.
fn trusted_roots(files: &[std::path::PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    let mut roots = vendor_roots().context("the compiled-in vendor root does not parse")?;
    for path in files {
        let text = read_text(path, MAX_KEY_FILE)
            .with_context(|| format!("cannot read trusted root {}", path.display()))?;
        let root = PublicKey::parse_any(text.trim())
            .with_context(|| format!("trusted root {} is not a public key", path.display()))?;
        roots.push(root);
    }
    Ok(roots)
}

fn announce_dev_root(root: &SigningKey, origin: RootOrigin, public_path: &Path) {
    let what = match origin {
        RootOrigin::Generated => "GENERATED A DEVELOPMENT ROOT (stored in the database)",
        RootOrigin::Adopted => {
            "STORED THIS DATA DIRECTORY'S DEVELOPMENT ROOT IN THE DATABASE FOR EVERY REPLICA"
        }
        RootOrigin::Stored => "USING THE DATABASE'S DEVELOPMENT ROOT",
    };
    tracing::warn!(
        root_kid = %root.kid(),
        public_key_file = %public_path.display(),
        "!!! {what} — FOR DEVELOPMENT ONLY: tokens from this service are trusted only by gateways that list {} in trusted_roots; production uses --signing-key/--certificate from an offline root !!!",
        public_path.display()
    );
}

async fn issue_bootstrap_token(store: &Store, file: Option<&Path>, now: i64) -> anyhow::Result<()> {
    if store.bootstrap_token_issued().await? {
        return Ok(());
    }
    let credential = Credential::generate(CredentialKind::ApiToken)?;
    // With a file, the token is on disk (0600, synced) before its row commits, so a full
    // disk or a bad path fails the start without burning the one-time bootstrap token.
    let staged = match file {
        Some(path) => Some(stage_bootstrap_file(path, &credential)?),
        None => None,
    };
    let stored = store
        .insert_bootstrap_token(
            &credential.hash().to_hex(),
            credential.display_prefix(),
            now,
        )
        .await;
    let stored = match stored {
        Ok(stored) => stored,
        Err(error) => {
            if let Some(staged) = &staged {
                let _ = std::fs::remove_file(staged);
            }
            return Err(error.into());
        }
    };
    match (file, staged) {
        (Some(_), Some(staged)) if !stored => {
            let _ = std::fs::remove_file(&staged);
        }
        (Some(path), Some(staged)) => {
            publish_bootstrap_file(&staged, path)?;
            tracing::warn!(path = %path.display(), "bootstrap admin token written (mode 0600)");
        }
        _ if stored => {
            tracing::warn!("bootstrap admin token printed once on standard output; store it now");
            println!(
                "mcpg-auth bootstrap admin token (shown once): {}",
                credential.expose()
            );
        }
        _ => {}
    }
    Ok(())
}

/// Writes the token next to `path` under a temporary name (refusing to go on if `path`
/// already exists: it may hold a token someone relies on).
fn stage_bootstrap_file(path: &Path, credential: &Credential) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let mut staged_name = std::ffi::OsString::from(".");
    staged_name.push(name);
    staged_name.push(format!(".{}.tmp", std::process::id()));
    let staged = path.with_file_name(staged_name);
    let _ = std::fs::remove_file(&staged);
    write_secret_file(&staged, format!("{}\n", credential.expose()).as_bytes())
        .context("cannot write the bootstrap token file")?;
    Ok(staged)
}

/// Moves the staged token file to `path`. If that fails the token is still in the staged
/// file, and the error says where.
fn publish_bootstrap_file(staged: &Path, path: &Path) -> anyhow::Result<()> {
    let kept = || {
        format!(
            "the bootstrap admin token was issued but could not be moved to {}; it is in {} (mode 0600)",
            path.display(),
            staged.display()
        )
    };
    if path.exists() {
        anyhow::bail!("{}: {} already exists", kept(), path.display());
    }
    std::fs::rename(staged, path).with_context(kept)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Completes once the flag is set (or its sender is gone).
async fn stop_requested(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

/// Opens the database the settings name (SQLite in the data directory by default, its
/// file created private first) and migrates it.
async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let database = DatabaseOptions {
        url: settings.database_url.as_ref(),
        migrate_url: settings.migrate_database_url.as_ref(),
        global_url: settings.global_database_url.as_ref(),
        allow_owner_connection: settings.allow_owner_connection,
    };
    let sqlite_path = settings.data_dir.join("mcpg.db");
    if settings.database_url.is_none() {
        create_private_file(&sqlite_path)?;
    }
    Store::connect(&database, &sqlite_path)
        .await
        .context("cannot open the database")
}

/// Who signs: a key certified by offline roots (`--signing-key`, `--certificate`), or the
/// database's development root (shared by every replica on it) that certifies the
/// service's own keys. Returns the development root (if any), the configured key (if any)
/// and the kids of the roots that certify the service's keys.
async fn signing_identity(
    settings: &Settings,
    store: &Store,
    kek: &Kek,
    now: i64,
) -> anyhow::Result<(Option<SigningKey>, Option<ConfiguredKey>, Vec<String>)> {
    let Some(files) = &settings.external_key else {
        let (root, origin) = cluster_dev_root(store, kek, &settings.data_dir, now)
            .await
            .context("cannot prepare the development root")?;
        announce_dev_root(&root, origin, &settings.data_dir.join(DEV_ROOT_PUBLIC));
        let kid = root.kid().to_string();
        return Ok((Some(root), None, vec![kid]));
    };
    let key =
        secrets::read_external_signing_key(&files.signing_key, files.passphrase_file.as_deref())?;
    let mut certificates = Vec::with_capacity(files.certificates.len());
    let mut root_kids = Vec::new();
    for file in &files.certificates {
        let certificate = read_text(file, MAX_KEY_FILE)
            .with_context(|| format!("cannot read certificate {}", file.display()))?
            .trim()
            .to_owned();
        let root_kid = match decode_unverified(&certificate) {
            Ok(Unverified::Certificate { root_kid, .. }) => root_kid,
            _ => anyhow::bail!("{} is not an issuer certificate", file.display()),
        };
        if !root_kids.contains(&root_kid) {
            root_kids.push(root_kid);
        }
        certificates.push((certificate, file.display().to_string()));
    }
    Ok((None, Some(ConfiguredKey { key, certificates }), root_kids))
}

/// The state every handler shares, around the opened store and the initialised keyring.
fn shared_state(
    settings: &Settings,
    issuer_url: String,
    store: Store,
    keyring: Arc<Keyring>,
    root_kids: Vec<String>,
    clock: Arc<dyn Clock>,
    listen: std::net::SocketAddr,
) -> anyhow::Result<AppState> {
    let alive = Arc::new(AliveCount::new());
    let heartbeat = Arc::new(Heartbeat::new(
        listen,
        settings.heartbeat_interval,
        alive.clone(),
    ));
    // The recorder first: the issuer and the directory register their metric handles once.
    let metrics = telemetry::metrics_handle();
    let limiter = Arc::new(Limiter::new(settings.rate_limits, alive));
    let peers = Arc::new(PeerStatus::for_store(&store));
    let plugin_sets = Arc::new(PluginSetCache::default());
    let directory = Directory::new(&store, peers.clone(), plugin_sets.clone());
    let issuer = Arc::new(Issuer::new(
        store.clone(),
        keyring.clone(),
        issuer_url.clone(),
        settings.grant_cache_ttl,
        limiter.clone(),
        directory,
        plugin_sets,
    ));
    let oidc = Arc::new(
        OidcVerifier::new(settings.oidc)
            .context("cannot build the OIDC key fetcher's HTTP client")?,
    );
    // A changed OIDC setting may name another key set; whoever verifies next fetches it.
    let verifier = Arc::downgrade(&oidc);
    store.changes().subscribe(move |changes| {
        let oidc_changed = changes
            .iter()
            .any(|c| matches!(c, Change::Oidc { .. } | Change::All));
        if let Some(verifier) = verifier.upgrade().filter(|_| oidc_changed) {
            verifier.jwks().forget_all();
        }
    });
    Ok(AppState::new(SharedState {
        peers,
        store,
        keyring,
        issuer,
        limiter,
        heartbeat,
        info: Arc::new(ServiceInfo {
            issuer_url,
            root_kids,
            subdomain_suffix: settings.subdomain_suffix.clone(),
            tenants_max_objects: settings.tenants_max_objects,
            grant_cache_ttl: settings.grant_cache_ttl,
            retention: settings.retention,
            usage_retention: settings.usage_retention,
            usage_flush_interval: settings.usage_flush_interval,
        }),
        metrics,
        clock,
        oidc,
        tenants: Arc::new(TenantsStatus::default()),
        expiry_watch: Arc::new(ExpiryWatch::default()),
        denials: Arc::new(DenialLog::default()),
        usage: Arc::new(UsageMeter::default()),
        usage_flusher: Arc::new(UsageFlusher::default()),
        console: Arc::default(),
    }))
}
