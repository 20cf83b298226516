//! What this binary is: its version and the commit it was built from (stamped by
//! `build.rs`). `GET /version`, `mcpg-auth --version` and the `mcpg_build_info` gauge all
//! read these.

/// The crate version.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit (12 hex digits), `MCPG_BUILD_COMMIT` at build time, or `unknown`.
pub(crate) const COMMIT: &str = env!("MCPG_AUTH_COMMIT");
/// What `mcpg-auth --version` prints after the name.
pub(crate) const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MCPG_AUTH_COMMIT"),
    ")"
);
