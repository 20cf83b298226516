//! `gateway.toml`: the mode, the state directory, trust roots, federation and offline
//! settings. Unknown keys are rejected; the credential is wrapped so it cannot be logged.
//!
//! A federated gateway names its tenant in one `[federation]` section, or serves several
//! tenants (of one org or of several) with a `[[tenant]]` entry each: a name, the
//! federation's URL and the tenant's credential file. One form or the other, not both.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcpg_license_core::duration::parse_duration;
use mcpg_license_core::{PublicKey, TrustStore};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::files::{MAX_REVOCATION_LIST, MAX_SMALL_FILE, read_text};

pub use mcpg_license_core::keys::VENDOR_ROOTS;

/// The default timeout of one federation request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the gateway gets its entitlements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Tier-0: no federation, no network I/O, free plugins only.
    Tier0,
    /// Tokens from the federation service.
    Federated,
    /// An offline license file (air-gapped sites).
    Offline,
}

/// The `gateway.toml` file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// `tier0`, `federated` or `offline`.
    pub mode: Mode,
    /// Where the last good token and the highest time seen are kept.
    pub state_dir: PathBuf,
    /// Extra root public keys (`k4.public` PASERK or PEM files), added to the vendor roots.
    #[serde(default)]
    pub trusted_roots: Vec<PathBuf>,
    /// A root-signed revocation list (`mcpg-license revoke`): certificates and offline
    /// licenses it names are refused, in grace too. Kept in the state directory; a list
    /// older than one already seen is ignored.
    pub revocation_list: Option<PathBuf>,
    /// Federation settings (mode `federated`, one tenant).
    pub federation: Option<FederationConfig>,
    /// Several federated tenants (mode `federated`), instead of `[federation]`.
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
    /// Offline settings (mode `offline`).
    pub offline: Option<OfflineConfig>,
    /// Log lines as `text` or `json` (`--log-format` wins).
    pub log_format: Option<mcpg_runtime::LogFormat>,
}

/// `[federation]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// The federation's base URL (its issuer).
    pub url: String,
    /// A file holding the gateway credential (`mcpg_gw_…`); should be mode 0600.
    pub credential_file: Option<PathBuf>,
    /// The credential inline (prefer `credential_file`).
    pub credential: Option<SecretString>,
    /// Timeout of one request (`10s`, `1m`); default 10 s.
    pub timeout: Option<String>,
}

/// `[[tenant]]`: one of the tenants a federated gateway serves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// A name for messages and logs, unique in the file.
    pub name: String,
    /// The federation's base URL (its issuer).
    pub url: String,
    /// A file holding this tenant's gateway credential (`mcpg_gw_…`); should be mode 0600.
    pub credential_file: PathBuf,
    /// Timeout of one request (`10s`, `1m`); default 10 s.
    pub timeout: Option<String>,
}

/// A federated tenant, resolved: where to federate and with which credential.
#[derive(Debug)]
pub struct FederatedTenant {
    /// The `[[tenant]]` name (`federation` for the `[federation]` form).
    pub name: String,
    /// Base URL.
    pub url: String,
    /// The gateway credential.
    pub credential: SecretString,
    /// Request timeout.
    pub timeout: Duration,
}

/// `[offline]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineConfig {
    /// The license file (PASETO `v4.public`).
    pub license: PathBuf,
    /// This deployment's id; a license bound to another id is rejected.
    pub deployment_id: Option<String>,
}

/// A configuration that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A setting is missing or wrong.
    #[error("{0}")]
    Invalid(String),
}

/// What the mode needs, resolved (files read, durations parsed).
#[derive(Debug)]
pub enum ModeSettings {
    /// Tier-0.
    Tier0,
    /// Federated.
    Federated {
        /// Base URL.
        url: String,
        /// The gateway credential.
        credential: SecretString,
        /// Request timeout.
        timeout: Duration,
    },
    /// Offline.
    Offline {
        /// The license token.
        license: String,
        /// The license file, for messages.
        license_path: PathBuf,
        /// This deployment's id.
        deployment_id: Option<String>,
    },
}

