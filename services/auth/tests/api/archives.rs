//! Deprovisioning with retention: a deleted org's archive (its export and audit chain) is
//! listed, read and verified by global admins only, restorable within the retention, and
//! purged after it with an `archive.purge` entry in the `_system` chain.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcpg_license_core::ManualClock;
use mcpg_license_core::clock::parse_rfc3339;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::audit::{entries, org_id, verify};
use crate::audit_tamper::{Raw, quote};
use crate::helpers::{
    Backend, TestApp, assert_error, now, on_both_backends, spawn_app, spawn_app_full,
};
use crate::rbac::{call, grant, user_token};

on_both_backends!(
    a_deleted_org_leaves_an_archive_with_its_verifiable_chain,
    only_global_admins_see_archives,
    archives_past_their_retention_are_purged_with_a_system_entry,
    a_restore_after_the_retention_is_refused_even_before_the_purge,
    a_restore_within_the_window_brings_the_org_back_with_its_chain,
);

const DAY: i64 = 86_400;

async fn list(app: &TestApp) -> Vec<Value> {
    let body = app
        .expect(Method::GET, "/v1/admin/archives", None, StatusCode::OK)
        .await;
    body.as_array().expect("a list").clone()
}

async fn delete_org(app: &TestApp, org: &str) -> Value {
    app.expect(
        Method::DELETE,
        &format!("/v1/orgs/{org}?cascade=true"),
        None,
        StatusCode::OK,
    )
    .await
}

async fn archive_verify(app: &TestApp, id: &str) -> Value {
    app.expect(
        Method::POST,
        &format!("/v1/admin/archives/{id}/verify"),
        None,
        StatusCode::OK,
    )
    .await
}

