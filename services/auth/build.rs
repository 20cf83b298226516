//! Rebuilds the crate when a migration changes, because `sqlx::migrate!` embeds them, and
//! stamps the build with its commit (`MCPG_AUTH_COMMIT`, read by `domain::build_info`; see
//! `services/runtime/build_commit.rs`).

include!("../runtime/build_commit.rs");

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/sqlite");
    println!("cargo:rerun-if-changed=../../migrations/postgres");
    stamp_commit("MCPG_AUTH_COMMIT");
}
