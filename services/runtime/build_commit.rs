// Included by the build scripts of mcpg-auth, mcpg-cli and mcpg-entitlements
// (`include!`): stamps a build with its commit, read back by `env!` for `--version`.
//
// The commit is `git rev-parse --short=12 HEAD` when the sources are a git checkout, else
// the `MCPG_BUILD_COMMIT` variable (release builds from a tarball set it), else `unknown`.
// Nothing here can fail the build: a missing `git`, or no repository, falls through.
//
// Reruns: on `MCPG_BUILD_COMMIT`, and on the checkout's `HEAD` file and the branch ref it
// names (or `packed-refs`), so a commit or a checkout restamps the binary. Paths come from
// `git rev-parse --git-path`, so a linked worktree (whose `.git` is a file) watches its own
// `HEAD` and the shared refs. Outside a checkout a source tarball's commit cannot change.

/// Sets the compile-time variable `name` to this build's commit.
fn stamp_commit(name: &str) {
    println!("cargo:rerun-if-env-changed=MCPG_BUILD_COMMIT");
    let from_git = git(&["rev-parse", "--short=12", "HEAD"]).and_then(|c| clean(&c));
    if from_git.is_some() {
        watch_head();
    }
    let commit = from_git
        .or_else(|| {
            std::env::var("MCPG_BUILD_COMMIT")
                .ok()
                .and_then(|c| clean(&c))
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env={name}={commit}");
}

/// Watches `HEAD` and what it points to. Only existing files are named: Cargo reruns a
/// build script on every build when a watched path does not exist.
fn watch_head() {
    let mut watched = Vec::new();
    watched.extend(git(&["rev-parse", "--git-path", "HEAD"]));
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.extend(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.extend(git(&["rev-parse", "--git-path", "packed-refs"]));
    // `--git-path` answers relative to the directory git ran in: the manifest's.
    let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return;
    };
    for path in watched {
        let path = std::path::Path::new(&dir).join(path);
        if path.is_file() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// `git ARGS` in the crate's directory: its trimmed output, or `None` on any failure.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// A commit id as it may appear in a version line: 1-40 characters of `[0-9A-Za-z._-]`.
fn clean(text: &str) -> Option<String> {
    let text = text.trim();
    let ok = (1..=40).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    ok.then(|| text.to_owned())
}
