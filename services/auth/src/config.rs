//! Configuration: built-in defaults, then an optional TOML file (`--config`), then
//! `MCPG_*` environment variables and flags (clap gives flags precedence over env).
//! Unknown TOML keys are rejected. Secrets are wrapped in [`SecretString`] so they cannot
//! be logged by accident.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mcpg_license_core::duration::parse_duration;
use secrecy::SecretString;
use serde::Deserialize;
use thiserror::Error;

use crate::ratelimit::RateLimitSettings;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8421";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./mcpg-data";

/// `mcpg-auth`: the MCPG license federation service.
#[derive(Debug, Parser)]
#[command(name = "mcpg-auth", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (creates the data directory, database, keys and bootstrap token on first start).
    Serve(ServeArgs),
}

/// Flags of `serve`. Every flag also reads the `MCPG_*` variable named in its help.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8421].
    #[arg(long, env = "MCPG_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database, development root, KEK [default: ./mcpg-data].
    #[arg(long, env = "MCPG_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://PATH` or `postgres://…` [default: sqlite in the data dir].
    /// On PostgreSQL, a role that owns nothing and has neither SUPERUSER nor BYPASSRLS.
    #[arg(long, env = "MCPG_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PostgreSQL URL of the schema owner: runs migrations and grants the service's role.
    #[arg(long, env = "MCPG_MIGRATE_DATABASE_URL", hide_env_values = true)]
    pub migrate_database_url: Option<String>,
    /// Development only: let --database-url be an owner or superuser (and migrate with it).
    #[arg(long, env = "MCPG_ALLOW_OWNER_CONNECTION")]
    pub allow_owner_connection: bool,
    /// Requests per second per org when its license sets no `rps`; 0: unlimited [default: 100].
    #[arg(long, env = "MCPG_ORG_RPS")]
    pub org_rps: Option<u32>,
    /// Requests per second per global admin token on /v1/admin/… and /v1/orgs; 0: unlimited
    /// [default: 20].
    #[arg(long, env = "MCPG_ADMIN_RPS")]
    pub admin_rps: Option<u32>,
    /// Subdomain routing: with `mcpg.dev`, a request to `acme.mcpg.dev` is for the org
    /// `acme`, and a path naming another org is 403 tenant_mismatch (TOML:
    /// `[tenancy.subdomain_routing] suffix = "mcpg.dev"`) [default: off].
    #[arg(long, env = "MCPG_SUBDOMAIN_SUFFIX")]
    pub subdomain_suffix: Option<String>,
    /// TOML configuration file (keys as the long flags, with `_` for `-`).
    #[arg(long, env = "MCPG_CONFIG")]
    pub config: Option<PathBuf>,
    /// Public base URL of this service: `iss` of every token [default: http://127.0.0.1:8421].
    #[arg(long, env = "MCPG_ISSUER")]
    pub issuer: Option<String>,
    /// At first start, write the bootstrap admin token to this file (0600) instead of stdout.
    #[arg(long, env = "MCPG_BOOTSTRAP_TOKEN_FILE")]
    pub bootstrap_token_file: Option<PathBuf>,
    /// Signing key certified by an offline root (PASERK k4.secret or PEM); needs --certificate.
    #[arg(long, env = "MCPG_SIGNING_KEY", requires = "certificate")]
    pub signing_key: Option<PathBuf>,
    /// Issuer certificate (PASETO v4.public) of --signing-key.
    #[arg(long, env = "MCPG_CERTIFICATE", requires = "signing_key")]
    pub certificate: Option<PathBuf>,
    /// File holding the 32-byte key-encryption key (64 hex chars) that seals signing keys at
    /// rest. The variable MCPG_KEK may hold the key itself. Default: `<data-dir>/kek`,
    /// generated on first start.
    #[arg(long, env = "MCPG_KEK_FILE")]
    pub kek_file: Option<PathBuf>,
    /// How long a new key is published before it signs, e.g. 10m [default: 10m].
    #[arg(long, env = "MCPG_KEY_PUBLISH_DELAY")]
    pub key_publish_delay: Option<String>,
    /// How often each replica reloads keys from the database, e.g. 30s [default: 30s].
    #[arg(long, env = "MCPG_KEY_RELOAD_INTERVAL")]
    pub key_reload_interval: Option<String>,
    /// How long a gateway's credential → org/license lookup is cached, e.g. 5s [default: 5s].
    #[arg(long, env = "MCPG_GRANT_CACHE_TTL")]
    pub grant_cache_ttl: Option<String>,
    /// Per-request timeout, e.g. 10s [default: 10s].
    #[arg(long, env = "MCPG_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,
    /// Requests handled at once before new ones get 503 [default: 1024].
    #[arg(long, env = "MCPG_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,
    /// Log format: `text` or `json` [default: text]. Filter with MCPG_LOG (e.g. `info`).
    #[arg(long, env = "MCPG_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[tenancy]` of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenancyFile {
    subdomain_routing: Option<SubdomainRoutingFile>,
}

