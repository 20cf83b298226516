//! `mcpg-ctl`'s commands against a real `mcpg-auth` process: the operator's journey, roles,
//! audit, keys, OIDC, revocation lists and tenants files, each with its outputs and failure
//! exits (0 done, 1 refused or unreachable, 2 usage error).

mod access;
mod archives;
mod audit;
mod contexts;
mod entitlements;
mod fleet;
mod gateways;
mod impersonate;
mod journey;
mod keys;
mod oidc;
mod plugin_sets;
mod revocations;
mod tenants;
mod usage;
mod usage_import;

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use serde_json::Value;

use crate::support::bins::Bin;
use crate::support::{Service, process};

/// A running `mcpg-auth` whose working directory is also its data directory (the
/// development root's files, the bootstrap token and the files `mcpg-ctl` writes), killed on
/// drop.
pub(crate) struct Server {
    service: Service,
    pub(crate) url: String,
    pub(crate) token: String,
}

impl Server {
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`Server::start`] with `extra` flags for `mcpg-auth serve`.
    pub(crate) fn start_with(extra: &[&str]) -> Self {
        let service = Service::start_in_place(extra);
        Self {
            url: service.url.clone(),
            token: service.token.clone(),
            service,
        }
    }

    /// The working and data directory.
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.service.dir.path()
    }

    /// `mcpg-ctl` pointed at this server with `token`, run in the server's directory.
    pub(crate) fn command(&self, token: &str) -> Command {
        let mut command = ctl();
        command
            .env("MCPG_SERVER", &self.url)
            .env("MCPG_TOKEN", token)
            .current_dir(self.dir());
        command
    }

    /// `mcpg-ctl ARGS…` with the admin token.
    pub(crate) fn ctl<const N: usize>(&self, args: [&str; N]) -> Assert {
        self.command(&self.token).args(args).assert()
    }

    /// `mcpg-ctl ARGS… --output json` with the admin token; must succeed.
    pub(crate) fn json<const N: usize>(&self, args: [&str; N]) -> Value {
        let out = self
            .command(&self.token)
            .args(args)
            .args(["--output", "json"])
            .assert()
            .success();
        serde_json::from_str(&stdout(&out)).expect("--output json prints JSON")
    }

    /// The status of `POST /v1/federation/token` with a gateway's credential.
    pub(crate) fn token_status(&self, credential: &str) -> u16 {
        process::http_status(
            self.service.addr(),
            "POST",
            "/v1/federation/token",
            Some(credential),
        )
        .expect("token endpoint answers")
    }
}

/// `mcpg-ctl` with no `MCPG_*` variable from the caller's environment.
pub(crate) fn ctl() -> Command {
    Command::from_std(process::command(Bin::Ctl))
}

/// `mcpg-license`, likewise.
pub(crate) fn license() -> Command {
    Command::from_std(process::command(Bin::License))
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
