//! Tenant resolution (path, header, credential; uniform 404; suspended and ended trials),
//! quotas under concurrency, and deletes that refuse children unless cascading.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, assert_error, on_both_backends, spawn_app, spawn_app_with, split};
use crate::rbac::{call, grant, user_token};

on_both_backends!(
    tenants_resolve_from_path_header_and_credential_without_enumeration,
    concurrent_creates_never_pass_the_license_quota,
    parents_with_children_are_deleted_only_with_cascade_and_leave_an_export,
);

async fn tenants_resolve_from_path_header_and_credential_without_enumeration(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    app.gateway("globex").await;
    grant(&app, "acme", "alice@acme.com", "admin", json!({})).await;
    let alice = user_token(&app, "acme", "alice@acme.com").await;
    let stranger = user_token(&app, "acme", "stranger@acme.com").await;

    let (missing, missing_body) = call(
        &app,
        &alice,
        Method::GET,
        "/v1/orgs/no-such-org/workspaces",
        None,
    )
    .await;
    let (other, other_body) = call(
        &app,
        &alice,
        Method::GET,
        "/v1/orgs/globex/workspaces",
        None,
    )
    .await;
    let (unbound, unbound_body) = call(
        &app,
        &stranger,
        Method::GET,
        "/v1/orgs/acme/workspaces",
        None,
    )
    .await;
    assert_eq!(missing, StatusCode::NOT_FOUND);
    assert_eq!((other, unbound), (missing, missing));
    assert_eq!(
        other_body, missing_body,
        "the same body for hidden and missing orgs"
    );
    assert_eq!(unbound_body, missing_body);

    let with_header = |org: &str| {
        app.client
            .get(format!("{}/v1/orgs/acme/workspaces", app.address))
            .bearer_auth(&alice)
            .header("x-tenant-id", org)
            .send()
    };
    let agreeing = with_header("acme").await.expect("sent");
    assert_eq!(agreeing.status(), StatusCode::OK);
    let mismatch = with_header("globex").await.expect("sent");
    assert_eq!(mismatch.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = mismatch.json().await.expect("json");
    assert_error(&body, "tenant_mismatch");

    app.expect(
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"status": "suspended"})),
        StatusCode::OK,
    )
    .await;
    let (status, body) = call(&app, &alice, Method::GET, "/v1/orgs/acme/workspaces", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "org_suspended");
    app.expect(
        Method::GET,
        "/v1/orgs/acme/workspaces",
        None,
        StatusCode::OK,
    )
    .await;

    app.expect(
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"status": "trial", "trial_expires_at": "2020-01-01T00:00:00Z"})),
        StatusCode::OK,
    )
    .await;
    let (status, body) = call(&app, &alice, Method::GET, "/v1/orgs/acme", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "trial_expired");
}

async fn concurrent_creates_never_pass_the_license_quota(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_org("acme").await;
    app.set_license(
        "acme",
        json!({"tier": "team", "limits": {"max_workspaces": 5, "max_environments": 1}, "valid_for_days": 30}),
    )
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let request = app
            .admin(Method::POST, "/v1/orgs/acme/workspaces")
            .json(&json!({"slug": format!("ws-{i}")}));
        tasks.spawn(async move { split(request.send().await.expect("sent")).await });
    }
    let answers = tasks.join_all().await;
    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 5, "exactly the quota is created");
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::FORBIDDEN, "{body}");
        assert_error(body, "quota_exceeded");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(
            message.contains("max_workspaces") && message.contains('5'),
            "{message}"
        );
    }
    let listed = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/workspaces",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(5));
    let (first, second) = (&listed[0]["slug"], &listed[1]["slug"]);
    app.expect(
        Method::POST,
        &format!(
            "/v1/orgs/acme/workspaces/{}/environments",
            first.as_str().expect("slug")
        ),
        Some(json!({"slug": "prod"})),
        StatusCode::CREATED,
    )
    .await;
    let (status, body) = app
        .send(
            Method::POST,
            &format!(
                "/v1/orgs/acme/workspaces/{}/environments",
                second.as_str().expect("slug")
            ),
            Some(json!({"slug": "prod"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "quota_exceeded");
}

async fn parents_with_children_are_deleted_only_with_cascade_and_leave_an_export(backend: Backend) {
    let app = spawn_app(backend).await;
    let credential = app.gateway("acme").await;
    let env = "/v1/orgs/acme/workspaces/main/environments/prod";
    for path in [env, "/v1/orgs/acme/workspaces/main", "/v1/orgs/acme"] {
        let (status, body) = app.send(Method::DELETE, path, None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}");
        assert_error(&body, "has_children");
    }
    let export = app
        .expect(
            Method::DELETE,
            &format!("{env}?cascade=true"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(export["kind"], "environment");
    assert_eq!(export["path"], "acme/main/prod");
    assert_eq!(export["gateways"][0]["name"], "gw-1");
    assert!(
        !export.to_string().contains(&credential),
        "an export never holds a credential"
    );
    let (status, _) = app.token(&credential).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let empty = app
        .expect(
            Method::DELETE,
            "/v1/orgs/acme/workspaces/main",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(empty["workspaces"][0]["slug"], "main");

    app.gateway("globex").await;
    grant(&app, "globex", "a@globex.com", "admin", json!({})).await;
    let export = app
        .expect(
            Method::DELETE,
            "/v1/orgs/globex?cascade=true",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(export["kind"], "org");
    assert_eq!(export["license"]["tier"], "team");
    assert_eq!(export["environments"][0]["slug"], "prod");
    assert_eq!(export["role_bindings"][0]["email"], "a@globex.com");
    app.expect(Method::GET, "/v1/orgs/globex", None, StatusCode::NOT_FOUND)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_names_the_tenant_when_subdomain_routing_is_on() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.subdomain_suffix = Some("mcpg.test".into());
    })
    .await;
    app.gateway("acme").await;
    let get = |host: &str| {
        app.admin(Method::GET, "/v1/orgs/acme/workspaces")
            .header("host", host)
            .send()
    };
    let same = get("acme.mcpg.test:8421").await.expect("sent");
    assert_eq!(same.status(), StatusCode::OK);
    let elsewhere = get("localhost").await.expect("sent");
    assert_eq!(
        elsewhere.status(),
        StatusCode::OK,
        "other hosts do not name a tenant"
    );
    let other = get("globex.mcpg.test").await.expect("sent");
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = other.json().await.expect("json");
    assert_error(&body, "tenant_mismatch");
}