/// `[tenancy.subdomain_routing]`: `enabled` (default true) and `suffix`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubdomainRoutingFile {
    #[serde(default)]
    enabled: Option<bool>,
    suffix: String,
}

/// The TOML file: the same settings as the flags, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    tenancy: Option<TenancyFile>,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    migrate_database_url: Option<String>,
    allow_owner_connection: Option<bool>,
    org_rps: Option<u32>,
    admin_rps: Option<u32>,
    issuer: Option<String>,
    bootstrap_token_file: Option<PathBuf>,
    signing_key: Option<PathBuf>,
    certificate: Option<PathBuf>,
    kek_file: Option<PathBuf>,
    key_publish_delay: Option<String>,
    key_reload_interval: Option<String>,
    grant_cache_ttl: Option<String>,
    request_timeout: Option<String>,
    max_in_flight: Option<usize>,
    log_format: Option<LogFormat>,
}

/// A host suffix such as `mcpg.dev`: lowercase DNS labels, no leading or trailing dot.
fn parse_suffix(text: &str) -> Result<String, ConfigError> {
    let suffix = text.trim().to_ascii_lowercase();
    let valid = !suffix.is_empty()
        && suffix.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(suffix)
    } else {
        Err(ConfigError::Value {
            name: "subdomain_suffix",
            message: format!("{text:?} is not a host suffix like mcpg.dev"),
        })
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid setting {name}: {message}")]
    Value {
        /// The setting.
        name: &'static str,
        /// Why.
        message: String,
    },
}

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
    /// The certificate file.
    pub certificate: PathBuf,
}

/// The resolved settings the service runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL; `None` means SQLite at `<data-dir>/mcpg.db`.
    pub database_url: Option<SecretString>,
    /// PostgreSQL owner URL for migrations.
    pub migrate_database_url: Option<SecretString>,
    /// Accept an owner or superuser service connection (development only).
    pub allow_owner_connection: bool,
    /// Request rate limits.
    pub rate_limits: RateLimitSettings,
    /// Host suffix of subdomain routing (`mcpg.dev`: `acme.mcpg.dev` → org `acme`).
    pub subdomain_suffix: Option<String>,
    /// Issuer URL, without a trailing slash.
    pub issuer: String,
    /// Where to write the bootstrap token at first start; `None` prints it to stdout.
    pub bootstrap_token_file: Option<PathBuf>,
    /// An externally certified signing key; `None` runs on a development root.
    pub external_key: Option<ExternalKey>,
    /// The key-encryption key's source.
    pub kek: KekSource,
    /// Delay between publishing a new key and signing with it.
    pub key_publish_delay: Duration,
    /// How often keys are reloaded from the database.
    pub key_reload_interval: Duration,
    /// TTL of the credential → grant cache.
    pub grant_cache_ttl: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Concurrency limit before load shedding.
    pub max_in_flight: usize,
    /// Log format.
    pub log_format: LogFormat,
}

