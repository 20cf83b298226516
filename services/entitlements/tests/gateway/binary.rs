//! The `mcpg-entitlements` binary run as a process: exit codes, JSON, the sidecar, and
//! tier0 mode opening no socket.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mcpg_license_core::Tier;

use crate::standin::{Answer, StandIn};
use crate::support::{CREDENTIAL, temp_dir};

const BIN: &str = env!("CARGO_BIN_EXE_mcpg-entitlements");

fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create");
    file.write_all(text.as_bytes()).expect("write");
}

/// A federated gateway.toml trusting the stand-in's root.
pub(crate) fn federated_config(dir: &Path, server: &StandIn) -> PathBuf {
    std::fs::write(
        dir.join("root.public.paserk"),
        server.authority.root.public_key().to_paserk(),
    )
    .expect("root");
    write_private(&dir.join("gateway.credential"), CREDENTIAL);
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "mode = \"federated\"\nstate_dir = \"state\"\ntrusted_roots = [\"root.public.paserk\"]\n\
             [federation]\nurl = \"{}\"\ncredential_file = \"gateway.credential\"\ntimeout = \"5s\"\n",
            server.url()
        ),
    )
    .expect("config");
    config
}

pub(crate) async fn run(config: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.arg("--config").arg(config).args(args);
    tokio::task::spawn_blocking(move || command.output().expect("binary runs"))
        .await
        .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_exits_0_when_allowed_1_when_denied_and_2_on_error() {
    let server = StandIn::start(Answer::Token {
        org: "acme".into(),
        tier: Tier::Team,
    })
    .await;
    let dir = temp_dir();
    let config = federated_config(dir.path(), &server);

    assert_eq!(
        run(&config, &["check", "workspace.rbac"])
            .await
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&config, &["check", "policy.cedar"]).await.status.code(),
        Some(1)
    );
    assert_eq!(
        run(&config, &["check", "shadow.exfiltrate"])
            .await
            .status
            .code(),
        Some(1)
    );
    let other = run(
        &config,
        &[
            "check",
            "workspace.rbac",
            "--tenant",
            "globex/a/b",
            "--json",
        ],
    )
    .await;
    assert_eq!(other.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&other.stdout).expect("json");
    assert_eq!(answer["reason"], "not_federated");
    let bad_tenant = run(&config, &["check", "workspace.rbac", "--tenant", "a b"]).await;
    assert_eq!(bad_tenant.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad_tenant.stderr).into_owned();
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("error: invalid tenant")),
        "{stderr}"
    );

    let status = run(&config, &["status", "--json"]).await;
    assert_eq!(status.status.code(), Some(0));
    let snapshot: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(snapshot["default"]["state"], "active");
    assert_eq!(snapshot["default"]["tenant"], "acme/platform/prod");

    let missing = dir.path().join("missing.toml");
    assert_eq!(run(&missing, &["status"]).await.status.code(), Some(2));
    std::fs::write(
        dir.path().join("typo.toml"),
        "mode = \"federated\"\nstate_dir = \"s\"\nsate = 1\n",
    )
    .expect("write");
    assert_eq!(
        run(&dir.path().join("typo.toml"), &["status"])
            .await
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_answers_checks_and_status_over_http() {
    let server = StandIn::start(Answer::Token {
        org: "acme".into(),
        tier: Tier::Team,
    })
    .await;
    let dir = temp_dir();
    let config = federated_config(dir.path(), &server);
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sidecar starts");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read");
        line
    })
    .await
    .expect("join");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("address line")
        .to_owned();
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        async move { http.get(path).send().await.expect("request") }
    };

    let mut allowed = serde_json::Value::Null;
    for _ in 0..50 {
        allowed = get(format!("http://{addr}/v1/check?plugin=workspace.rbac"))
            .await
            .json()
            .await
            .expect("json");
        if allowed["state"] == "active" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(allowed["allowed"], true, "{allowed}");
    let denied: serde_json::Value = get(format!(
        "http://{addr}/v1/check?plugin=policy.cedar&tenant=acme/platform/prod"
    ))
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(
        (denied["allowed"].clone(), denied["reason"].clone()),
        (false.into(), "not_entitled".into())
    );
    let missing = get(format!("http://{addr}/v1/check")).await;
    assert_eq!(missing.status(), 400);
    let status: serde_json::Value = get(format!("http://{addr}/v1/status"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(status["mode"], "federated");
    assert_eq!(status["default"]["tier"], "team");
    let metrics = get(format!("http://{addr}/metrics"))
        .await
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("mcpg_entitlements_state"), "{metrics}");
    // The state as a label too, the current one 1 and the others 0.
    let state_lines: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("mcpg_entitlements_tenant_state{"))
        .collect();
    assert_eq!(state_lines.len(), 7, "{metrics}");
    assert_eq!(
        state_lines.iter().filter(|l| l.ends_with(" 1")).count(),
        1,
        "{metrics}"
    );
    assert!(
        metrics.contains("# HELP mcpg_entitlements_tenant_state"),
        "{metrics}"
    );
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().expect("wait"))
        .await
        .expect("join");
    assert!(exit.success(), "sidecar exits cleanly on SIGTERM: {exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_in_tier0_mode_opens_no_connection_to_the_federation() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let dir = temp_dir();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "mode = \"tier0\"\nstate_dir = \"state\"\n[federation]\nurl = \"http://{}\"\ncredential = \"{CREDENTIAL}\"\n",
            listener.local_addr().expect("addr")
        ),
    )
    .expect("config");

    assert_eq!(
        run(&config, &["check", "identity.apikey"])
            .await
            .status
            .code(),
        Some(0)
    );
    let paid = run(&config, &["check", "identity.oidc", "--json"]).await;
    assert_eq!(paid.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&paid.stdout).expect("json");
    assert_eq!(answer["reason"], "tier0_only");
    assert_eq!(run(&config, &["status"]).await.status.code(), Some(0));
    // The global flag is accepted after the subcommand too.
    let after = Command::new(BIN)
        .args(["status", "--json", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(
        after.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&after.stdout).expect("json");
    assert_eq!(status["mode"], "tier0", "{status}");
    let mut sidecar = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sidecar starts");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    sidecar.kill().expect("stop");
    let _ = sidecar.wait();

    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "tier0 connected to the federation: {accepted:?}"
    );
    assert!(!dir.path().join("state").exists(), "tier0 writes no state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_gates_plugins_with_an_offline_license() {
    use mcpg_license_core::{Clock, SigningKey, SystemClock, issue_offline_license};
    let root = SigningKey::generate().expect("root");
    let now = SystemClock.now();
    let mut claims = crate::support::claims("airgap", Tier::Enterprise, now - 60);
    claims.exp = now + 365 * 86_400;
    (claims.rfa, claims.grc, claims.bind) = (None, None, Some("dc1".into()));
    let dir = temp_dir();
    std::fs::write(
        dir.path().join("airgap.license"),
        issue_offline_license(&claims, &root, None).expect("sign"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("root.public.paserk"),
        root.public_key().to_paserk(),
    )
    .expect("root");
    let config_for = |deployment: &str| {
        let path = dir.path().join(format!("{deployment}.toml"));
        std::fs::write(
            &path,
            format!("mode = \"offline\"\nstate_dir = \"state\"\ntrusted_roots = [\"root.public.paserk\"]\n[offline]\nlicense = \"airgap.license\"\ndeployment_id = \"{deployment}\"\n"),
        )
        .expect("config");
        path
    };
    assert_eq!(
        run(&config_for("dc1"), &["check", "policy.cedar"])
            .await
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&config_for("dc1"), &["check", "nope.plugin"])
            .await
            .status
            .code(),
        Some(1)
    );
    let wrong = run(&config_for("dc2"), &["check", "policy.cedar"]).await;
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("binding_mismatch"));
}

#[test]
fn status_into_a_reader_that_closed_early_ends_quietly() {
    let dir = temp_dir();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "mode = \"tier0\"\nstate_dir = \"state\"\n").expect("config");
    // The reader has closed its end before the first line is written.
    let script = format!(
        "(sleep 0.3; '{BIN}' --config '{}' status) | (exec 0<&-; sleep 1); exit ${{PIPESTATUS[0]}}",
        config.display()
    );
    let output = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
}
