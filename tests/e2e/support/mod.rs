//! What the scenarios share: finding (and if need be building) the binaries, child
//! processes killed on drop, the service with `mcpg-ctl`, gateways run through
//! `mcpg-entitlements`, and `mcpg-license` key ceremonies.

pub mod bins;
pub mod gateway;
pub mod license;
pub mod postgres;
pub mod process;
pub mod service;

pub use gateway::Gateway;
pub use license::Signer;
pub use service::Service;
