//! Configuration: built-in defaults, then an optional TOML file (`--config`), then
//! `MCPG_*` environment variables and flags (clap gives flags precedence over env).
//! Unknown TOML keys are rejected. Secrets are wrapped in [`SecretString`] so they cannot
//! be logged by accident.

mod file;
mod flags;
mod resolve;

use std::path::PathBuf;
use std::time::Duration;

use mcpg_license_core::duration::parse_duration;
use thiserror::Error;

pub use flags::{BackupArgs, Cli, Command, DatabaseArgs, RestoreArgs, ServeArgs};

use crate::domain::settings::{DEFAULT_DATA_DIR, Settings};
use file::{FileConfig, read_file};

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

impl Settings {
    /// Merges defaults, the TOML file named by `args.config`, and flags/env.
    pub fn resolve(mut args: ServeArgs) -> Result<Self, ConfigError> {
        let mut file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let mut settings = Self::with_data_dir(
            args.database
                .data_dir
                .take()
                .or(file.data_dir.take())
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
        );
        // The steps run in this order, so the first invalid setting reported stays the same.
        settings.resolve_network_and_database(&mut args, &mut file);
        settings.resolve_rates(&args, &file)?;
        settings.resolve_addressing(&mut args, &mut file)?;
        settings.resolve_keys(&mut args, &mut file)?;
        let mut oidc = file.oidc.take().unwrap_or_default();
        settings.resolve_oidc(&args, &oidc);
        settings.resolve_durations(&mut args, &mut file, &mut oidc)?;
        settings.resolve_serving(&args, &file)?;
        settings.resolve_tenants(&mut args, &mut file)?;
        Ok(settings)
    }
}

impl Settings {
    /// The settings of `backup` and `restore`: the database flags over the TOML file's
    /// database keys, resolved as `serve` resolves them (the other settings keep their
    /// defaults, and an invalid file is an error here too).
    pub fn resolve_database(
        database: DatabaseArgs,
        config: Option<PathBuf>,
    ) -> Result<Self, ConfigError> {
        Self::resolve(ServeArgs {
            database,
            config,
            ..ServeArgs::default()
        })
    }
}

/// How often the tenants file is polled by default.
const DEFAULT_TENANTS_POLL: Duration = Duration::from_secs(1);

/// A duration setting such as `10s` or `5m` (the sign of a negative one is dropped).
fn duration(name: &'static str, text: &str) -> Result<Duration, ConfigError> {
    let seconds = parse_duration(text).map_err(|e| ConfigError::Value {
        name,
        message: e.to_string(),
    })?;
    Ok(Duration::from_secs(seconds.unsigned_abs()))
}

fn positive_duration(name: &'static str, text: &str) -> Result<Duration, ConfigError> {
    match parse_duration(text) {
        Ok(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds.unsigned_abs())),
        Ok(_) => Err(ConfigError::Value {
            name,
            message: "must be at least 1s".into(),
        }),
        Err(e) => Err(ConfigError::Value {
            name,
            message: e.to_string(),
        }),
    }
}

