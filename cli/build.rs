//! Stamps `mcpg-ctl` and `mcpg-license` with their commit for `--version` (`MCPG_COMMIT`;
//! see `services/runtime/build_commit.rs`).

include!("../services/runtime/build_commit.rs");

fn main() {
    stamp_commit("MCPG_COMMIT");
}
