//! `mcpg-cli`: the command-line tools of MCPG.
//!
//! - [`ctl`]: `mcpg-ctl`, the operator CLI over the `mcpg-auth` management API.
//! - [`license`]: `mcpg-license`, offline signing (keys, offline licenses, issuer
//!   certificates, verification, inspection, JWKS).
//!
//! Shared pieces live beside them: [`files`] (reading keys and tokens, writing secrets
//! with mode 0600 without clobbering), [`ids`] (random license and certificate ids) and
//! [`render`] (human and JSON output).

/// `--version` of both binaries: the package version and the commit built.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MCPG_COMMIT"),
    ")"
);

pub mod ctl;
pub mod files;
pub mod ids;
pub mod license;
pub mod render;
