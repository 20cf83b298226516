//! The settings the service runs with, as plain data: what the flags, environment and
//! config file resolve to (`http::config`), and what the lower layers are built from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::domain::tenants_file::DEFAULT_MAX_OBJECTS;

/// Default listen address.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8421";
/// Default address of the operations listener (metrics, probes, version): loopback, since
/// its metrics name every org.
pub(crate) const DEFAULT_OPS_LISTEN: &str = "127.0.0.1:8422";
/// Default data directory.
pub(crate) const DEFAULT_DATA_DIR: &str = "./mcpg-data";

pub use mcpg_runtime::log::LogFormat;

/// Where the key-encryption key comes from.
#[derive(Debug, Clone)]
pub enum KekSource {
    /// A file holding 64 hex characters.
    File(PathBuf),
    /// The value of `MCPG_KEK`.
    Inline(SecretString),
    /// `<data-dir>/kek`, generated when missing.
    DataDir,
}

/// A key certified by an offline root, as files.
#[derive(Debug, Clone)]
pub struct ExternalKey {
    /// The secret key file.
    pub signing_key: PathBuf,
    /// The passphrase file of a sealed key, when given (else the systemd credential).
    pub passphrase_file: Option<PathBuf>,
    /// The certificate files, primary first (one per root that certifies the key).
    pub certificates: Vec<PathBuf>,
}

/// The resolved settings the service runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address of the API (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Listen address of the operations endpoints: `/metrics`, `/healthz`, `/readyz`,
    /// `/version` (port 0 picks a free port).
    pub ops_listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL; `None` means SQLite at `<data-dir>/mcpg.db`.
    pub database_url: Option<SecretString>,
    /// PostgreSQL owner URL for migrations.
    pub migrate_database_url: Option<SecretString>,
    /// PostgreSQL URL of the cross-tenant role; `None`: the owner's.
    pub global_database_url: Option<SecretString>,
    /// Accept an owner or superuser service connection (development only).
    pub allow_owner_connection: bool,
    /// Request rate limits.
    pub rate_limits: RateLimitSettings,
    /// Host suffix of subdomain routing (`mcpg.dev`: `acme.mcpg.dev` → org `acme`).
    pub subdomain_suffix: Option<String>,
    /// Issuer URL, without a trailing slash; `None`: `http://` and the bound API address
    /// (see [`Settings::issuer_for`]).
    pub issuer: Option<String>,
    /// Where to write the bootstrap token at first start; `None` prints it to stdout.
    pub bootstrap_token_file: Option<PathBuf>,
    /// An externally certified signing key; `None` runs on a development root.
    pub external_key: Option<ExternalKey>,
    /// Root public key files trusted besides the compiled-in vendor roots.
    pub trusted_roots: Vec<PathBuf>,
    /// The key-encryption key's source.
    pub kek: KekSource,
    /// Delay between publishing a new key and signing with it.
    pub key_publish_delay: Duration,
    /// How often keys are reloaded from the database.
    pub key_reload_interval: Duration,
    /// How often this replica refreshes its heartbeat row and reads how many replicas are
    /// alive (a row expires after three missed beats); the cluster-wide rate limits are
    /// divided by that count.
    pub heartbeat_interval: Duration,
    /// TTL of the credential → grant cache.
    pub grant_cache_ttl: Duration,
    /// How often moved audit heads are signed as checkpoints.
    pub audit_checkpoint_interval: Duration,
    /// How long a deleted org's archive is kept (readable and restorable) before the
    /// purge job removes it.
    pub retention: Duration,
    /// How often the purge job looks for archives past their retention (not a flag:
    /// tests shorten it).
    pub archive_purge_interval: Duration,
    /// How long usage is kept per day; older days are rolled up into months.
    pub usage_retention: Duration,
    /// How often the usage counted on the token path is written to the database (not a
    /// flag: tests shorten it).
    pub usage_flush_interval: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Concurrency limit before load shedding.
    pub max_in_flight: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// The tenants file to reconcile, if any.
    pub tenants: Option<TenantsFile>,
    /// Most objects a tenants document may declare (see `tenants::bounds`).
    pub tenants_max_objects: usize,
    /// Operator login through the orgs' OIDC providers: key cache and URL rules.
    pub oidc: JwksSettings,
}

/// Rate-limit settings; 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Requests per second per org when its license sets no `rps`.
    pub org_rps: u32,
    /// Requests per second per global admin token on cross-tenant routes.
    pub admin_rps: u32,
    /// Share (1-100 %) of its org's management rate one principal may use.
    pub principal_percent: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            org_rps: 100,
            admin_rps: 20,
            principal_percent: 50,
        }
    }
}

/// How the key cache behaves.
#[derive(Debug, Clone, Copy)]
pub struct JwksSettings {
    /// How long a fetched key set is used before it is fetched again.
    pub ttl: Duration,
    /// The shortest time between two fetches of one `jwks_uri` caused by unknown key ids.
    pub refetch_interval: Duration,
    /// Timeout of one fetch.
    pub fetch_timeout: Duration,
    /// Accept plain `http://` URLs on loopback addresses (tests, local development).
    pub allow_loopback: bool,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(600),
            refetch_interval: Duration::from_secs(60),
            fetch_timeout: Duration::from_secs(5),
            allow_loopback: false,
        }
    }
}

/// The file to reconcile and how.
#[derive(Debug, Clone)]
pub struct TenantsFile {
    /// Path.
    pub path: PathBuf,
    /// Delete managed objects the file no longer names.
    pub prune: bool,
    /// Poll interval.
    pub interval: Duration,
}

impl Settings {
    /// Defaults with the given data directory (used by tests and as the base of `resolve`).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8421))),
            ops_listen: DEFAULT_OPS_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8422))),
            data_dir: data_dir.into(),
            database_url: None,
            migrate_database_url: None,
            global_database_url: None,
            allow_owner_connection: false,
            rate_limits: RateLimitSettings::default(),
            subdomain_suffix: None,
            issuer: None,
            bootstrap_token_file: None,
            external_key: None,
            trusted_roots: Vec::new(),
            kek: KekSource::DataDir,
            key_publish_delay: Duration::from_secs(600),
            key_reload_interval: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(2),
            grant_cache_ttl: Duration::from_secs(5),
            audit_checkpoint_interval: Duration::from_secs(3_600),
            retention: Duration::from_secs(30 * 86_400),
            archive_purge_interval: Duration::from_secs(3_600),
            usage_retention: Duration::from_secs(400 * 86_400),
            usage_flush_interval: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_in_flight: 1024,
            log_format: LogFormat::Text,
            tenants: None,
            tenants_max_objects: DEFAULT_MAX_OBJECTS,
            oidc: JwksSettings::default(),
        }
    }

    /// The issuer URL the service runs as once its API listener is bound to `bound`: the
    /// configured one, else `http://` and the address actually bound, so that a token's
    /// `iss` and the metadata document never name a port the service is not on (port 0
    /// gives the port the system picked).
    pub fn issuer_for(&self, bound: SocketAddr) -> String {
        match &self.issuer {
            Some(issuer) => issuer.clone(),
            None => format!("http://{bound}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_defaults_to_the_bound_address() {
        let mut settings = Settings::with_data_dir("/tmp/unused");
        let bound = SocketAddr::from(([127, 0, 0, 1], 40_123));
        assert_eq!(settings.issuer_for(bound), "http://127.0.0.1:40123");
        let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 8421));
        assert_eq!(settings.issuer_for(v6), "http://[::1]:8421");
        settings.issuer = Some("https://auth.example".into());
        assert_eq!(settings.issuer_for(bound), "https://auth.example");
    }
}
