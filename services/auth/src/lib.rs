//! `mcpg-auth`: the MCPG license federation service.
//!
//! It owns tenants (orgs › workspaces › environments › gateways) and their licenses, and
//! gives gateways 24 h EdDSA entitlement tokens signed by a key whose certificate chains to
//! a pinned root. See `docs/openapi.yaml` for the HTTP API and `docs/ARCHITECTURE.md` for
//! the three layers below, each importing only the ones under it:
//!
//! - `domain`: pure rules and values (slugs, statuses, refusals, credentials, RBAC, the
//!   tenants plan, settings);
//! - `infra`: the machinery (store, keyring, secrets, OIDC verification, limiter, audit
//!   chain, issuer, telemetry);
//! - `http`: routes, extractors, access resolution, errors as responses, middleware,
//!   state, configuration, start-up and the server loop.
//!
//! Only what the binary, the tests and the benchmarks need is public.

mod domain;
mod http;
mod infra;

pub use domain::credential::{Credential, CredentialKind};
pub use domain::settings::{
    ExternalKey, JwksSettings, KekSource, LogFormat, RateLimitSettings, Settings, TenantsFile,
};
pub use http::config::{
    BackupArgs, Cli, Command, ConfigError, DatabaseArgs, RestoreArgs, ServeArgs,
};
pub use http::maintenance::{run_backup, run_restore};
pub use http::startup::Application;
pub use infra::audit_chain::jti_digest;
pub use infra::telemetry::init_tracing;

/// What the audit-chain benchmark (`benches/audit_append.rs`) drives directly: the store,
/// below the HTTP layer. Not an API.
#[doc(hidden)]
pub mod bench {
    pub use crate::domain::{OrgStatus, Slug};
    pub use crate::infra::audit_chain::verify;
    pub use crate::infra::store::{
        Actor, AuditAction, DatabaseOptions, Event, NewOrg, Store, TenantStore,
    };

    /// Reads a usage report as the token path does (`benches/usage_report.rs`): the
    /// number of plugins of a valid report, or why it was ignored.
    pub fn read_usage_report(json: &str) -> Result<usize, &'static str> {
        crate::domain::usage::UsageReport::parse(json)
            .map(|report| report.plugins.len())
            .map_err(|rejection| rejection.outcome())
    }
}