impl Settings {
    /// Defaults with the given data directory (used by tests and as the base of `resolve`).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8421))),
            data_dir: data_dir.into(),
            database_url: None,
            migrate_database_url: None,
            allow_owner_connection: false,
            rate_limits: RateLimitSettings::default(),
            subdomain_suffix: None,
            issuer: "http://127.0.0.1:8421".to_owned(),
            bootstrap_token_file: None,
            external_key: None,
            kek: KekSource::DataDir,
            key_publish_delay: Duration::from_secs(600),
            key_reload_interval: Duration::from_secs(30),
            grant_cache_ttl: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_in_flight: 1024,
            log_format: LogFormat::Text,
        }
    }

    /// Merges defaults, the TOML file named by `args.config`, and flags/env.
    pub fn resolve(args: ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let mut settings = Self::with_data_dir(
            args.data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
        );
        if let Some(listen) = args.listen.or(file.listen) {
            settings.listen = listen;
        }
        settings.database_url = args
            .database_url
            .or(file.database_url)
            .map(SecretString::from);
        settings.migrate_database_url = args
            .migrate_database_url
            .or(file.migrate_database_url)
            .map(SecretString::from);
        settings.allow_owner_connection =
            args.allow_owner_connection || file.allow_owner_connection.unwrap_or(false);
        if let Some(rps) = args.org_rps.or(file.org_rps) {
            settings.rate_limits.org_rps = rps;
        }
        if let Some(rps) = args.admin_rps.or(file.admin_rps) {
            settings.rate_limits.admin_rps = rps;
        }
        let from_file = file
            .tenancy
            .and_then(|t| t.subdomain_routing)
            .filter(|r| r.enabled.unwrap_or(true))
            .map(|r| r.suffix);
        settings.subdomain_suffix = args
            .subdomain_suffix
            .or(from_file)
            .map(|suffix| parse_suffix(&suffix))
            .transpose()?;
        if let Some(issuer) = args.issuer.or(file.issuer) {
            settings.issuer = parse_issuer(&issuer)?;
        }
        settings.bootstrap_token_file = args.bootstrap_token_file.or(file.bootstrap_token_file);
        settings.external_key = match (
            args.signing_key.or(file.signing_key),
            args.certificate.or(file.certificate),
        ) {
            (Some(signing_key), Some(certificate)) => Some(ExternalKey {
                signing_key,
                certificate,
            }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Value {
                    name: "signing_key",
                    message: "signing_key and certificate must be given together".into(),
                });
            }
        };
        settings.kek = match (
            args.kek_file.or(file.kek_file),
            std::env::var("MCPG_KEK").ok(),
        ) {
            (Some(path), _) => KekSource::File(path),
            (None, Some(value)) => KekSource::Inline(SecretString::from(value)),
            (None, None) => KekSource::DataDir,
        };
        let durations = [
            (
                args.key_publish_delay.or(file.key_publish_delay),
                "key_publish_delay",
            ),
            (
                args.key_reload_interval.or(file.key_reload_interval),
                "key_reload_interval",
            ),
            (
                args.grant_cache_ttl.or(file.grant_cache_ttl),
                "grant_cache_ttl",
            ),
            (
                args.request_timeout.or(file.request_timeout),
                "request_timeout",
            ),
        ];
        for (value, name) in durations {
            let Some(text) = value else { continue };
            let seconds = parse_duration(&text).map_err(|e| ConfigError::Value {
                name,
                message: e.to_string(),
            })?;
            let duration = Duration::from_secs(seconds.unsigned_abs());
            match name {
                "key_publish_delay" => settings.key_publish_delay = duration,
                "key_reload_interval" => settings.key_reload_interval = duration,
                "grant_cache_ttl" => settings.grant_cache_ttl = duration,
                _ => settings.request_timeout = duration,
            }
        }
        if let Some(max) = args.max_in_flight.or(file.max_in_flight) {
            if max == 0 {
                return Err(ConfigError::Value {
                    name: "max_in_flight",
                    message: "must be at least 1".into(),
                });
            }
            settings.max_in_flight = max;
        }
        settings.log_format = args.log_format.or(file.log_format).unwrap_or_default();
        Ok(settings)
    }
}

/// Checks an issuer URL and removes a trailing slash.
pub fn parse_issuer(text: &str) -> Result<String, ConfigError> {
    let trimmed = text.trim().trim_end_matches('/');
    let ok = (trimmed.starts_with("https://") || trimmed.starts_with("http://"))
        && trimmed.len() > "https://".len()
        && !trimmed
            .chars()
            .any(|c| c.is_whitespace() || c == '?' || c == '#');
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(ConfigError::Value {
            name: "issuer",
            message: format!("{text:?} is not an http(s) URL without query or fragment"),
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_in_the_config_file_are_rejected() {
        let error = toml::from_str::<FileConfig>("listen = \"127.0.0.1:1\"\nlisten_addr = 3\n");
        assert!(error.is_err());
    }

    #[test]
    fn the_file_fills_what_flags_leave_unset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.toml");
        std::fs::write(
            &path,
            "issuer = \"https://auth.example/\"\nkey_publish_delay = \"2s\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:9000".parse().expect("addr")),
            ..ServeArgs::default()
        };
        let settings = Settings::resolve(args).expect("valid");
        assert_eq!(settings.issuer, "https://auth.example");
        assert_eq!(settings.key_publish_delay, Duration::from_secs(2));
        assert_eq!(settings.listen.port(), 9000);
    }

    #[test]
    fn issuers_must_be_http_urls() {
        assert!(parse_issuer("ftp://x").is_err());
        assert!(parse_issuer("https://a.example/?q").is_err());
        assert_eq!(
            parse_issuer("http://a:1/").ok().as_deref(),
            Some("http://a:1")
        );
    }
}
