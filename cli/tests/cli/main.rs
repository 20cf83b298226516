//! Runs the built `mcpg-license` binary: every subcommand, its outputs and its failure
//! exits. Keys are generated per test in a temporary directory.

mod bad_input;
mod ceremony;
mod certify;
mod custody;
mod inspect_jwks;
mod issue_verify;
mod keygen;
mod output;
mod revoke;
mod usage;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use tempfile::TempDir;

/// A temporary working directory in which the binary runs.
pub(crate) struct Workdir {
    dir: TempDir,
}

/// The files of one generated key.
pub(crate) struct Keys {
    /// `NAME.secret.paserk`.
    pub(crate) secret: PathBuf,
    /// `NAME.public.paserk`.
    pub(crate) public: PathBuf,
    /// `NAME.jwk.json`.
    pub(crate) jwk: PathBuf,
}

impl Workdir {
    /// A fresh empty directory.
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// A path inside the directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `mcpg-license ARGS…`, run in this directory.
    pub(crate) fn run<I, S>(&self, args: I) -> Assert
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Command::new(env!("CARGO_BIN_EXE_mcpg-license"))
            .current_dir(self.dir.path())
            .args(args)
            .assert()
    }

    /// `keygen --out keys --name NAME`, which must succeed.
    pub(crate) fn keygen(&self, name: &str) -> Keys {
        self.run(["keygen", "--out", "keys", "--name", name])
            .success();
        let file = |suffix: &str| self.path(&format!("keys/{name}.{suffix}"));
        Keys {
            secret: file("secret.paserk"),
            public: file("public.paserk"),
            jwk: file("jwk.json"),
        }
    }

    /// `issue --key KEY --out OUT EXTRA…`, with `--org acme --tier team` unless in EXTRA.
    pub(crate) fn issue(&self, key: &Path, out: &str, extra: &[&str]) -> Assert {
        let mut args: Vec<String> = ["issue", "--key"].into_iter().map(String::from).collect();
        args.push(key.display().to_string());
        args.extend(["--out".to_string(), out.to_string()]);
        // Defaults for the required flags, unless the test sets them itself.
        for (flag, value) in [("--org", "acme"), ("--tier", "team")] {
            if !extra.contains(&flag) {
                args.extend([flag.to_string(), value.to_string()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        self.run(args)
    }

    /// `verify FILE --trust ROOT EXTRA…`.
    pub(crate) fn verify(&self, file: &str, root: &Path, extra: &[&str]) -> Assert {
        let mut args = vec![
            "verify".to_string(),
            file.to_string(),
            "--trust".to_string(),
            root.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.run(args)
    }
}

/// The assertion's stdout as text.
pub(crate) fn stdout(assert: &Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}

/// The assertion's stderr as text.
pub(crate) fn stderr(assert: &Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

/// Asserts a failure with `code`, exactly one `error:` line on stderr containing `needle`,
/// and no panic.
pub(crate) fn assert_one_error(assert: Assert, code: i32, needle: &str) {
    let assert = assert.code(code);
    let err = stderr(&assert);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "expected one error line, got: {err}");
    assert!(errors[0].contains(needle), "{needle:?} not in {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
}
