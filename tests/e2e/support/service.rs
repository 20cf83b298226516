//! `mcpg-auth serve` as a process on SQLite in a temporary directory (its default data dir,
//! `./mcpg-data`), and `mcpg-ctl` pointed at it with the bootstrap admin token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::bins::Bin;
use super::process::{self, Running};

/// How long a start may take before the scenario fails.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `mcpg-auth`, killed when dropped.
pub struct Service {
    /// Its working directory: the data directory (`mcpg-data/`, or the directory itself), the
    /// log and the bootstrap token file.
    pub dir: TempDir,
    data_dir: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The bootstrap admin token.
    pub token: String,
    process: Running,
}

impl Service {
    /// `mcpg-auth serve` with the embedded defaults (development root, data in
    /// `./mcpg-data`) plus `extra` flags.
    pub fn start(extra: &[&str]) -> Self {
        Self::launch(None, extra, None)
    }

    /// Another replica of `first` (`extra` names the shared database): it writes no
    /// bootstrap token (the database has one), so it is ready when `/readyz` answers 200,
    /// and `mcpg-ctl` uses `first`'s admin token.
    pub fn start_replica(first: &Service, extra: &[&str]) -> Self {
        Self::launch(None, extra, Some(&first.token))
    }

    /// [`Service::start`] with the working directory as the data directory
    /// (`--data-dir .`): the development root's files are next to the token file.
    pub fn start_in_place(extra: &[&str]) -> Self {
        Self::launch(Some("."), extra, None)
    }

    fn launch(data_dir: Option<&str>, extra: &[&str], token: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let token_file = dir.path().join("bootstrap.token");
        // A port picked just before the start can be taken in between by another test:
        // such a start fails before it writes the token (a failed bind spends nothing), so
        // it is simply tried again on another port.
        for _ in 0..3 {
            let port = process::free_port();
            let mut command = process::command(Bin::Auth);
            command
                .current_dir(dir.path())
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                // The operations listener's default port would be shared by every test.
                .args(["--ops-listen", "127.0.0.1:0"])
                .args(data_dir.iter().flat_map(|d| ["--data-dir", d]))
                .arg("--bootstrap-token-file")
                .arg(&token_file)
                .args(extra);
            let mut running = Running::spawn(command, &dir.path().join("mcpg-auth.log"));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let ready = process::wait_until("mcpg-auth to start", START_TIMEOUT, || {
                if running.exited() {
                    return Some(false);
                }
                // Our token file: it is not another test's service that answers (a replica
                // writes none; its log says it listens).
                let ours = match token {
                    None => token_file.is_file(),
                    Some(_) => log(dir.path()).contains("mcpg-auth listening"),
                };
                (ours && process::http_status(addr, "GET", "/readyz", None) == Some(200))
                    .then_some(true)
            });
            if !ready {
                continue;
            }
            let token = match token {
                Some(token) => token.to_owned(),
                None => std::fs::read_to_string(&token_file)
                    .expect("bootstrap token written")
                    .trim()
                    .to_owned(),
            };
            return Self {
                data_dir: dir.path().join(data_dir.unwrap_or("mcpg-data")),
                dir,
                url: format!("http://{addr}"),
                token,
                process: running,
            };
        }
        panic!("mcpg-auth did not start; its log:\n{}", log(dir.path()));
    }

    /// The working directory `mcpg-ctl` runs in (files it reads and writes are relative to
    /// it).
    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The development root's public key, which gateways pin to trust this service.
    pub fn dev_root(&self) -> PathBuf {
        self.data_dir.join("dev-root.public.paserk")
    }

    /// Kills the service (SIGKILL), as a crash or an outage would.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.url
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("not an address: {}", self.url))
    }

    /// The operations listener's address (`/metrics`), as the service logged it at start.
    pub fn ops_addr(&self) -> SocketAddr {
        let log = log(self.dir.path());
        let port = log
            .lines()
            .find(|line| line.contains("mcpg-auth listening"))
            .and_then(|line| line.split("ops_port=").nth(1))
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|port| port.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no ops_port in the log:\n{log}"));
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Whether `GET /readyz` answers 200.
    pub fn ready(&self) -> bool {
        process::http_status(self.addr(), "GET", "/readyz", None) == Some(200)
    }

    /// `mcpg-ctl ARGS…` with the admin token, run in the service's directory.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut command = process::command(Bin::Ctl);
        command
            .current_dir(self.dir.path())
            .env("MCPG_SERVER", &self.url)
            .env("MCPG_TOKEN", &self.token)
            .args(args);
        process::run(command)
    }

    /// `mcpg-ctl ARGS…`, which must succeed; its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        process::success(&self.ctl(args), &format!("mcpg-ctl {}", args.join(" ")))
    }

    /// `mcpg-ctl ARGS… --output json`, which must succeed; its JSON.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let out = self.ctl_ok(&args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// An org with a license (`license set ORG --tier TIER LICENSE_ARGS…`), workspace `main`,
    /// environment `prod` and a gateway `NAME`, all made with `mcpg-ctl` as an operator
    /// would; returns the credential file `register` wrote (`ORG-NAME.credential`, 0600).
    pub fn tenant(&self, org: &str, tier: &str, license_args: &[&str], gateway: &str) -> PathBuf {
        self.ctl_ok(&["org", "create", org, "--display-name", org]);
        let mut license = vec!["license", "set", org, "--tier", tier, "--valid-for", "30d"];
        license.extend(license_args);
        self.ctl_ok(&license);
        self.ctl_ok(&["workspace", "create", &format!("{org}/main")]);
        self.ctl_ok(&["env", "create", &format!("{org}/main/prod")]);
        let file = format!("{org}-{gateway}.credential");
        self.ctl_ok(&[
            "gateway",
            "register",
            &format!("{org}/main/prod"),
            gateway,
            "--credential-file",
            &file,
        ]);
        self.dir.path().join(file)
    }
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("mcpg-auth.log")).unwrap_or_default()
}
