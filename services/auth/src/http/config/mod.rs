//! Configuration: built-in defaults, then an optional TOML file (`--config`), then
//! `MCPG_*` environment variables and flags (clap gives flags precedence over env).
//! Unknown TOML keys are rejected. Secrets are wrapped in [`SecretString`] so they cannot
//! be logged by accident.

mod file;
mod flags;

use std::path::PathBuf;
use std::time::Duration;

use mcpg_license_core::duration::parse_duration;
use secrecy::SecretString;
use thiserror::Error;

pub use flags::{Cli, Command, ServeArgs};

use crate::domain::settings::TenantsFile;
use crate::domain::settings::{DEFAULT_DATA_DIR, ExternalKey, KekSource, Settings};
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
        settings.global_database_url = args
            .global_database_url
            .or(file.global_database_url)
            .map(SecretString::from);
        settings.allow_owner_connection =
            args.allow_owner_connection || file.allow_owner_connection.unwrap_or(false);
        if let Some(rps) = args.org_rps.or(file.org_rps) {
            settings.rate_limits.org_rps = rps;
        }
        if let Some(rps) = args.admin_rps.or(file.admin_rps) {
            settings.rate_limits.admin_rps = rps;
        }
        if let Some(percent) = args.principal_rps_percent.or(file.principal_rps_percent) {
            if !(1..=100).contains(&percent) {
                return Err(ConfigError::Value {
                    name: "principal_rps_percent",
                    message: "must be 1 to 100".into(),
                });
            }
            settings.rate_limits.principal_percent = percent;
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
        let passphrase_file = args
            .signing_key_passphrase_file
            .or(file.signing_key_passphrase_file);
        let certificates = if args.certificate.is_empty() {
            file.certificate
                .map(file::OneOrMany::into_vec)
                .unwrap_or_default()
        } else {
            args.certificate
        };
        settings.external_key = match (args.signing_key.or(file.signing_key), certificates) {
            (Some(signing_key), certificates) if !certificates.is_empty() => Some(ExternalKey {
                signing_key,
                passphrase_file,
                certificates,
            }),
            (None, certificates) if certificates.is_empty() && passphrase_file.is_some() => {
                return Err(ConfigError::Value {
                    name: "signing_key_passphrase_file",
                    message: "signing_key_passphrase_file is the passphrase of a sealed signing_key, and no signing_key is given".into(),
                });
            }
            (None, certificates) if certificates.is_empty() => None,
            _ => {
                return Err(ConfigError::Value {
                    name: "signing_key",
                    message: "signing_key and certificate must be given together".into(),
                });
            }
        };
        settings.trusted_roots = if args.trusted_roots.is_empty() {
            file.trusted_roots.unwrap_or_default()
        } else {
            args.trusted_roots
        };
        settings.kek = match (
            args.kek_file.or(file.kek_file),
            std::env::var("MCPG_KEK").ok(),
        ) {
            (Some(path), _) => KekSource::File(path),
            (None, Some(value)) => KekSource::Inline(SecretString::from(value)),
            (None, None) => KekSource::DataDir,
        };
        let oidc = file.oidc.unwrap_or_default();
        settings.oidc.allow_loopback =
            args.oidc_allow_loopback || oidc.allow_loopback.unwrap_or(false);
        let durations = [
            (args.oidc_jwks_ttl.or(oidc.jwks_ttl), "oidc_jwks_ttl"),
            (
                args.oidc_jwks_refetch_interval
                    .or(oidc.jwks_refetch_interval),
                "oidc_jwks_refetch_interval",
            ),
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
            (
                args.header_read_timeout.or(file.header_read_timeout),
                "header_read_timeout",
            ),
            (
                args.audit_checkpoint_interval
                    .or(file.audit_checkpoint_interval),
                "audit_checkpoint_interval",
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
                "audit_checkpoint_interval" => settings.audit_checkpoint_interval = duration,
                "oidc_jwks_ttl" => settings.oidc.ttl = duration,
                "oidc_jwks_refetch_interval" => settings.oidc.refetch_interval = duration,
                "header_read_timeout" => settings.header_read_timeout = duration,
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
        if let Some(max) = args.tenants_max_objects.or(file.tenants_max_objects) {
            if max == 0 {
                return Err(ConfigError::Value {
                    name: "tenants_max_objects",
                    message: "must be at least 1".into(),
                });
            }
            settings.tenants_max_objects = max;
        }
        settings.tenants = match args.tenants.or(file.tenants) {
            Some(path) => Some(TenantsFile {
                path,
                prune: args.tenants_prune || file.tenants_prune.unwrap_or(false),
                interval: match args.tenants_poll_interval.or(file.tenants_poll_interval) {
                    Some(text) => positive_duration("tenants_poll_interval", &text)?,
                    None => DEFAULT_TENANTS_POLL,
                },
            }),
            None => None,
        };
        Ok(settings)
    }
}

/// How often the tenants file is polled by default.
const DEFAULT_TENANTS_POLL: Duration = Duration::from_secs(1);

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
        assert_eq!(settings.issuer, "https://auth.example");
        assert_eq!(settings.key_publish_delay, Duration::from_secs(2));
        assert_eq!(settings.listen.port(), 9000);
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
    fn issuers_must_be_http_urls() {
        assert!(parse_issuer("ftp://x").is_err());
        assert!(parse_issuer("https://a.example/?q").is_err());
        assert_eq!(
            parse_issuer("http://a:1/").ok().as_deref(),
            Some("http://a:1")
        );
    }
}
