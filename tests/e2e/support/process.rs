//! Child processes: commands with a clean environment, a guard that kills a long-running
//! process when the test ends (passing or panicking), polling instead of sleeping, and the
//! one HTTP request the suite makes itself (a health probe).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::bins::{self, Bin};

/// `bin` as a command, with no `MCPG_*` variable inherited from the test's environment
/// (each scenario says everything it configures) and, for `mcpg-ctl`, no contexts file.
pub fn command(bin: Bin) -> Command {
    let mut command = Command::new(bins::path(bin));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MCPG_") {
            command.env_remove(name);
        }
    }
    if bin == Bin::Ctl {
        // mcpg-ctl reads saved contexts from ~/.config/mcpg: never the developer's own.
        command.env("MCPG_CTL_CONFIG", "/nonexistent/mcpg-e2e/contexts.toml");
    }
    command.stdin(Stdio::null());
    command
}

/// Runs `command` to completion.
pub fn run(mut command: Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Stdout of a command that must have succeeded; panics with its stderr otherwise.
pub fn success(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A process that runs until the guard is dropped (or [`Running::kill`]).
pub struct Running {
    child: Child,
}

impl Running {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn(mut command: Command, log: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let stderr = file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        command.stdout(file).stderr(stderr);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Self { child }
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process (SIGKILL: no graceful shutdown) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `probe` every 50 ms until it returns `Some`, for at most `timeout`; panics naming
/// `what` when it never does.
pub fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The status code of `METHOD path` (no body, optionally with a Bearer token) on `addr`, or
/// `None` when nothing answers.
pub fn http_status(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
) -> Option<u16> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let authorization = bearer
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0_u8; 32];
    let read = stream.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..read]).ok()?;
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// A port on 127.0.0.1 that was free a moment ago (the kernel's pick).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}
