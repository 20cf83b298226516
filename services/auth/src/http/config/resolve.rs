//! The steps of [`Settings::resolve`], one per group of settings. Each takes its values
//! from the flags (or their `MCPG_*` variables), else from the TOML file, checks them and
//! sets them; a value given in neither place keeps its default.

use std::time::Duration;

use secrecy::SecretString;

use super::file::{FileConfig, OidcFile, OneOrMany};
use super::flags::ServeArgs;
use super::{
    ConfigError, DEFAULT_TENANTS_POLL, duration, parse_issuer, parse_suffix, positive_duration,
};
use crate::domain::settings::{ExternalKey, KekSource, Settings, TenantsFile};

impl Settings {
    /// Listen addresses and database connections.
    pub(super) fn resolve_network_and_database(
        &mut self,
        args: &mut ServeArgs,
        file: &mut FileConfig,
    ) {
        if let Some(listen) = args.listen.or(file.listen) {
            self.listen = listen;
        }
        if let Some(ops_listen) = args.ops_listen.or(file.ops_listen) {
            self.ops_listen = ops_listen;
        }
        self.database_url = args
            .database
            .database_url
            .take()
            .or(file.database_url.take())
            .map(SecretString::from);
        self.migrate_database_url = args
            .database
            .migrate_database_url
            .take()
            .or(file.migrate_database_url.take())
            .map(SecretString::from);
        self.global_database_url = args
            .global_database_url
            .take()
            .or(file.global_database_url.take())
            .map(SecretString::from);
        self.allow_owner_connection =
            args.allow_owner_connection || file.allow_owner_connection.unwrap_or(false);
    }

    /// Request rates per org, per admin token and per principal.
    pub(super) fn resolve_rates(
        &mut self,
        args: &ServeArgs,
        file: &FileConfig,
    ) -> Result<(), ConfigError> {
        if let Some(rps) = args.org_rps.or(file.org_rps) {
            self.rate_limits.org_rps = rps;
        }
        if let Some(rps) = args.admin_rps.or(file.admin_rps) {
            self.rate_limits.admin_rps = rps;
        }
        if let Some(percent) = args.principal_rps_percent.or(file.principal_rps_percent) {
            if !(1..=100).contains(&percent) {
                return Err(ConfigError::Value {
                    name: "principal_rps_percent",
                    message: "must be 1 to 100".into(),
                });
            }
            self.rate_limits.principal_percent = percent;
        }
        Ok(())
    }

    /// How the service is addressed: subdomain routing and the issuer URL.
    pub(super) fn resolve_addressing(
        &mut self,
        args: &mut ServeArgs,
        file: &mut FileConfig,
    ) -> Result<(), ConfigError> {
        // A `[tenancy.subdomain_routing]` table with `enabled = false` counts as unset.
        let from_file = file
            .tenancy
            .take()
            .and_then(|t| t.subdomain_routing)
            .filter(|r| r.enabled.unwrap_or(true))
            .map(|r| r.suffix);
        self.subdomain_suffix = args
            .subdomain_suffix
            .take()
            .or(from_file)
            .map(|suffix| parse_suffix(&suffix))
            .transpose()?;
        if let Some(issuer) = args.issuer.take().or(file.issuer.take()) {
            self.issuer = Some(parse_issuer(&issuer)?);
        }
        Ok(())
    }

