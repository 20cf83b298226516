//! Stamps `mcpg-entitlements` with its commit for `--version` (`MCPG_COMMIT`; see
//! `services/runtime/build_commit.rs`).

include!("../runtime/build_commit.rs");

fn main() {
    stamp_commit("MCPG_COMMIT");
}
