//! RBAC: every role × scope × action from one table, personal tokens, tier gating of
//! bindings by the org's own entitlements, and impersonation by a global admin.

use std::sync::Arc;

use mcpg_license_core::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, assert_error, now, on_both_backends, spawn_app, spawn_app_on_clock, split,
};

on_both_backends!(
    every_role_scope_and_action_follows_the_table,
    bindings_below_the_org_need_the_entitlement_of_their_scope,
    personal_tokens_are_shown_once_listed_and_revoked,
    impersonation_is_time_limited_and_acts_as_the_org_admin,
);

/// Sends a request with `token`; returns status and JSON body.
pub async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    split(request.send().await.expect("request sent")).await
}

/// Issues a personal token to `email` in `org` (as the global admin).
pub async fn user_token(app: &TestApp, org: &str, email: &str) -> String {
    let body = app
        .expect(
            Method::POST,
            &format!("/v1/orgs/{org}/users/{email}/tokens"),
            Some(json!({"name": "test"})),
            StatusCode::CREATED,
        )
        .await;
    body["token"].as_str().expect("token shown once").to_owned()
}

/// Binds `role` for `email` in `org` with the extra scope fields.
pub async fn grant(app: &TestApp, org: &str, email: &str, role: &str, scope: Value) -> Value {
    let mut body = json!({"email": email, "role": role});
    if let (Some(target), Some(fields)) = (body.as_object_mut(), scope.as_object()) {
        target.extend(fields.clone());
    }
    app.send(
        Method::POST,
        &format!("/v1/orgs/{org}/rbac/bindings"),
        Some(body),
    )
    .await
    .1
}