/// A configuration ready to start a gateway.
#[derive(Debug)]
pub struct Settings {
    /// The mode and its settings.
    pub mode: ModeSettings,
    /// The state directory.
    pub state_dir: PathBuf,
    /// Vendor roots plus configured ones.
    pub trust: TrustStore,
    /// The configured revocation list (PASETO text), applied at start.
    pub revocation_list: Option<String>,
    /// Federated tenants besides the one of [`ModeSettings::Federated`] (the second and
    /// later `[[tenant]]` entries), each with its own URL and credential.
    pub more_tenants: Vec<FederatedTenant>,
}

impl GatewayConfig {
    /// Parses a `gateway.toml` document.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(&read(path)?, path)
    }

    /// Reads the files the mode needs. Relative paths are taken from `base` (the config
    /// file's directory). In tier0 mode no other file is read.
    pub fn resolve(&self, base: &Path) -> Result<Settings, ConfigError> {
        let at = |p: &Path| base.join(p);
        let mut more_tenants = Vec::new();
        let mode = match self.mode {
            Mode::Tier0 => ModeSettings::Tier0,
            Mode::Federated => {
                let mut tenants = self.federated_tenants(base)?.into_iter();
                // `federated_tenants` returns at least one.
                let first = tenants.next().ok_or_else(|| {
                    ConfigError::Invalid("mode = \"federated\" needs a tenant".into())
                })?;
                more_tenants = tenants.collect();
                ModeSettings::Federated {
                    url: first.url,
                    credential: first.credential,
                    timeout: first.timeout,
                }
            }
            Mode::Offline => {
                let off = self.offline.as_ref().ok_or_else(|| {
                    ConfigError::Invalid("mode = \"offline\" needs an [offline] section".into())
                })?;
                let license_path = at(&off.license);
                ModeSettings::Offline {
                    license: read(&license_path)?.trim().to_owned(),
                    license_path,
                    deployment_id: off.deployment_id.clone(),
                }
            }
        };
        let mut trust = vendor_trust_store()?;
        for root in &self.trusted_roots {
            let path = at(root);
            let key = PublicKey::parse_any(read(&path)?.trim()).map_err(|e| {
                ConfigError::Invalid(format!("trusted root {}: {e}", path.display()))
            })?;
            trust.add_root(key);
        }
        let revocation_list = match &self.revocation_list {
            Some(path) => Some(
                read_capped(&at(path), MAX_REVOCATION_LIST)?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        Ok(Settings {
            mode,
            state_dir: at(&self.state_dir),
            trust,
            revocation_list,
            more_tenants,
        })
    }

    /// The federated tenants of either form, in file order: never empty, names unique.
    pub fn federated_tenants(&self, base: &Path) -> Result<Vec<FederatedTenant>, ConfigError> {
        match (&self.federation, self.tenants.as_slice()) {
            (Some(_), [_, ..]) => Err(ConfigError::Invalid(
                "use either a [federation] section (one tenant) or [[tenant]] entries \
                 (several), not both"
                    .into(),
            )),
            (Some(fed), []) => Ok(vec![FederatedTenant {
                name: "federation".into(),
                url: federation_url(&fed.url)?,
                credential: credential(fed, base)?,
                timeout: timeout("federation.timeout", fed.timeout.as_deref())?,
            }]),
            (None, []) => Err(ConfigError::Invalid(
                "mode = \"federated\" needs a [federation] section or [[tenant]] entries".into(),
            )),
            (None, tenants) => {
                check_names(tenants)?;
                tenants.iter().map(|t| t.resolve(base)).collect()
            }
        }
    }
}

impl TenantConfig {
    fn resolve(&self, base: &Path) -> Result<FederatedTenant, ConfigError> {
        let context = |e: ConfigError| match e {
            ConfigError::Invalid(message) => {
                ConfigError::Invalid(format!("[[tenant]] {:?}: {message}", self.name))
            }
            other => other,
        };
        Ok(FederatedTenant {
            name: self.name.clone(),
            url: federation_url(&self.url).map_err(context)?,
            credential: credential_file(&base.join(&self.credential_file)).map_err(context)?,
            timeout: timeout("timeout", self.timeout.as_deref()).map_err(context)?,
        })
    }
}

/// Refuses `[[tenant]]` entries with an empty name or a name used twice.
fn check_names(tenants: &[TenantConfig]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for tenant in tenants {
        let name = tenant.name.trim();
        if name.is_empty() {
            return Err(ConfigError::Invalid(
                "a [[tenant]] entry has an empty name".into(),
            ));
        }
        if !seen.insert(name) {
            return Err(ConfigError::Invalid(format!(
                "[[tenant]] name {name:?} appears more than once; names must be unique"
            )));
        }
    }
    Ok(())
}

/// A request timeout setting (`10s`, `1m`), or the default.
fn timeout(field: &str, value: Option<&str>) -> Result<Duration, ConfigError> {
    match value {
        Some(text) => parse_duration(text)
            .map(|s| Duration::from_secs(s.unsigned_abs()))
            .map_err(|e| ConfigError::Invalid(format!("{field}: {e}"))),
        None => Ok(DEFAULT_TIMEOUT),
    }
}

/// Checks the federation URL: `https://`, or plain `http://` only to a loopback address.
/// Over plain HTTP the credential would travel in clear text and anyone on the path could
/// answer "revoked" for the service.
fn federation_url(url: &str) -> Result<String, ConfigError> {
    let url = url.trim();
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| ConfigError::Invalid(format!("federation.url {url:?}: {e}")))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(url.trim_end_matches('/').to_owned()),
        "http" if loopback => Ok(url.trim_end_matches('/').to_owned()),
        "http" => Err(ConfigError::Invalid(format!(
            "federation.url {url:?} must use https (plain http is accepted only for loopback \
             addresses: the credential would travel in clear text)"
        ))),
        other => Err(ConfigError::Invalid(format!(
            "federation.url {url:?}: unsupported scheme {other:?}, use https"
        ))),
    }
}

