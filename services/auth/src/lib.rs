//! `mcpg-auth`: the MCPG license federation service.
//!
//! It owns tenants (orgs › workspaces › environments › gateways) and their licenses, and
//! gives gateways 24 h EdDSA entitlement tokens signed by a key whose certificate chains to
//! a pinned root. See `docs/openapi.yaml` for the HTTP API.

pub mod access;
pub mod api;
pub mod audit;
pub mod certwatch;
pub mod config;
pub mod credential;
pub mod domain;
pub mod error;
pub mod extract;
mod files;
pub mod issuer;
pub mod keyring;
pub mod oidc;
pub mod ratelimit;
pub mod rbac;
pub mod secrets;
pub mod serve;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tenants;

pub use config::Settings;
pub use startup::Application;