async fn a_deleted_org_leaves_an_archive_with_its_verifiable_chain(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    app.set_license("acme", json!({"tier": "enterprise", "valid_for_days": 30}))
        .await;
    let bound = grant(
        &app,
        "acme",
        "alice@acme.com",
        "viewer",
        json!({"workspace": "main", "environment": "prod"}),
    )
    .await;
    assert!(
        bound["scope"].is_object() || bound["scope"].is_string(),
        "{bound}"
    );
    let acme = org_id(&app, "acme").await;
    app.expect(
        Method::POST,
        "/v1/orgs/acme/audit/checkpoints",
        None,
        StatusCode::CREATED,
    )
    .await;
    let chain = entries(&app, "acme", "").await;
    let export = delete_org(&app, "acme").await;
    assert!(
        export.get("restore").is_none(),
        "the answer keeps the old shape"
    );

    let archives = list(&app).await;
    assert_eq!(archives.len(), 1);
    let summary = &archives[0];
    assert_eq!(summary["org"], "acme");
    assert_eq!(summary["org_id"], acme.as_str());
    assert!(summary["size"].as_i64().expect("size") > 0);
    let deleted_at =
        parse_rfc3339(summary["deleted_at"].as_str().expect("deleted_at")).expect("rfc3339");
    let purge_at = parse_rfc3339(summary["purge_at"].as_str().expect("purge_at")).expect("rfc3339");
    assert_eq!(
        purge_at - deleted_at,
        30 * DAY,
        "the default retention is 30 days"
    );
    let id = summary["id"].as_str().expect("id").to_owned();

    let shown = app
        .expect(
            Method::GET,
            &format!("/v1/admin/archives/{id}"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(shown["restorable"], true);
    let archive = &shown["archive"];
    assert!(
        archive.get("restore").is_none(),
        "credential hashes stay on the server"
    );
    assert_eq!(archive["kind"], "org");
    assert_eq!(archive["gateways"].as_array().map(Vec::len), Some(1));
    assert_eq!(archive["role_bindings"].as_array().map(Vec::len), Some(1));
    let archived = archive["audit"]["entries"].as_array().expect("entries");
    assert_eq!(
        archived.len(),
        chain.len() + 2,
        "plus the suspension and the deletion"
    );
    assert_eq!(archived[0]["hash"], chain[0].hash.as_str());
    assert_eq!(archived.last().expect("last")["action"], "org.delete");

    let checkpoints = archive["audit"]["checkpoints"]
        .as_array()
        .expect("checkpoints");
    assert_eq!(checkpoints.len(), 1, "{archive}");
    assert_eq!(checkpoints[0]["seq"], chain.len() as i64);

    let report = archive_verify(&app, &id).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["chain"]["head_seq"], archived.len() as i64);
    assert_eq!(report["checkpoints"], 1);

    // Edited behind the service's back: a detail of an archived entry changes.
    let mut raw = Raw::open(&app).await;
    let changed = raw
        .exec(&format!(
            "UPDATE deleted_exports SET export = REPLACE(export, 'gw-1', 'gw-9') WHERE id = {}",
            quote(&id)
        ))
        .await
        .expect("tamper");
    assert_eq!(changed, 1);
    let report = archive_verify(&app, &id).await;
    assert_eq!(report["ok"], false, "{report}");
    assert!(report["chain"]["first_bad_seq"].as_i64().is_some());

    let (status, body) = app.send(Method::GET, "/v1/admin/archives/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

async fn only_global_admins_see_archives(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    app.create_org("globex").await;
    grant(&app, "globex", "admin@globex.com", "admin", json!({})).await;
    let token = user_token(&app, "globex", "admin@globex.com").await;
    delete_org(&app, "acme").await;
    let id = list(&app).await[0]["id"].as_str().expect("id").to_owned();
    for (method, path) in [
        (Method::GET, "/v1/admin/archives".to_owned()),
        (Method::GET, format!("/v1/admin/archives/{id}")),
        (Method::POST, format!("/v1/admin/archives/{id}/verify")),
        (Method::POST, format!("/v1/admin/archives/{id}/restore")),
    ] {
        let (status, body) = call(&app, &token, method, &path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_error(&body, "forbidden");
    }
    assert_eq!(list(&app).await.len(), 1, "nothing was restored");
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn archives_past_their_retention_are_purged_with_a_system_entry(backend: Backend) {
    let clock = Arc::new(ManualClock::new(now()));
    let app = spawn_app_full(
        backend,
        |settings| {
            settings.retention = Duration::from_secs(7 * DAY as u64);
            settings.archive_purge_interval = Duration::from_secs(1);
        },
        Some(clock.clone()),
    )
    .await;
    app.gateway("acme").await;
    delete_org(&app, "acme").await;
    let archive = list(&app).await[0].clone();
    let id = archive["id"].as_str().expect("id").to_owned();
    let deleted_at = parse_rfc3339(archive["deleted_at"].as_str().expect("t")).expect("t");
    let purge_at = parse_rfc3339(archive["purge_at"].as_str().expect("t")).expect("t");
    assert_eq!(purge_at - deleted_at, 7 * DAY);

    clock.advance(7 * DAY - 60);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(list(&app).await.len(), 1, "kept within its retention");

    clock.advance(120);
    eventually("the archive is purged", || async {
        list(&app).await.is_empty()
    })
    .await;
    let mut raw = Raw::open(&app).await;
    let purged = raw
        .count(&format!(
            "SELECT COUNT(*) FROM audit_entries WHERE org_id = '_system' \
             AND action = 'archive.purge' AND target = 'acme' AND actor = 'system' \
             AND details LIKE {}",
            quote(&format!("%{id}%"))
        ))
        .await;
    assert_eq!(purged, 1);
    let (status, body) = app
        .send(
            Method::POST,
            &format!("/v1/admin/archives/{id}/restore"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

async fn a_restore_within_the_window_brings_the_org_back_with_its_chain(backend: Backend) {
    let app = spawn_app(backend).await;
    let credential = app.gateway("acme").await;
    app.set_license("acme", json!({"tier": "enterprise", "valid_for_days": 30}))
        .await;
    let bound = grant(
        &app,
        "acme",
        "alice@acme.com",
        "viewer",
        json!({"workspace": "main", "environment": "prod"}),
    )
    .await;
    assert!(
        bound["scope"].is_object() || bound["scope"].is_string(),
        "{bound}"
    );
    let acme = org_id(&app, "acme").await;
    let env_set = "/v1/orgs/acme/workspaces/main/environments/prod/plugin-set";
    let set = app
        .expect(
            Method::PUT,
            env_set,
            Some(json!({"plugins": [{"id": "policy.cedar", "config": {"b": 1}}]})),
            StatusCode::OK,
        )
        .await;
    app.token_ok(&credential).await;
    let deleted = delete_org(&app, "acme").await;
    assert_eq!(deleted["plugin_sets"][0]["digest"], set["digest"]);
    let (status, _) = app.token(&credential).await;
    assert_ne!(
        status,
        StatusCode::OK,
        "a deleted org's gateway gets no token"
    );
    let id = list(&app).await[0]["id"].as_str().expect("id").to_owned();

    // While another org answers to `acme` as its routing name, the slug is not free.
    app.create_org("globex").await;
    app.expect(
        Method::PATCH,
        "/v1/orgs/globex",
        Some(json!({"routing_name": "acme"})),
        StatusCode::OK,
    )
    .await;
    app.expect(
        Method::POST,
        &format!("/v1/admin/archives/{id}/restore"),
        None,
        StatusCode::CONFLICT,
    )
    .await;
    app.expect(
        Method::PATCH,
        "/v1/orgs/globex",
        Some(json!({"routing_name": null})),
        StatusCode::OK,
    )
    .await;

    let restored = app
        .expect(
            Method::POST,
            &format!("/v1/admin/archives/{id}/restore"),
            None,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(restored["org"], "acme");
    assert_eq!(restored["org_id"], acme.as_str());
    assert!(
        list(&app).await.is_empty(),
        "a restored archive is consumed"
    );
    assert_eq!(org_id(&app, "acme").await, acme);
    let token = app.token_ok(&credential).await;
    assert_eq!(token["plugin_set"]["digest"], set["digest"], "{token}");
    let shown = app.expect(Method::GET, env_set, None, StatusCode::OK).await;
    assert_eq!(shown["digest"], set["digest"]);
    let bindings = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/rbac/bindings",
            None,
            StatusCode::OK,
        )
        .await;
    assert!(
        bindings.to_string().contains("alice@acme.com"),
        "{bindings}"
    );
    let report = verify(&app, "acme").await;
    assert_eq!(report["ok"], true, "{report}");
    let chain = entries(&app, "acme", "").await;
    let actions: Vec<&str> = chain.iter().map(|r| r.entry.action.as_str()).collect();
    assert!(actions.contains(&"org.delete"), "{actions:?}");
    assert_eq!(actions.last(), Some(&"archive.restore"));

    // Refused once the slug is taken again.
    delete_org(&app, "acme").await;
    app.create_org("acme").await;
    let id = list(&app).await[0]["id"].as_str().expect("id").to_owned();
    let (status, body) = app
        .send(
            Method::POST,
            &format!("/v1/admin/archives/{id}/restore"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(list(&app).await.len(), 1, "the refused archive is kept");
}

async fn a_restore_after_the_retention_is_refused_even_before_the_purge(backend: Backend) {
    let clock = Arc::new(ManualClock::new(now()));
    let app = spawn_app_full(
        backend,
        |settings| settings.archive_purge_interval = Duration::from_secs(3_600),
        Some(clock.clone()),
    )
    .await;
    app.gateway("acme").await;
    delete_org(&app, "acme").await;
    let id = list(&app).await[0]["id"].as_str().expect("id").to_owned();
    clock.advance(30 * DAY + 1);
    let (status, body) = app
        .send(
            Method::POST,
            &format!("/v1/admin/archives/{id}/restore"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("retention"), "{body}");
    assert_eq!(list(&app).await.len(), 1, "still readable until the purge");
}
