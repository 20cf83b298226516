//! The `mcpg-entitlements` binary as a gateway runs it: one `gateway.toml` and its state
//! directory in a temporary directory; every `status` or `check` is a new process that
//! resumes from the state directory.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;

use super::bins::Bin;
use super::process;

/// A gateway's configuration and state directory (`state/` next to `gateway.toml`).
pub struct Gateway {
    dir: TempDir,
    config: PathBuf,
}

/// A `check --json` answer.
pub struct Check {
    /// The exit code: 0 allowed, 1 denied, 2 error.
    pub code: Option<i32>,
    /// The answer (`allowed`, `reason`, `state`, `tier`, `explanation`); `Null` on an error.
    pub json: Value,
}

impl Check {
    /// `json[key]` as text ("" when absent).
    pub fn field(&self, key: &str) -> &str {
        self.json[key].as_str().unwrap_or_default()
    }

    /// Whether the plugin was allowed; panics when the exit code and the JSON disagree.
    pub fn allowed(&self) -> bool {
        match (self.code, self.json["allowed"].as_bool()) {
            (Some(0), Some(true)) => true,
            (Some(1), Some(false)) => false,
            other => panic!("exit code and answer disagree: {other:?} {}", self.json),
        }
    }
}

fn quoted(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

fn roots(trusted_roots: &[&Path]) -> String {
    let list: Vec<String> = trusted_roots.iter().map(|p| quoted(p)).collect();
    list.join(", ")
}

impl Gateway {
    fn with_config(toml: String) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, toml).expect("write gateway.toml");
        Self { dir, config }
    }

    /// `mode = "federated"` against `url` with the credential in `credential_file`,
    /// pinning `trusted_roots` (besides the vendor roots compiled in).
    pub fn federated(url: &str, credential_file: &Path, trusted_roots: &[&Path]) -> Self {
        Self::with_config(format!(
            "mode = \"federated\"\nstate_dir = \"state\"\ntrusted_roots = [{}]\n\
             [federation]\nurl = \"{url}\"\ncredential_file = {}\ntimeout = \"5s\"\n",
            roots(trusted_roots),
            quoted(credential_file),
        ))
    }

    /// `mode = "federated"` with one `[[tenant]]` entry per `(name, url, credential file)`.
    pub fn federated_tenants(tenants: &[(&str, &str, &Path)], trusted_roots: &[&Path]) -> Self {
        let entries: String = tenants
            .iter()
            .map(|(name, url, credential_file)| {
                format!(
                    "[[tenant]]\nname = \"{name}\"\nurl = \"{url}\"\ncredential_file = {}\n\
                     timeout = \"5s\"\n",
                    quoted(credential_file)
                )
            })
            .collect();
        Self::with_config(format!(
            "mode = \"federated\"\nstate_dir = \"state\"\ntrusted_roots = [{}]\n{entries}",
            roots(trusted_roots),
        ))
    }

    /// `mode = "offline"` with the license file `license`, optionally bound to `deployment`.
    pub fn offline(license: &Path, trusted_roots: &[&Path], deployment: Option<&str>) -> Self {
        let deployment = deployment
            .map(|id| format!("deployment_id = \"{id}\"\n"))
            .unwrap_or_default();
        Self::with_config(format!(
            "mode = \"offline\"\nstate_dir = \"state\"\ntrusted_roots = [{}]\n\
             [offline]\nlicense = {}\n{deployment}",
            roots(trusted_roots),
            quoted(license),
        ))
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `mcpg-entitlements --config gateway.toml ARGS…`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut command = process::command(Bin::Entitlements);
        command
            .current_dir(self.dir.path())
            .arg("--config")
            .arg(&self.config)
            .args(args);
        process::run(command)
    }

    /// `check PLUGIN --json` (federated gateways refresh first when a refresh is due).
    pub fn check(&self, plugin: &str) -> Check {
        self.check_args(&["check", plugin, "--json"])
    }

    /// `check PLUGIN --tenant ORG/WS/ENV --json`.
    pub fn check_tenant(&self, plugin: &str, tenant: &str) -> Check {
        self.check_args(&["check", plugin, "--tenant", tenant, "--json"])
    }

    fn check_args(&self, args: &[&str]) -> Check {
        let output = self.run(args);
        let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        Check {
            code: output.status.code(),
            json,
        }
    }

    /// `status --json`, which must succeed.
    pub fn status(&self) -> Value {
        let output = self.run(&["status", "--json"]);
        let out = process::success(&output, "mcpg-entitlements status");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }
}