/// Checks an issuer URL and removes a trailing slash.
pub(crate) fn parse_issuer(text: &str) -> Result<String, ConfigError> {
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
        assert_eq!(settings.issuer.as_deref(), Some("https://auth.example"));
        assert_eq!(settings.key_publish_delay, Duration::from_secs(2));
        assert_eq!(settings.listen.port(), 9000);
    }

    #[test]
    fn the_ops_listener_comes_from_the_flags_else_the_file_else_loopback() {
        let dir = tempfile::tempdir().expect("tempdir");
        let defaults = Settings::resolve(ServeArgs::default()).expect("valid");
        assert_eq!(defaults.ops_listen.to_string(), "127.0.0.1:8422");
        assert_eq!(defaults.issuer, None, "derived from the bound address");
        let path = dir.path().join("auth.toml");
        std::fs::write(&path, "ops_listen = \"0.0.0.0:9100\"\n").expect("write");
        let from_file = Settings::resolve(ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .expect("valid");
        assert_eq!(from_file.ops_listen.to_string(), "0.0.0.0:9100");
        let from_flag = Settings::resolve(ServeArgs {
            config: Some(path),
            ops_listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..ServeArgs::default()
        })
        .expect("valid");
        assert_eq!(from_flag.ops_listen.port(), 0);
    }

    #[test]
    fn trusted_roots_come_from_the_flags_else_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.toml");
        std::fs::write(&path, "trusted_roots = [\"/etc/mcpg/a.paserk\"]\n").expect("write");
        let from_file = Settings::resolve(ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .expect("valid");
        assert_eq!(
            from_file.trusted_roots,
            [PathBuf::from("/etc/mcpg/a.paserk")]
        );
        let from_flags = Settings::resolve(ServeArgs {
            config: Some(path),
            trusted_roots: vec!["b.paserk".into(), "c.paserk".into()],
            ..ServeArgs::default()
        })
        .expect("valid");
        assert_eq!(from_flags.trusted_roots.len(), 2);
    }

    #[test]
    fn the_oidc_section_sets_the_key_cache_and_loopback_rule() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.toml");
        std::fs::write(
            &path,
            "[oidc]\nallow_loopback = true\njwks_ttl = \"5m\"\njwks_refetch_interval = \"30s\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let settings = Settings::resolve(args).expect("valid");
        assert!(settings.oidc.allow_loopback);
        assert_eq!(settings.oidc.ttl, Duration::from_secs(300));
        assert_eq!(settings.oidc.refetch_interval, Duration::from_secs(30));
        let defaults = Settings::with_data_dir(dir.path());
        assert!(!defaults.oidc.allow_loopback, "https only unless asked");
        assert!(toml::from_str::<FileConfig>("[oidc]\nallow_http = true\n").is_err());
    }

    #[test]
    fn the_tenants_file_comes_from_toml_or_flags_with_a_positive_poll_interval() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.toml");
        std::fs::write(
            &path,
            "tenants = \"/etc/mcpg/tenants.yaml\"\ntenants_poll_interval = \"5s\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path.clone()),
            tenants_prune: true,
            ..ServeArgs::default()
        };
        let tenants = Settings::resolve(args)
            .expect("valid")
            .tenants
            .expect("a tenants file");
        assert_eq!(tenants.path, PathBuf::from("/etc/mcpg/tenants.yaml"));
        assert_eq!(tenants.interval, Duration::from_secs(5));
        assert!(tenants.prune);
        std::fs::write(
            &path,
            "tenants = \"t.yaml\"\ntenants_poll_interval = \"0s\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        assert!(Settings::resolve(args).is_err());
    }

    #[test]
    fn the_heartbeat_interval_comes_from_toml_or_flags_and_is_positive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.toml");
        std::fs::write(&path, "heartbeat_interval = \"5s\"\n").expect("write");
        let from_file = Settings::resolve(ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .expect("valid");
        assert_eq!(from_file.heartbeat_interval, Duration::from_secs(5));
        let defaults = Settings::resolve(ServeArgs::default()).expect("valid");
        assert_eq!(defaults.heartbeat_interval, Duration::from_secs(2));
        let zero = ServeArgs {
            config: Some(path),
            heartbeat_interval: Some("0s".into()),
            ..ServeArgs::default()
        };
        assert!(Settings::resolve(zero).is_err());
    }

    #[test]
    fn the_retention_defaults_to_30_days_and_comes_from_toml_or_flags() {
        let defaults = Settings::resolve(ServeArgs::default()).expect("valid");
        assert_eq!(defaults.retention, Duration::from_secs(30 * 86_400));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.toml");
        std::fs::write(&path, "retention = \"90d\"\n").expect("write");
        let from_file = Settings::resolve(ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .expect("valid");
        assert_eq!(from_file.retention, Duration::from_secs(90 * 86_400));
        let flag = Settings::resolve(ServeArgs {
            config: Some(path),
            retention: Some("7d".into()),
            ..ServeArgs::default()
        })
        .expect("valid");
        assert_eq!(flag.retention, Duration::from_secs(7 * 86_400));
        let bad = ServeArgs {
            retention: Some("soon".into()),
            ..ServeArgs::default()
        };
        assert!(Settings::resolve(bad).is_err());
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
