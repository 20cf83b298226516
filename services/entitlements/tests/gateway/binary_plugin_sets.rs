//! The binary with a plugin set served over HTTP: `check` hands out the config, `status`
//! shows the set and the limits, a second run resumes the set from the state directory, and
//! the served sidecar counts refused admissions in `/metrics`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use mcpg_license_core::{Limits, PluginSet, PluginSetEntry, Tier};
use serde_json::{Value, json};

use crate::binary::{federated_config, run};
use crate::standin::{Answer, StandIn};
use crate::support::temp_dir;

const BIN: &str = env!("CARGO_BIN_EXE_mcpg-entitlements");

pub(crate) fn set() -> PluginSet {
    PluginSet::new(vec![
        PluginSetEntry {
            id: "identity.oidc".into(),
            config: json!({"issuer": "https://idp.test"}),
        },
        PluginSetEntry {
            id: "workspace.rbac".into(),
            config: Value::Null,
        },
    ])
    .expect("valid set")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_status_show_the_plugin_set_and_its_configs() {
    let server = StandIn::start(Answer::TokenWithSet {
        org: "acme".into(),
        tier: Tier::Team,
        set: set(),
        limits: Limits {
            max_servers: Some(5),
            max_concurrent_requests: Some(100),
            ..Limits::default()
        },
    })
    .await;
    let dir = temp_dir();
    let config = federated_config(dir.path(), &server);

    let allowed = run(&config, &["check", "identity.oidc", "--json"]).await;
    assert_eq!(allowed.status.code(), Some(0), "{allowed:?}");
    let answer: Value = serde_json::from_slice(&allowed.stdout).expect("json");
    assert_eq!(answer["config"], json!({"issuer": "https://idp.test"}));
    assert_eq!(server.hits(), 1);

    // Later runs answer from the state directory: the set comes back with its configs.
    let text = run(&config, &["--no-refresh", "check", "identity.oidc"]).await;
    let stdout = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(stdout.contains("config: {"), "{stdout}");
    assert!(stdout.contains("https://idp.test"), "{stdout}");
    let unconfigured = run(
        &config,
        &["--no-refresh", "check", "workspace.rbac", "--json"],
    )
    .await;
    let answer: Value = serde_json::from_slice(&unconfigured.stdout).expect("json");
    assert_eq!(answer["allowed"], json!(true));
    assert!(answer.get("config").is_none(), "{answer}");
    let outside = run(
        &config,
        &["--no-refresh", "check", "observability.audit", "--json"],
    )
    .await;
    assert_eq!(outside.status.code(), Some(1));
    let answer: Value = serde_json::from_slice(&outside.stdout).expect("json");
    assert_eq!(answer["reason"], json!("not_in_plugin_set"));
    assert!(answer.get("config").is_none());

    let status = run(&config, &["--no-refresh", "status"]).await;
    let stdout = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        stdout.contains(&format!(
            "plugin set: identity.oidc, workspace.rbac ({})",
            set().digest()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("gateway limits: max_servers 5, max_concurrent_requests 100"),
        "{stdout}"
    );
    let json_status = run(&config, &["--no-refresh", "status", "--json"]).await;
    let snapshot: Value = serde_json::from_slice(&json_status.stdout).expect("json");
    assert_eq!(
        snapshot["default"]["plugin_set"],
        json!({"digest": set().digest(), "ids": ["identity.oidc", "workspace.rbac"], "configs_available": true})
    );
    assert_eq!(server.hits(), 1, "--no-refresh makes no call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_sidecar_counts_refused_admissions_in_its_metrics() {
    let server = StandIn::start(Answer::TokenWithSet {
        org: "acme".into(),
        tier: Tier::Team,
        set: set(),
        limits: Limits {
            max_servers: Some(2),
            ..Limits::default()
        },
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
    let get = |path: &str| reqwest::get(format!("http://{addr}{path}"));

    let mut set_answer = Value::Null;
    for _ in 0..50 {
        set_answer = get("/v1/plugin-set")
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        if !set_answer["plugin_set"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(set_answer["plugin_set"]["digest"], json!(set().digest()));
    let over: Value = get("/v1/limits/servers?count=3")
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(over["reason"], json!("over_limit"));
    let metrics = get("/metrics")
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("# HELP mcpg_entitlements_limit_refusals_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mcpg_entitlements_limit_refusals_total{limit=\"max_servers\"} 1"),
        "{metrics}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = tokio::task::spawn_blocking(move || child.wait().expect("wait"))
        .await
        .expect("join");
    assert!(exit.success(), "{exit:?}");
}
