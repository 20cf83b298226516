//! Where the binaries under test are: next to this test executable (`target/<profile>/`),
//! where `cargo test --workspace` builds them. `env!("CARGO_BIN_EXE_…")` only names binaries
//! of the test's own package, so the suite looks them up itself and, when one is missing or
//! older than its sources (`cargo test -p mcpg-e2e` alone after an edit), builds them once
//! with the cargo that runs the tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// A binary of the workspace that the scenarios run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bin {
    /// `mcpg-auth`, the federation service.
    Auth,
    /// `mcpg-entitlements`, the gateway-side binary.
    Entitlements,
    /// `mcpg-license`, the offline signing CLI.
    License,
    /// `mcpg-ctl`, the operator CLI.
    Ctl,
}

const ALL: [Bin; 4] = [Bin::Auth, Bin::Entitlements, Bin::License, Bin::Ctl];

impl Bin {
    /// The executable's file name.
    pub fn name(self) -> &'static str {
        match self {
            Bin::Auth => "mcpg-auth",
            Bin::Entitlements => "mcpg-entitlements",
            Bin::License => "mcpg-license",
            Bin::Ctl => "mcpg-ctl",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Bin::Auth => "mcpg-auth",
            Bin::Entitlements => "mcpg-entitlements",
            Bin::License | Bin::Ctl => "mcpg-cli",
        }
    }

    /// What the binary is compiled from, relative to the workspace root (its own package's
    /// sources, the shared core, and the files compiled into them).
    fn sources(self) -> &'static [&'static str] {
        const CORE: [&str; 4] = [
            "services/license-core/src",
            "services/license-core/catalog",
            "keys",
            "services/runtime/src",
        ];
        match self {
            Bin::Auth => &[
                "services/auth/src",
                "migrations",
                CORE[0],
                CORE[1],
                CORE[2],
                CORE[3],
            ],
            Bin::Entitlements => &[
                "services/entitlements/src",
                CORE[0],
                CORE[1],
                CORE[2],
                CORE[3],
            ],
            Bin::License | Bin::Ctl => &["cli/src", CORE[0], CORE[1], CORE[2], CORE[3]],
        }
    }
}

/// The path of `bin`, built if needed; panics with what went wrong when it cannot be had.
pub fn path(bin: Bin) -> PathBuf {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match READY.get_or_init(prepare) {
        Ok(dir) => dir.join(bin.name()),
        Err(e) => panic!("{e}"),
    }
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// `target/<profile>/`: the test executable lives in its `deps/`.
fn profile_dir() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot locate the test executable: {e}"))?;
    let parent = exe.parent().ok_or("the test executable has no directory")?;
    Ok(match parent.file_name() {
        Some(name) if name == "deps" => parent.parent().unwrap_or(parent).to_owned(),
        _ => parent.to_owned(),
    })
}

fn prepare() -> Result<PathBuf, String> {
    let dir = profile_dir()?;
    let stale: Vec<Bin> = ALL.into_iter().filter(|&b| needs_build(&dir, b)).collect();
    if !stale.is_empty() {
        build(&dir, &stale)?;
    }
    for bin in ALL {
        if !dir.join(bin.name()).is_file() {
            return Err(format!(
                "{} not found in {}; build it with `cargo build -p {} --bin {}`",
                bin.name(),
                dir.display(),
                bin.package(),
                bin.name()
            ));
        }
    }
    Ok(dir)
}

fn needs_build(dir: &Path, bin: Bin) -> bool {
    let Ok(built) = std::fs::metadata(dir.join(bin.name())).and_then(|m| m.modified()) else {
        return true;
    };
    bin.sources()
        .iter()
        .filter_map(|source| newest(&workspace_root().join(source)))
        .any(|changed| changed > built)
}

/// The latest modification time of `path` or anything under it.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let own = meta.modified().ok();
    if !meta.is_dir() {
        return own;
    }
    let entries = std::fs::read_dir(path).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| newest(&entry.path()))
        .chain(own)
        .max()
}

/// `cargo build` of the stale binaries into the same target directory and profile.
fn build(dir: &Path, bins: &[Bin]) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let mut command = Command::new(&cargo);
    command
        .current_dir(workspace_root())
        .args(["build", "--profile", profile]);
    if let Some(target_dir) = dir.parent() {
        command.arg("--target-dir").arg(target_dir);
    }
    let mut packages: Vec<&str> = bins.iter().map(|b| b.package()).collect();
    packages.dedup();
    for package in packages {
        command.args(["-p", package]);
    }
    for bin in bins {
        command.args(["--bin", bin.name()]);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "building the binaries under test failed ({status}): {command:?}"
        ))
    }
}
