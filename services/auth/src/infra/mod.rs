//! The service's machinery: storage, keys and secrets, identity-provider verification,
//! the rate limiter, the audit chain, the token issuer and telemetry. It builds on
//! `domain` and knows nothing of HTTP.

pub(crate) mod audit_chain;
pub(crate) mod certwatch;
pub(crate) mod directory;
pub(crate) mod files;
pub(crate) mod issuer;
pub(crate) mod keyring;
pub(crate) mod limiter;
pub(crate) mod log_budget;
pub(crate) mod oidc;
pub(crate) mod peers;
pub(crate) mod plugin_set_cache;
pub(crate) mod replicas;
pub(crate) mod secrets;
pub(crate) mod store;
pub(crate) mod telemetry;
pub(crate) mod usage_flush;
pub(crate) mod usage_meter;
