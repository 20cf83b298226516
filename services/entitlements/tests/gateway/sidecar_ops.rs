//! The sidecar as operations see it: log lines in the format asked for and never coloured
//! when not on a terminal, and a shutdown that a stalled client cannot hold off beyond the
//! drain bound.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use mcpg_entitlements::sidecar::SHUTDOWN_DRAIN;
use mcpg_license_core::Tier;

use crate::binary::federated_config;
use crate::sidecar_process::Sidecar;
use crate::standin::{Answer, StandIn};
use crate::support::temp_dir;

async fn standin() -> StandIn {
    StandIn::start(Answer::Token {
        org: "acme".into(),
        tier: Tier::Team,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_json_writes_one_json_object_per_line_without_escape_codes() {
    let server = standin().await;
    let dir = temp_dir();
    let config = federated_config(dir.path(), &server);
    let sidecar = Sidecar::start(&config, &["--log-format", "json"], &[("MCPG_LOG", "debug")]);
    sidecar.ready().await;
    let (status, _, stderr) = tokio::task::spawn_blocking(move || sidecar.stop())
        .await
        .expect("join");
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(!stderr.contains("\x1b["), "escape codes in {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 3, "too few log lines: {stderr}");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value["level"].is_string(), "{line}");
        assert!(value["timestamp"].is_string(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_from_the_config_and_text_logs_on_a_pipe_have_no_colour() {
    let server = standin().await;
    let dir = temp_dir();
    let config = federated_config(dir.path(), &server);
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("log_format = \"json\"\n{text}")).expect("config");
    let sidecar = Sidecar::start(&config, &[], &[("MCPG_LOG", "debug")]);
    sidecar.ready().await;
    let (_, _, stderr) = tokio::task::spawn_blocking(move || sidecar.stop())
        .await
        .expect("join");
    assert!(
        stderr
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{stderr}"
    );
    assert!(!stderr.is_empty());

    // The flag wins over the file; text on a pipe is plain.
    let sidecar = Sidecar::start(&config, &["--log-format", "text"], &[("MCPG_LOG", "debug")]);
    sidecar.ready().await;
    let (_, _, stderr) = tokio::task::spawn_blocking(move || sidecar.stop())
        .await
        .expect("join");
    assert!(!stderr.is_empty());
    assert!(!stderr.contains("\x1b["), "escape codes in {stderr}");
    assert!(
        stderr
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_err()),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_sidecar_within_the_drain_bound_despite_a_stalled_client() {
    let server = standin().await;
    let dir = temp_dir();
    let config = federated_config(dir.path(), &server);
    let sidecar = Sidecar::start(&config, &[], &[]);
    sidecar.ready().await;
    // Half a request's headers, then silence: the connection stays open.
    let mut stalled = TcpStream::connect(&sidecar.addr).expect("connect");
    stalled
        .write_all(b"GET /v1/status HTTP/1.1\r\nhost: test\r\n")
        .expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, took, stderr) = tokio::task::spawn_blocking(move || sidecar.stop())
        .await
        .expect("join");
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(
        took < SHUTDOWN_DRAIN + Duration::from_secs(2),
        "stopped after {took:?}"
    );
    drop(stalled);
}