/// Creates org `acme` (Enterprise) with workspaces platform (prod, dev) and data (prod),
/// and a gateway in each environment.
async fn acme(app: &TestApp) {
    app.create_org("acme").await;
    app.set_license("acme", json!({"tier": "enterprise", "valid_for_days": 30}))
        .await;
    for (ws, envs) in [("platform", &["prod", "dev"][..]), ("data", &["prod"][..])] {
        app.expect(
            Method::POST,
            "/v1/orgs/acme/workspaces",
            Some(json!({"slug": ws})),
            StatusCode::CREATED,
        )
        .await;
        for env in envs {
            app.expect(
                Method::POST,
                &format!("/v1/orgs/acme/workspaces/{ws}/environments"),
                Some(json!({"slug": env})),
                StatusCode::CREATED,
            )
            .await;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A 2xx answer.
    Allowed,
    /// 403 forbidden.
    Denied,
    /// The uniform 404 of an org the caller may not see.
    Hidden,
    /// Allowed, but 409 has_children.
    Busy,
}
use Want::{Allowed, Busy, Denied, Hidden};

const GW: &str = "/v1/orgs/acme/workspaces";

async fn every_role_scope_and_action_follows_the_table(backend: Backend) {
    let app = spawn_app(backend).await;
    acme(&app).await;
    assert_eq!(
        grant(&app, "acme", "admin@acme.com", "admin", json!({})).await["scope"],
        "org/acme"
    );
    let op = grant(
        &app,
        "acme",
        "op@acme.com",
        "operator",
        json!({"workspace": "platform"}),
    );
    assert_eq!(op.await["scope"], "workspace/acme/platform");
    let viewer = grant(
        &app,
        "acme",
        "viewer@acme.com",
        "viewer",
        json!({"workspace": "platform", "environment": "prod"}),
    );
    assert_eq!(viewer.await["scope"], "env/acme/platform/prod");
    let principals = [
        ("global", app.admin_token.clone()),
        ("admin", user_token(&app, "acme", "admin@acme.com").await),
        ("operator", user_token(&app, "acme", "op@acme.com").await),
        ("viewer", user_token(&app, "acme", "viewer@acme.com").await),
        ("nobody", user_token(&app, "acme", "nobody@acme.com").await),
    ];
    // Columns: global, admin (org), operator (workspace platform), viewer (env
    // platform/prod), a user of the org without any binding.
    let table: Vec<(Method, String, Option<Value>, [Want; 5])> = vec![
        (
            Method::GET,
            "/v1/orgs/acme".into(),
            None,
            [Allowed, Allowed, Allowed, Allowed, Hidden],
        ),
        (
            Method::GET,
            "/v1/orgs/acme/license".into(),
            None,
            [Allowed, Allowed, Allowed, Allowed, Hidden],
        ),
        (
            Method::PUT,
            "/v1/orgs/acme/license".into(),
            Some(json!({"tier": "enterprise", "valid_for_days": 30})),
            [Allowed, Denied, Denied, Denied, Hidden],
        ),
        (
            Method::PATCH,
            "/v1/orgs/acme".into(),
            Some(json!({"display_name": "Acme"})),
            [Allowed, Denied, Denied, Denied, Hidden],
        ),
        (
            Method::PATCH,
            "/v1/orgs/acme".into(),
            Some(json!({"routing_name": "acme-{who}"})),
            [Allowed, Denied, Denied, Denied, Hidden],
        ),
        (
            Method::POST,
            format!("{GW}/platform/environments/prod/gateways/batch"),
            Some(json!({"gateways": [{"name": "{who}"}]})),
            [Allowed, Allowed, Allowed, Denied, Hidden],
        ),
        (
            Method::POST,
            GW.into(),
            Some(json!({"slug": "{who}"})),
            [Allowed, Allowed, Denied, Denied, Hidden],
        ),
        (
            Method::GET,
            GW.into(),
            None,
            [Allowed, Allowed, Allowed, Allowed, Hidden],
        ),
        (
            Method::GET,
            format!("{GW}/platform/environments"),
            None,
            [Allowed, Allowed, Allowed, Allowed, Hidden],
        ),
        (
            Method::GET,
            format!("{GW}/data/environments"),
            None,
            [Allowed, Allowed, Denied, Denied, Hidden],
        ),
        (
            Method::POST,
            format!("{GW}/platform/environments"),
            Some(json!({"slug": "{who}"})),
            [Allowed, Allowed, Denied, Denied, Hidden],
        ),
        (
            Method::GET,
            format!("{GW}/platform/environments/prod/gateways"),
            None,
            [Allowed, Allowed, Allowed, Allowed, Hidden],
        ),
        (
            Method::GET,
            format!("{GW}/platform/environments/dev/gateways"),
            None,
            [Allowed, Allowed, Allowed, Denied, Hidden],
        ),
        (
            Method::GET,
            format!("{GW}/data/environments/prod/gateways"),
            None,
            [Allowed, Allowed, Denied, Denied, Hidden],
        ),
        (
            Method::POST,
            format!("{GW}/platform/environments/prod/gateways"),
            Some(json!({"name": "gw-{who}"})),
            [Allowed, Allowed, Allowed, Denied, Hidden],
        ),
        (
            Method::POST,
            format!("{GW}/data/environments/prod/gateways"),
            Some(json!({"name": "gw-{who}"})),
            [Allowed, Allowed, Denied, Denied, Hidden],
        ),
        (
            Method::GET,
            "/v1/orgs/acme/rbac/bindings".into(),
            None,
            [Allowed, Allowed, Denied, Denied, Hidden],
        ),
        (
            Method::POST,
            "/v1/orgs/acme/rbac/bindings".into(),
            Some(json!({"email": "{who}-new@acme.com", "role": "admin"})),
            [Allowed, Allowed, Denied, Denied, Hidden],
        ),
        (
            Method::POST,
            "/v1/orgs/acme/users/new@acme.com/tokens".into(),
            Some(json!({"name": "{who}"})),
            [Allowed, Allowed, Denied, Denied, Hidden],
        ),
        (
            Method::DELETE,
            "/v1/orgs/acme/workspaces/data/environments/prod".into(),
            None,
            // Allowed for admins, who then meet the gateways registered above.
            [Busy, Busy, Denied, Denied, Hidden],
        ),
    ];
    for (method, path, body, wants) in &table {
        for ((who, token), want) in principals.iter().zip(wants) {
            let body = body
                .as_ref()
                .map(|b| serde_json::from_str(&b.to_string().replace("{who}", who)).expect("json"));
            let (status, answer) = call(&app, token, method.clone(), path, body).await;
            let got = if status.is_success() {
                Allowed
            } else if status == StatusCode::NOT_FOUND {
                assert_error(&answer, "not_found");
                Hidden
            } else if status == StatusCode::FORBIDDEN {
                assert_error(&answer, "forbidden");
                Denied
            } else if status == StatusCode::CONFLICT {
                assert_error(&answer, "has_children");
                Busy
            } else {
                panic!("{who} {method} {path}: unexpected {status} {answer}");
            };
            assert_eq!(got, *want, "{who} {method} {path}: {status} {answer}");
        }
    }
    let listed = call(&app, &principals[2].1, Method::GET, GW, None).await.1;
    let slugs: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|w| w["slug"].as_str())
        .collect();
    assert_eq!(slugs, ["platform"], "an operator lists only its workspace");
}

async fn bindings_below_the_org_need_the_entitlement_of_their_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    for (org, tier) in [("teamco", "team"), ("freeco", "free")] {
        app.create_org(org).await;
        app.set_license(org, json!({"tier": tier, "valid_for_days": 30}))
            .await;
        app.expect(
            Method::POST,
            &format!("/v1/orgs/{org}/workspaces"),
            Some(json!({"slug": "ws"})),
            StatusCode::CREATED,
        )
        .await;
        app.expect(
            Method::POST,
            &format!("/v1/orgs/{org}/workspaces/ws/environments"),
            Some(json!({"slug": "prod"})),
            StatusCode::CREATED,
        )
        .await;
        let admin = grant(&app, org, "a@x.com", "admin", json!({})).await;
        assert_eq!(
            admin["role"], "admin",
            "org bindings need no entitlement: {admin}"
        );
    }
    let ws = json!({"workspace": "ws"});
    let env = json!({"workspace": "ws", "environment": "prod"});
    let ok = grant(&app, "teamco", "b@x.com", "operator", ws.clone()).await;
    assert_eq!(ok["role"], "operator", "{ok}");
    for (org, role, scope, needed) in [
        ("teamco", "viewer", env.clone(), "feature:environment.rbac"),
        ("freeco", "operator", ws.clone(), "feature:workspace.rbac"),
        ("freeco", "viewer", env.clone(), "feature:environment.rbac"),
    ] {
        let refused = grant(&app, org, "c@x.com", role, scope).await;
        assert_error(&refused, "entitlement_required");
        let message = refused["error"]["message"].as_str().expect("message");
        assert!(message.contains(needed), "{message}");
    }
    let mismatched = grant(&app, "teamco", "d@x.com", "operator", json!({})).await;
    assert_error(&mismatched, "invalid_request");
    let twice = grant(&app, "teamco", "b@x.com", "operator", ws).await;
    assert_error(&twice, "conflict");
    let listed = app
        .expect(
            Method::GET,
            "/v1/orgs/teamco/rbac/bindings",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    app.expect(
        Method::DELETE,
        "/v1/orgs/teamco/rbac/bindings?email=b%40x.com&role=operator&workspace=ws",
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let (status, body) = app
        .send(
            Method::DELETE,
            "/v1/orgs/teamco/rbac/bindings?email=b%40x.com&role=operator&workspace=ws",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
}

async fn personal_tokens_are_shown_once_listed_and_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    acme(&app).await;
    grant(&app, "acme", "alice@acme.com", "admin", json!({})).await;
    let token = user_token(&app, "acme", "Alice@Acme.com").await;
    assert!(token.starts_with("mcpg_pat_"));
    let (status, _) = call(&app, &token, Method::GET, GW, None).await;
    assert_eq!(status, StatusCode::OK, "emails are case-insensitive");
    let listed = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/users/alice@acme.com/tokens",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed[0]["email"], "alice@acme.com");
    assert!(
        listed[0].get("token").is_none(),
        "a listing never shows the token"
    );
    assert!(!listed.to_string().contains(&token));
    let id = listed[0]["id"].as_str().expect("id");
    app.expect(
        Method::DELETE,
        &format!("/v1/orgs/acme/users/alice@acme.com/tokens/{id}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let (status, body) = call(&app, &token, Method::GET, GW, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthenticated");
    let (status, body) = app
        .send(
            Method::GET,
            "/v1/orgs/acme/users/nobody@acme.com/tokens",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    let (status, body) = app
        .send(
            Method::POST,
            "/v1/orgs/acme/users/not-an-email/tokens",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_request");
}

async fn impersonation_is_time_limited_and_acts_as_the_org_admin(backend: Backend) {
    let clock = Arc::new(ManualClock::new(now()));
    let app = spawn_app_on_clock(backend, clock.clone()).await;
    acme(&app).await;
    app.create_org("globex").await;
    let path = "/v1/admin/impersonations";
    for bad in [
        json!({"org": "acme", "minutes": 61, "reason": "support"}),
        json!({"org": "acme", "minutes": 0, "reason": "support"}),
        json!({"org": "acme", "minutes": 10, "reason": ""}),
    ] {
        let (status, body) = app.send(Method::POST, path, Some(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let session = app
        .expect(
            Method::POST,
            path,
            Some(json!({"org": "acme", "minutes": 10, "reason": "ticket 42"})),
            StatusCode::CREATED,
        )
        .await;
    let token = session["token"].as_str().expect("token");
    let ws = json!({"slug": "support"});
    assert_eq!(
        call(&app, token, Method::POST, GW, Some(ws)).await.0,
        StatusCode::CREATED
    );
    let license = json!({"tier": "free", "valid_for_days": 1});
    let (status, body) = call(
        &app,
        token,
        Method::PUT,
        "/v1/orgs/acme/license",
        Some(license),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "license writes stay with the vendor"
    );
    assert_error(&body, "forbidden");
    let (status, _) = call(&app, token, Method::GET, "/v1/orgs/globex", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let again = json!({"org": "globex", "minutes": 5, "reason": "chained"});
    let (status, _) = call(&app, token, Method::POST, path, Some(again)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an impersonation cannot start another"
    );
    clock.advance(10 * 60 + 1);
    let (status, body) = call(&app, token, Method::GET, GW, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "expired after its minutes"
    );
    assert_error(&body, "unauthenticated");
}
