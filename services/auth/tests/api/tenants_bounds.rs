//! tenants.yaml bounds: YAML anchors and aliases are refused (an alias bomb would expand a
//! small file into millions of objects), a document may declare at most
//! `tenants_max_objects` objects, and a refused file never stops a replica that already
//! has a state to serve.

use std::path::Path;
use std::time::{Duration, Instant};

use mcpg_auth::TenantsFile;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Backend, TestApp, assert_error, on_both_backends, spawn_app, split};

/// A 96 KB document: one workspace of 5,000 environments under the anchor `&w`, named by
/// 1,000 tenants with `*w` — five million environments once expanded.
fn alias_bomb() -> String {
    let mut doc = String::from("tenants:\n- id: t0\n  display_name: T\n  tier: free\n");
    doc.push_str("  workspaces: &w\n  - name: ws\n    environments: [");
    for i in 0..5_000 {
        if i > 0 {
            doc.push(',');
        }
        doc.push_str(&format!("e{i}"));
    }
    doc.push_str("]\n");
    for t in 1..1_000 {
        doc.push_str(&format!(
            "- id: t{t}\n  display_name: T\n  tier: free\n  workspaces: *w\n"
        ));
    }
    doc
}

/// One tenant with one workspace of `environments` environments (no alias).
fn many_environments(environments: usize) -> String {
    let list: Vec<String> = (0..environments).map(|i| format!("e{i}")).collect();
    format!(
        "tenants:\n- id: big\n  display_name: Big\n  tier: free\n  workspaces:\n  \
         - name: ws\n    environments: [{}]\n",
        list.join(",")
    )
}

const VALID: &str = "tenants:\n- id: team-a\n  display_name: Team Alpha\n  tier: team\n";

async fn apply(app: &TestApp, doc: &str, query: &str) -> (StatusCode, Value, Duration) {
    let started = Instant::now();
    let response = app
        .admin(Method::POST, &format!("/v1/admin/tenants/apply{query}"))
        .header("content-type", "application/yaml")
        .body(doc.to_owned())
        .send()
        .await
        .expect("request sent");
    let (status, body) = split(response).await;
    (status, body, started.elapsed())
}

fn watch(path: &Path) -> TenantsFile {
    TenantsFile {
        path: path.to_owned(),
        prune: false,
        interval: Duration::from_millis(100),
    }
}

async fn status(app: &TestApp) -> Value {
    app.expect(
        Method::GET,
        "/v1/admin/tenants/status",
        None,
        StatusCode::OK,
    )
    .await
}

async fn org_slugs(app: &TestApp) -> Vec<String> {
    let orgs = app
        .expect(Method::GET, "/v1/orgs", None, StatusCode::OK)
        .await;
    let items = orgs
        .as_array()
        .or_else(|| orgs["items"].as_array())
        .cloned()
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|o| o["slug"].as_str().map(str::to_owned))
        .collect()
}

async fn an_alias_bomb_is_refused_by_the_api_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let bomb = alias_bomb();
    assert!(bomb.len() < 100 * 1024, "{} bytes", bomb.len());
    for query in ["?dry_run=true", ""] {
        let (status, body, took) = apply(&app, &bomb, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_error(&body, "yaml_alias");
        assert!(took < Duration::from_secs(2), "{query}: took {took:?}");
    }
    // An anchor alone is refused too, quoted text that looks like one is not.
    let (status, body, _) = apply(
        &app,
        "tenants:\n- &a\n  id: a\n  display_name: A\n  tier: free\n",
        "?dry_run=true",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "yaml_alias");
    let (status, body, _) = apply(
        &app,
        "tenants:\n- id: a\n  display_name: \"*w &w\"\n  tier: free\n",
        "?dry_run=true",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!org_slugs(&app).await.iter().any(|s| s.starts_with('t')));
}

async fn a_document_over_the_object_bound_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body, took) = apply(&app, &many_environments(10_000), "?dry_run=true").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "tenants_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("10000")),
        "{body}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let (status, body, _) = apply(&app, &many_environments(500), "?dry_run=true").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

on_both_backends!(
    an_alias_bomb_is_refused_by_the_api_at_once,
    a_document_over_the_object_bound_is_refused,
);

#[tokio::test]
async fn the_object_bound_is_configurable() {
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, |s| s.tenants_max_objects = 10).await;
    let (status, body, _) = apply(&app, &many_environments(20), "?dry_run=true").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "tenants_too_large");
    let (status, body, _) = apply(&app, &many_environments(5), "?dry_run=true").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_alias_bomb_at_start_leaves_the_replica_serving_the_last_good_state() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let file = app.data_dir.path().join("tenants.yaml");
    std::fs::write(&file, VALID).expect("write");
    app.stop().await;
    app.settings.tenants = Some(watch(&file));
    app.start().await;
    assert!(org_slugs(&app).await.contains(&"team-a".to_owned()));
    app.stop().await;
    std::fs::write(&file, alias_bomb()).expect("write");
    let started = Instant::now();
    app.start().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let view = status(&app).await;
    assert!(
        view["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("alias")),
        "{view}"
    );
    assert!(org_slugs(&app).await.contains(&"team-a".to_owned()));
    // Once the file is fixed, the watcher applies it.
    std::fs::write(&file, VALID.replace("Team Alpha", "Team A")).expect("write");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if status(&app).await["last_error"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "the fixed file was not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_alias_bomb_written_over_a_live_file_is_logged_and_the_state_kept() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let file = app.data_dir.path().join("tenants.yaml");
    std::fs::write(&file, VALID).expect("write");
    app.stop().await;
    app.settings.tenants = Some(watch(&file));
    app.start().await;
    std::fs::write(&file, alias_bomb()).expect("write");
    let deadline = Instant::now() + Duration::from_secs(15);
    let view = loop {
        let view = status(&app).await;
        if !view["last_error"].is_null() {
            break view;
        }
        assert!(
            Instant::now() < deadline,
            "the bomb was not refused: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        view["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("alias")),
        "{view}"
    );
    assert_eq!(view["generation"], 1, "{view}");
    assert_eq!(org_slugs(&app).await, vec!["team-a".to_owned()]);
}