/// A trust store with the compiled-in vendor roots.
pub fn vendor_trust_store() -> Result<TrustStore, ConfigError> {
    let roots = mcpg_license_core::keys::vendor_roots()
        .map_err(|e| ConfigError::Invalid(format!("compiled-in vendor root: {e}")))?;
    Ok(TrustStore::new(roots))
}

fn credential(fed: &FederationConfig, base: &Path) -> Result<SecretString, ConfigError> {
    match (&fed.credential, &fed.credential_file) {
        (Some(inline), None) => nonempty(inline.expose_secret().trim().to_owned()),
        (None, Some(file)) => credential_file(&base.join(file)),
        _ => Err(ConfigError::Invalid(
            "[federation] needs exactly one of credential_file and credential".into(),
        )),
    }
}

/// The credential in the file at `path`, warning when others may read the file.
fn credential_file(path: &Path) -> Result<SecretString, ConfigError> {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "credential file is readable by group or others; chmod 600 it");
    }
    nonempty(read(path)?.trim().to_owned())
}

fn nonempty(secret: String) -> Result<SecretString, ConfigError> {
    if secret.is_empty() {
        return Err(ConfigError::Invalid(
            "the gateway credential is empty".into(),
        ));
    }
    Ok(SecretString::from(secret))
}

fn read(path: &Path) -> Result<String, ConfigError> {
    read_capped(path, MAX_SMALL_FILE)
}

fn read_capped(path: &Path, max: u64) -> Result<String, ConfigError> {
    read_text(path, max).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests;