    /// Secrets and trust: the bootstrap token file, an external signing key with its
    /// certificates, trusted roots and the key-encryption key.
    pub(super) fn resolve_keys(
        &mut self,
        args: &mut ServeArgs,
        file: &mut FileConfig,
    ) -> Result<(), ConfigError> {
        self.bootstrap_token_file = args
            .bootstrap_token_file
            .take()
            .or(file.bootstrap_token_file.take());
        let passphrase_file = args
            .signing_key_passphrase_file
            .take()
            .or(file.signing_key_passphrase_file.take());
        // A list from the flags replaces the file's (they are not merged).
        let certificates = if args.certificate.is_empty() {
            file.certificate
                .take()
                .map(OneOrMany::into_vec)
                .unwrap_or_default()
        } else {
            std::mem::take(&mut args.certificate)
        };
        let signing_key = args.signing_key.take().or(file.signing_key.take());
        self.external_key = match (signing_key, certificates) {
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
        self.trusted_roots = if args.trusted_roots.is_empty() {
            file.trusted_roots.take().unwrap_or_default()
        } else {
            std::mem::take(&mut args.trusted_roots)
        };
        self.kek = match (
            args.kek_file.take().or(file.kek_file.take()),
            std::env::var("MCPG_KEK").ok(),
        ) {
            (Some(path), _) => KekSource::File(path),
            (None, Some(value)) => KekSource::Inline(SecretString::from(value)),
            (None, None) => KekSource::DataDir,
        };
        Ok(())
    }

    /// OpenID Connect settings other than durations (those are in [`Self::resolve_durations`]).
    pub(super) fn resolve_oidc(&mut self, args: &ServeArgs, oidc: &OidcFile) {
        self.oidc.allow_loopback = args.oidc_allow_loopback || oidc.allow_loopback.unwrap_or(false);
    }

    /// Every duration setting but the tenants poll interval (which must be positive; so
    /// must the heartbeat interval, resolved at the end). Each
    /// row pairs a setting's name (for errors) and value with the field it sets, so a new
    /// duration needs a row of its own: there is no default arm for it to fall into.
    pub(super) fn resolve_durations(
        &mut self,
        args: &mut ServeArgs,
        file: &mut FileConfig,
        oidc: &mut OidcFile,
    ) -> Result<(), ConfigError> {
        let durations: [(&'static str, Option<String>, &mut Duration); 9] = [
            (
                "oidc_jwks_ttl",
                args.oidc_jwks_ttl.take().or(oidc.jwks_ttl.take()),
                &mut self.oidc.ttl,
            ),
            (
                "oidc_jwks_refetch_interval",
                args.oidc_jwks_refetch_interval
                    .take()
                    .or(oidc.jwks_refetch_interval.take()),
                &mut self.oidc.refetch_interval,
            ),
            (
                "key_publish_delay",
                args.key_publish_delay
                    .take()
                    .or(file.key_publish_delay.take()),
                &mut self.key_publish_delay,
            ),
            (
                "key_reload_interval",
                args.key_reload_interval
                    .take()
                    .or(file.key_reload_interval.take()),
                &mut self.key_reload_interval,
            ),
            (
                "grant_cache_ttl",
                args.grant_cache_ttl.take().or(file.grant_cache_ttl.take()),
                &mut self.grant_cache_ttl,
            ),
            (
                "request_timeout",
                args.request_timeout.take().or(file.request_timeout.take()),
                &mut self.request_timeout,
            ),
            (
                "header_read_timeout",
                args.header_read_timeout
                    .take()
                    .or(file.header_read_timeout.take()),
                &mut self.header_read_timeout,
            ),
            (
                "audit_checkpoint_interval",
                args.audit_checkpoint_interval
                    .take()
                    .or(file.audit_checkpoint_interval.take()),
                &mut self.audit_checkpoint_interval,
            ),
            (
                "retention",
                args.retention.take().or(file.retention.take()),
                &mut self.retention,
            ),
        ];
        for (name, value, field) in durations {
            if let Some(text) = value {
                *field = duration(name, &text)?;
            }
        }
        if let Some(text) = args.usage_retention.take().or(file.usage_retention.take()) {
            let retention = duration("usage_retention", &text)?;
            if retention < std::time::Duration::from_secs(86_400) {
                return Err(ConfigError::Value {
                    name: "usage_retention",
                    message: "must be at least 1d".into(),
                });
            }
            self.usage_retention = retention;
        }
        let heartbeat = args.heartbeat_interval.take();
        if let Some(text) = heartbeat.or(file.heartbeat_interval.take()) {
            self.heartbeat_interval = positive_duration("heartbeat_interval", &text)?;
        }
        Ok(())
    }

    /// Serving limits and logging: requests in flight and the log format.
    pub(super) fn resolve_serving(
        &mut self,
        args: &ServeArgs,
        file: &FileConfig,
    ) -> Result<(), ConfigError> {
        if let Some(max) = args.max_in_flight.or(file.max_in_flight) {
            self.max_in_flight = at_least_one("max_in_flight", max)?;
        }
        self.log_format = args.log_format.or(file.log_format).unwrap_or_default();
        Ok(())
    }

    /// The tenants file to reconcile, and the size of a tenants document.
    pub(super) fn resolve_tenants(
        &mut self,
        args: &mut ServeArgs,
        file: &mut FileConfig,
    ) -> Result<(), ConfigError> {
        if let Some(max) = args.tenants_max_objects.or(file.tenants_max_objects) {
            self.tenants_max_objects = at_least_one("tenants_max_objects", max)?;
        }
        self.tenants = match args.tenants.take().or(file.tenants.take()) {
            Some(path) => Some(TenantsFile {
                path,
                prune: args.tenants_prune || file.tenants_prune.unwrap_or(false),
                interval: match args
                    .tenants_poll_interval
                    .take()
                    .or(file.tenants_poll_interval.take())
                {
                    Some(text) => positive_duration("tenants_poll_interval", &text)?,
                    None => DEFAULT_TENANTS_POLL,
                },
            }),
            None => None,
        };
        Ok(())
    }
}

/// A count that must be at least 1.
fn at_least_one(name: &'static str, value: usize) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(ConfigError::Value {
            name,
            message: "must be at least 1".into(),
        });
    }
    Ok(value)
}
