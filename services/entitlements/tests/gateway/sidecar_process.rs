//! The sidecar (`mcpg-entitlements serve`) run as a process on an ephemeral loopback port,
//! for the tests of its HTTP API, its logs and its shutdown.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mcpg-entitlements");

/// A running sidecar; killed when dropped.
pub struct Sidecar {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Sidecar {
    /// Starts `serve --listen 127.0.0.1:0` with `config`, extra global `args` and `env`, and
    /// waits for the address it prints. Stderr is piped (read it with [`Sidecar::stop`]).
    pub fn start(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .args(args)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sidecar starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("no address line: {line:?}"))
            .to_owned();
        Self { child, addr }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits (up to 10 s) until `/readyz` answers 200.
    pub async fn ready(&self) {
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = http.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the sidecar never became ready");
    }

    /// Sends SIGTERM and waits for the exit: its status, how long it took, and stderr.
    pub fn stop(mut self) -> (ExitStatus, Duration, String) {
        let asked = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                asked.elapsed() < Duration::from_secs(30),
                "the sidecar did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = asked.elapsed();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut stderr).expect("stderr");
        }
        (status, took, stderr)
    }
}

impl Sidecar {
    /// Kills the process with SIGKILL (`kill -9`) and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
