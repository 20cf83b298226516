//! Registering a fleet: `POST …/gateways/batch` registers up to 1,000 gateways of one
//! environment at once, all or none, each with its own credential shown once and its own
//! audit entry.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, assert_error, on_both_backends, spawn_app, split};
use crate::rbac::{grant, user_token};

on_both_backends!(
    a_batch_registers_every_gateway_with_its_own_credential,
    a_batch_is_all_or_nothing,
    who_may_register_a_batch_follows_the_role_table,
);

const BATCH: &str = "/v1/orgs/acme/workspaces/main/environments/prod/gateways/batch";

fn names(range: std::ops::Range<usize>) -> Value {
    let gateways: Vec<Value> = range
        .map(|i| json!({"name": format!("edge-{i:05}")}))
        .collect();
    json!({ "gateways": gateways })
}

async fn a_batch_registers_every_gateway_with_its_own_credential(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await; // max_gateways 10, one used
    let body = app
        .expect(Method::POST, BATCH, Some(names(0..9)), StatusCode::CREATED)
        .await;
    let gateways = body["gateways"].as_array().expect("gateways");
    assert_eq!(gateways.len(), 9);
    let mut credentials: Vec<&str> = gateways
        .iter()
        .map(|g| g["credential"].as_str().expect("credential shown once"))
        .collect();
    credentials.sort_unstable();
    credentials.dedup();
    assert_eq!(credentials.len(), 9, "each gateway has its own credential");
    for (i, gateway) in gateways.iter().enumerate() {
        assert_eq!(gateway["name"], format!("edge-{i:05}"));
        let token = app
            .token_ok(gateway["credential"].as_str().expect("credential"))
            .await;
        assert!(token["token"].is_string(), "{token}");
    }
    // Listed like one-by-one registrations, never with a credential; one audit entry each.
    let listed = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/workspaces/main/environments/prod/gateways",
            None,
            StatusCode::OK,
        )
        .await;
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), 10);
    assert!(listed.iter().all(|g| g.get("credential").is_none()));
    let audit = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/audit?action=gateway.register&limit=100",
            None,
            StatusCode::OK,
        )
        .await;
    let entries = audit["entries"]
        .as_array()
        .or(audit.as_array())
        .expect("entries");
    assert_eq!(entries.len(), 10, "{audit}");
}

async fn a_batch_is_all_or_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await; // max_gateways 10, one used
    let (status, body) = app.send(Method::POST, BATCH, Some(names(0..10))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, "quota_exceeded");
    let listed = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/workspaces/main/environments/prod/gateways",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        listed.as_array().expect("a list").len(),
        1,
        "none registered"
    );

    for (body, why) in [
        (json!({"gateways": []}), "empty"),
        (names(0..1_001), "too many"),
        (
            json!({"gateways": [{"name": "ok"}, {"name": ""}]}),
            "a bad name",
        ),
        (json!({"names": ["a"]}), "unknown field"),
    ] {
        let (status, answer) = app.send(Method::POST, BATCH, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {answer}");
    }
    let (status, _) = app
        .send(
            Method::POST,
            "/v1/orgs/acme/workspaces/main/environments/nope/gateways/batch",
            // Past the quota too: a missing environment is 404 first.
            Some(names(0..10)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn who_may_register_a_batch_follows_the_role_table(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    app.gateway("globex").await;
    app.set_license(
        "acme",
        json!({"tier": "enterprise", "limits": {"max_gateways": 100}, "valid_for_days": 30}),
    )
    .await;
    app.expect(
        Method::POST,
        "/v1/orgs/acme/workspaces",
        Some(json!({"slug": "data"})),
        StatusCode::CREATED,
    )
    .await;
    grant(&app, "acme", "admin@acme.com", "admin", json!({})).await;
    grant(
        &app,
        "acme",
        "op@acme.com",
        "operator",
        json!({"workspace": "main"}),
    )
    .await;
    grant(
        &app,
        "acme",
        "other-op@acme.com",
        "operator",
        json!({"workspace": "data"}),
    )
    .await;
    grant(
        &app,
        "acme",
        "viewer@acme.com",
        "viewer",
        json!({"workspace": "main", "environment": "prod"}),
    )
    .await;
    grant(&app, "globex", "admin@globex.com", "admin", json!({})).await;
    let mut callers = vec![(
        "global admin",
        Some(app.admin_token.clone()),
        StatusCode::CREATED,
    )];
    for (email, org, expected) in [
        ("admin@acme.com", "acme", StatusCode::CREATED),
        ("op@acme.com", "acme", StatusCode::CREATED),
        ("other-op@acme.com", "acme", StatusCode::FORBIDDEN),
        ("viewer@acme.com", "acme", StatusCode::FORBIDDEN),
        // Another org's admin learns nothing: the uniform 404.
        ("admin@globex.com", "globex", StatusCode::NOT_FOUND),
    ] {
        callers.push((email, Some(user_token(&app, org, email).await), expected));
    }
    callers.push(("anonymous", None, StatusCode::UNAUTHORIZED));
    for (i, (who, token, expected)) in callers.into_iter().enumerate() {
        // Each caller asks for names of its own: names are unique per environment.
        let mut request = app
            .client
            .post(format!("{}{BATCH}", app.address))
            .json(&names(i * 2..i * 2 + 2));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let (status, body) = split(request.send().await.expect("sent")).await;
        assert_eq!(status, expected, "{who}: {body}");
    }
}
