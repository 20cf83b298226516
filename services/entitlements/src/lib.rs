//! `mcpg-entitlements`: the licensing side of an MCPG gateway.
//!
//! A gateway runs in one of three modes (`tier0`, `federated`, `offline`, see
//! [`config`]). Federated gateways fetch 24 h tokens from `mcpg-auth`, verify them through
//! the chain root → issuer certificate → token, keep them per tenant in memory and on
//! disk, refresh them at `rfa` with jitter and backoff, and ride out outages until the
//! token's grace bound. Every plugin the gateway loads is gated by [`Gateway::check`]:
//! synchronous, O(1), allocation-free. A token may narrow the plugins further to its
//! workspace's plugin set and carry their configs ([`plugin_sets`]), and limits the
//! gateway enforces ([`limits`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! # let (dir, config) = include!("../doc/offline_gateway.rs");
//! use mcpg_entitlements::{GatewayBuilder, GatewayConfig};
//! // `config`: a gateway.toml (here for an offline Team license made for the example).
//! let file = GatewayConfig::load(&config)?;
//! let gateway = GatewayBuilder::new(file.resolve(dir.path())?).build()?;
//! gateway.refresh_due().await; // federated mode: the first token; here nothing to fetch
//! let decision = gateway.check_default("policy.cedar");
//! assert_eq!(decision.reason.as_str(), "not_entitled");
//! println!("{} ({})", decision.allowed, decision.reason);
//! # Ok(()) }
//! ```
//!
//! docs/GATEWAY.md covers embedding (examples/embed.rs), the sidecar for other languages
//! and what to do for each [`Reason`].

pub mod client;
pub mod config;
pub mod decision;
pub mod entitlements;
pub mod federation;
mod files;
pub mod gateway;
pub mod limits;
pub mod observe;
mod offline;
pub mod plugin_sets;
pub mod plugins;
mod registry;
pub mod report;
mod resume;
pub mod revocations;
pub mod schedule;
pub mod sidecar;
pub mod store;
mod sync;
pub mod tenant;
pub mod time;
pub mod timeline;
pub mod usage;
pub mod verify;

pub use client::{
    Denial, FederationClient, FetchError, FetchFuture, HttpFederationClient, RevocationsFuture,
    TokenResponse,
};
pub use config::{FederatedTenant, GatewayConfig, Mode, ModeSettings, Settings, TenantConfig};
pub use decision::{Decision, Reason, State};
pub use entitlements::{Basis, LicenseDetails, PluginIndex, TenantEntitlements, TenantHandle};
pub use federation::RefreshError;
pub use gateway::{Gateway, GatewayBuilder, StartError};
pub use limits::{LimitDecision, LimitReason, RequestPermit, TIER0_LIMITS};
pub use plugin_sets::{PluginSetRejection, TenantPluginSet};
pub use report::{FederationSnapshot, LedgerSnapshot, Snapshot, TenantSnapshot};
pub use revocations::RevocationError;
pub use tenant::{TenantKey, TenantKeyError};
pub use usage::UsageReport;
pub use verify::{VerifiedToken, Verifier, rejection_code};
