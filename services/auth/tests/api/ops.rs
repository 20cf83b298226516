//! The operations listener: `/metrics` is served there and not on the API, both serve the
//! probes and the version, every metric family is described, and the binary says which
//! commit it is.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with, test_settings};

async fn get(app: &TestApp, base: &str, path: &str) -> (StatusCode, String) {
    let response = app
        .client
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.text().await.expect("text"))
}

#[tokio::test]
async fn metrics_are_served_on_the_ops_listener_and_not_on_the_api() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_ne!(app.address, app.ops_address);
    let (status, body) = get(&app, &app.address, "/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = get(&app, &app.ops_address, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("# TYPE mcpg_build_info gauge"), "{body}");

    // Probes and the version on both; the API's routes only on the API.
    for base in [&app.address, &app.ops_address] {
        for path in ["/healthz", "/readyz"] {
            assert_eq!(
                get(&app, base, path).await.0,
                StatusCode::OK,
                "{base}{path}"
            );
        }
        let (status, body) = get(&app, base, "/version").await;
        assert_eq!(status, StatusCode::OK);
        let version: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
        let commit = version["commit"].as_str().expect("commit");
        assert!(!commit.is_empty(), "{version}");
    }
    for path in ["/v1/orgs", "/openapi.yaml", "/.well-known/jwks.json"] {
        let (status, _) = get(&app, &app.ops_address, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} on the ops listener");
    }
}

#[tokio::test]
async fn a_start_whose_ops_port_is_taken_fails_before_any_side_effect() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(data_dir.path());
    settings.ops_listen = taken.local_addr().expect("addr");
    let error = match mcpg_auth::Application::build(settings).await {
        Ok(_) => panic!("started with the ops port taken"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("--ops-listen"), "{error}");
    assert!(
        !data_dir.path().join("bootstrap.token").exists(),
        "a bootstrap token was issued by a failed start"
    );
    assert!(
        !data_dir.path().join("mcpg.db").exists(),
        "the database was created by a failed start"
    );
}

/// Every family of a Prometheus text page: its name mapped to whether it has `# HELP`
/// and which `# TYPE`, plus the names of the samples.
#[derive(Debug, Default)]
struct Families {
    help: BTreeSet<String>,
    types: BTreeMap<String, String>,
    samples: BTreeSet<String>,
}

fn parse_exposition(text: &str) -> Families {
    let mut families = Families::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().expect("name");
            families.help.insert(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().expect("name");
            let kind = parts.next().expect("type");
            families.types.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') {
            let name = line
                .split(['{', ' '])
                .next()
                .expect("sample name")
                .to_owned();
            families.samples.insert(name);
        }
    }
    families
}

impl Families {
    /// The family a sample belongs to: histogram and summary series drop their suffix.
    fn family_of(&self, sample: &str) -> String {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = sample.strip_suffix(suffix) {
                let kind = self.types.get(base).map(String::as_str);
                if matches!(kind, Some("histogram" | "summary")) {
                    return base.to_owned();
                }
            }
        }
        sample.to_owned()
    }
}

#[tokio::test]
async fn every_metric_family_has_help_and_type() {
    let app = spawn_app(Backend::Sqlite).await;
    // Traffic that sets the counters, gauges and histograms: a token, management calls,
    // a refused token request, an unknown route, and a scrape for the quota gauges.
    let credential = app.gateway("acme").await;
    app.token_ok(&credential).await;
    assert_eq!(app.token("mcpg_gw_short").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&app, &app.address, "/no-such-route").await.0,
        StatusCode::NOT_FOUND
    );
    app.scrape().await;
    let text = app.scrape().await;
    let families = parse_exposition(&text);
    let mut undescribed = Vec::new();
    let mut seen = BTreeSet::new();
    for sample in &families.samples {
        let family = families.family_of(sample);
        if !families.help.contains(&family) {
            undescribed.push(format!("{family}: no # HELP"));
        }
        if !families.types.contains_key(&family) {
            undescribed.push(format!("{family}: no # TYPE"));
        }
        seen.insert(family);
    }
    assert!(undescribed.is_empty(), "{undescribed:?}\n{text}");
    for expected in [
        "mcpg_build_info",
        "mcpg_http_request_duration_seconds",
        "mcpg_tokens_issued_total",
        "mcpg_quota_usage",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(seen.contains(expected), "{expected} missing from\n{text}");
    }
    assert_eq!(
        families
            .types
            .get("mcpg_http_request_duration_seconds")
            .map(String::as_str),
        Some("histogram")
    );
    assert_eq!(
        families
            .types
            .get("process_cpu_seconds_total")
            .map(String::as_str),
        Some("counter")
    );
    let build_info = text
        .lines()
        .find(|l| l.starts_with("mcpg_build_info{"))
        .expect("build info sample");
    assert!(
        build_info.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && build_info.contains("commit=\"")
            && build_info.ends_with(" 1"),
        "{build_info}"
    );
    // Base units only: no day-valued expiry gauges are left.
    assert!(!text.contains("days_to_expiry"), "{text}");
}

#[tokio::test]
async fn license_expiry_is_exported_in_seconds() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    // An org of its own: the recorder is shared by every test in this process.
    app.gateway("expiry-seconds").await;
    // The housekeeping task sets it every 10 s; wait for its next round.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let series = "mcpg_license_expiry_seconds{org=\"expiry-seconds\"} ";
    let value = loop {
        let text = app.scrape().await;
        if let Some(value) = text.lines().find_map(|l| l.strip_prefix(series)) {
            break value.parse::<f64>().expect("a number");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{series} never set:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    // The helper's license runs 30 days.
    let thirty_days = 30.0 * 86_400.0;
    assert!(
        (thirty_days - 120.0..=thirty_days).contains(&value),
        "{value}"
    );
}

#[tokio::test]
async fn the_binary_prints_its_version_and_commit() {
    let output = Command::new(env!("CARGO_BIN_EXE_mcpg-auth"))
        .arg("--version")
        .output()
        .expect("binary runs");
    assert!(output.status.success());
    let line = String::from_utf8(output.stdout).expect("utf-8");
    let app = spawn_app(Backend::Sqlite).await;
    let (_, body) = get(&app, &app.ops_address, "/version").await;
    let version: Value = serde_json::from_str(&body).expect("json");
    let expected = format!(
        "mcpg-auth {} (commit {})",
        version["version"].as_str().expect("version"),
        version["commit"].as_str().expect("commit")
    );
    assert_eq!(line.trim(), expected);
}
