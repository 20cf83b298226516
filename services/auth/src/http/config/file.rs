//! The TOML configuration file (`--config`): the same settings as the flags, all optional,
//! unknown keys rejected.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::domain::settings::LogFormat;
use crate::infra::files::{MAX_CONFIG_FILE, read_text};

/// `[tenancy]` of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TenancyFile {
    pub(super) subdomain_routing: Option<SubdomainRoutingFile>,
}

/// `[tenancy.subdomain_routing]`: `enabled` (default true) and `suffix`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubdomainRoutingFile {
    #[serde(default)]
    pub(super) enabled: Option<bool>,
    pub(super) suffix: String,
}

/// `[oidc]` of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OidcFile {
    pub(super) allow_loopback: Option<bool>,
    pub(super) jwks_ttl: Option<String>,
    pub(super) jwks_refetch_interval: Option<String>,
}

/// The TOML file: the same settings as the flags, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) tenancy: Option<TenancyFile>,
    pub(super) oidc: Option<OidcFile>,
    pub(super) listen: Option<SocketAddr>,
    pub(super) ops_listen: Option<SocketAddr>,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) database_url: Option<String>,
    pub(super) migrate_database_url: Option<String>,
    pub(super) global_database_url: Option<String>,
    pub(super) allow_owner_connection: Option<bool>,
    pub(super) org_rps: Option<u32>,
    pub(super) admin_rps: Option<u32>,
    pub(super) principal_rps_percent: Option<u32>,
    pub(super) issuer: Option<String>,
    pub(super) bootstrap_token_file: Option<PathBuf>,
    pub(super) signing_key: Option<PathBuf>,
    pub(super) signing_key_passphrase_file: Option<PathBuf>,
    pub(super) certificate: Option<OneOrMany>,
    pub(super) trusted_roots: Option<Vec<PathBuf>>,
    pub(super) kek_file: Option<PathBuf>,
    pub(super) key_publish_delay: Option<String>,
    pub(super) key_reload_interval: Option<String>,
    pub(super) heartbeat_interval: Option<String>,
    pub(super) grant_cache_ttl: Option<String>,
    pub(super) audit_checkpoint_interval: Option<String>,
    pub(super) retention: Option<String>,
    pub(super) usage_retention: Option<String>,
    pub(super) request_timeout: Option<String>,
    pub(super) header_read_timeout: Option<String>,
    pub(super) max_in_flight: Option<usize>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) tenants: Option<PathBuf>,
    pub(super) tenants_prune: Option<bool>,
    pub(super) tenants_poll_interval: Option<String>,
    pub(super) tenants_max_objects: Option<usize>,
}

/// A path, or a list of paths (`certificate = "a.cert"` or `certificate = ["a", "b"]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    /// One path.
    One(PathBuf),
    /// Several.
    Many(Vec<PathBuf>),
}

impl OneOrMany {
    /// The paths, in order.
    pub(super) fn into_vec(self) -> Vec<PathBuf> {
        match self {
            OneOrMany::One(path) => vec![path],
            OneOrMany::Many(paths) => paths,
        }
    }
}

/// Reads and parses the `--config` file.
pub(super) fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = read_text(path, MAX_CONFIG_FILE).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}
