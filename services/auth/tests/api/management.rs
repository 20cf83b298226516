//! The management API: orgs, licenses, workspaces, environments, gateways, tokens, auth.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, assert_error, on_both_backends, spawn_app};

on_both_backends!(tenant_resources_can_be_created_listed_and_deleted);

async fn tenant_resources_can_be_created_listed_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    let (status, body) = app
        .send(
            Method::POST,
            "/v1/orgs",
            Some(json!({"slug": "acme", "display_name": "Again"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&body, "conflict");
    let orgs = app
        .expect(Method::GET, "/v1/orgs", None, StatusCode::OK)
        .await;
    assert_eq!(orgs.as_array().map(Vec::len), Some(1));
    let org = app
        .expect(
            Method::PATCH,
            "/v1/orgs/acme",
            Some(json!({"display_name": "ACME Corp"})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(org["display_name"], "ACME Corp");
    assert_eq!(org["status"], "active");

    let license = app
        .set_license("acme", json!({"tier": "enterprise", "entitlements_remove": ["plugin:policy.cedar"], "limits": {"rps": 1000}, "valid_for_days": 365}))
        .await;
    assert_eq!(license["tier"], "enterprise");
    assert_eq!(license["revision"], 2);
    assert_eq!(license["status"], "active");
    assert!(
        !license["entitlements"]
            .as_array()
            .expect("list")
            .contains(&json!("plugin:policy.cedar"))
    );

    app.expect(
        Method::POST,
        "/v1/orgs/acme/workspaces/main/environments",
        Some(json!({"slug": "dev"})),
        StatusCode::CREATED,
    )
    .await;
    let envs = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/workspaces/main/environments",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(envs.as_array().map(Vec::len), Some(2));
    let gateways = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/workspaces/main/environments/prod/gateways",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(gateways[0]["name"], "gw-1");
    assert!(
        gateways[0].get("credential").is_none(),
        "credential is shown only once"
    );
    assert!(
        gateways[0]["credential_prefix"]
            .as_str()
            .expect("prefix")
            .starts_with("mcpg_gw_")
    );

    app.expect(
        Method::DELETE,
        "/v1/orgs/acme/workspaces/main/environments/dev",
        None,
        StatusCode::OK,
    )
    .await;
    app.expect(
        Method::DELETE,
        "/v1/orgs/acme/workspaces/main?cascade=true",
        None,
        StatusCode::OK,
    )
    .await;
    let (status, body) = app
        .send(
            Method::GET,
            "/v1/orgs/acme/workspaces/main/environments",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    app.expect(Method::DELETE, "/v1/orgs/acme", None, StatusCode::OK)
        .await;
    app.expect(Method::GET, "/v1/orgs/acme", None, StatusCode::NOT_FOUND)
        .await;
}

#[tokio::test]
async fn management_requires_a_valid_api_token() {
    let app = spawn_app(Backend::Sqlite).await;
    for auth in [
        None,
        Some("Bearer nope"),
        Some("Basic abc"),
        Some("Bearer mcpg_pat_aaaa"),
    ] {
        let mut request = app.client.get(format!("{}/v1/orgs", app.address));
        if let Some(value) = auth {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = response.json().await.expect("json error");
        assert_error(&body, "unauthenticated");
    }
}

#[tokio::test]
async fn org_scoped_tokens_see_only_their_own_org() {
    let app = spawn_app(Backend::Sqlite).await;
    app.gateway("acme").await;
    app.create_org("globex").await;
    let token = app
        .expect(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"name": "acme admin", "org": "acme"})),
            StatusCode::CREATED,
        )
        .await;
    let token = token["token"]
        .as_str()
        .expect("token shown once")
        .to_owned();
    let get = |path: &str| {
        app.client
            .get(format!("{}{path}", app.address))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(
        get("/v1/orgs/acme/workspaces")
            .await
            .expect("sent")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        get("/v1/orgs/globex/workspaces")
            .await
            .expect("sent")
            .status(),
        StatusCode::NOT_FOUND
    );
    let orgs: serde_json::Value = get("/v1/orgs")
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(orgs.as_array().map(Vec::len), Some(1));
    assert_eq!(
        get("/v1/admin/keys").await.expect("sent").status(),
        StatusCode::FORBIDDEN
    );
}

/// The value of one series in a Prometheus text page (0 when absent).
fn series(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn token_requests_refused_before_the_issuer_are_counted() {
    let app = spawn_app(Backend::Sqlite).await;
    let credential = app.gateway("acme").await;
    let scrape = || app.scrape();
    let invalid = "mcpg_tokens_issued_total{org=\"-\",outcome=\"invalid_credential\"}";
    let bad_body = "mcpg_tokens_issued_total{org=\"-\",outcome=\"bad_request\"}";
    let before = scrape().await;
    let post = |bearer: &str, body: &'static str| {
        app.client
            .post(format!("{}/v1/federation/token", app.address))
            .bearer_auth(bearer)
            .body(body)
            .send()
    };
    for (bearer, body, status) in [
        ("not-a-credential", "", StatusCode::UNAUTHORIZED),
        ("mcpg_gw_short", "", StatusCode::UNAUTHORIZED),
        (credential.as_str(), "[1]", StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(post(bearer, body).await.expect("sent").status(), status);
    }
    let after = scrape().await;
    // The recorder is shared by every test in this process: other tests only add.
    assert!(
        series(&after, invalid) >= series(&before, invalid) + 2.0,
        "{after}"
    );
    assert!(
        series(&after, bad_body) >= series(&before, bad_body) + 1.0,
        "{after}"
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_openapi_are_served() {
    let app = spawn_app(Backend::Sqlite).await;
    let credential = app.gateway("acme").await;
    app.token_ok(&credential).await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.address)).send();
    let health = get("/healthz").await.expect("sent");
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        health.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
    let echoed = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "req-42")
        .send()
        .await
        .expect("sent");
    assert_eq!(echoed.headers()["x-request-id"], "req-42");
    // An id too long to log and store with audit entries is replaced by a fresh one.
    let long = "r".repeat(129);
    let replaced = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", &long)
        .send()
        .await
        .expect("sent");
    let id = replaced.headers()["x-request-id"].to_str().expect("ascii");
    assert!(id != long && id.len() == 36, "{id}");
    let ready: serde_json::Value = get("/readyz")
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        ready,
        json!({
            "status": "ready",
            "database": true,
            "active_key": true,
            "certificate_valid": true,
            "change_listener": "not_applicable",
            "changes_from_other_replicas": "none: SQLite serves one replica",
            "replicas_alive": 1,
        })
    );
    let metrics = app.scrape().await;
    assert!(
        metrics.contains("mcpg_tokens_issued_total{org=\"acme\",outcome=\"issued\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mcpg_http_request_duration_seconds_bucket"),
        "latency histogram present"
    );
    assert!(metrics.contains("route=\"/v1/federation/token\""));
    let openapi = get("/openapi.yaml")
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(openapi.starts_with("openapi: 3.1"));
    assert!(openapi.contains("/v1/federation/token"));
}

on_both_backends!(admin_tokens_are_listed_without_secrets_and_revocable);

async fn admin_tokens_are_listed_without_secrets_and_revocable(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_org("acme").await;
    let second = app
        .expect(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"name": "ci"})),
            StatusCode::CREATED,
        )
        .await;
    let org_key = app
        .expect(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"name": "acme automation", "org": "acme"})),
            StatusCode::CREATED,
        )
        .await;
    let listed = app
        .expect(Method::GET, "/v1/admin/tokens", None, StatusCode::OK)
        .await;
    let listed = listed.as_array().expect("a list");
    let names: Vec<&str> = listed.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["bootstrap", "ci", "acme automation"]);
    assert_eq!(listed[2]["org"], "acme");
    assert!(listed[1]["org"].is_null());
    let text = serde_json::to_string(listed).expect("json");
    for secret in [&second["token"], &org_key["token"]] {
        assert!(
            !text.contains(secret.as_str().expect("token")),
            "a secret was listed"
        );
    }
    assert!(!text.contains("hash"), "no hash is listed: {text}");

    // Revoking works at once, is idempotent, and an unknown id is 404.
    let bootstrap_id = listed[0]["id"].as_str().expect("id").to_owned();
    let second_id = second["id"].as_str().expect("id");
    let app = &app;
    let revoke = |id: String| async move {
        app.send(Method::DELETE, &format!("/v1/admin/tokens/{id}"), None)
            .await
    };
    let ci = |token: &str| {
        app.client
            .get(format!("{}/v1/admin/keys", app.address))
            .bearer_auth(token.to_owned())
            .send()
    };
    let ci_token = second["token"].as_str().expect("token");
    assert_eq!(ci(ci_token).await.expect("sent").status(), StatusCode::OK);
    assert_eq!(revoke(second_id.to_owned()).await.0, StatusCode::NO_CONTENT);
    assert_eq!(revoke(second_id.to_owned()).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        ci(ci_token).await.expect("sent").status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = revoke("no-such-token".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");

    // The bootstrap token is now the last global admin token: revoking it would lock
    // everyone out.
    let (status, body) = revoke(bootstrap_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error(&body, "conflict");
    // An org key may always be revoked.
    let org_key_id = org_key["id"].as_str().expect("id").to_owned();
    assert_eq!(revoke(org_key_id).await.0, StatusCode::NO_CONTENT);
    let listed = app
        .expect(Method::GET, "/v1/admin/tokens", None, StatusCode::OK)
        .await;
    assert!(listed[1]["revoked_at"].is_string() && listed[2]["revoked_at"].is_string());
    assert!(listed[0]["revoked_at"].is_null());
}
