//! Input rules at every create and update: slugs (no dash at either end, reserved org
//! names), free text people read (no bidirectional, invisible or control characters) and
//! one bound on a license's end however it is given.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, on_both_backends, spawn_app};

on_both_backends!(
    slugs_with_a_dash_at_either_end_or_reserved_org_names_are_refused,
    display_texts_with_bidi_invisible_or_control_characters_are_refused,
    licenses_ending_past_the_longest_length_are_refused_however_given,
);

async fn refused(app: &TestApp, method: Method, path: &str, body: Value, needle: &str) {
    let (status, answer) = app.send(method, path, Some(body.clone())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body} → {answer}");
    assert_error(&answer, "invalid_request");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{message:?} should name {needle:?}"
    );
}

async fn slugs_with_a_dash_at_either_end_or_reserved_org_names_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    for slug in ["acme-", "-acme", "admin", "api", "console", "www", "status"] {
        let body = json!({"slug": slug, "display_name": "X"});
        refused(&app, Method::POST, "/v1/orgs", body, "slug").await;
    }
    app.create_org("acme").await;
    for slug in ["main-", "-main"] {
        let body = json!({"slug": slug});
        refused(&app, Method::POST, "/v1/orgs/acme/workspaces", body, "slug").await;
    }
    // Reserved names are host names of orgs only: a workspace or environment may use them.
    app.expect(
        Method::POST,
        "/v1/orgs/acme/workspaces",
        Some(json!({"slug": "api"})),
        StatusCode::CREATED,
    )
    .await;
    refused(
        &app,
        Method::POST,
        "/v1/orgs/acme/workspaces/api/environments",
        json!({"slug": "prod-"}),
        "slug",
    )
    .await;
    app.expect(
        Method::POST,
        "/v1/orgs/acme/workspaces/api/environments",
        Some(json!({"slug": "www"})),
        StatusCode::CREATED,
    )
    .await;
}

async fn display_texts_with_bidi_invisible_or_control_characters_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    let gateways = "/v1/orgs/acme/workspaces/main/environments/prod/gateways";
    for c in [
        '\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{200B}',
        '\u{200D}', '\u{FEFF}', '\u{0007}',
    ] {
        let text = format!("ev{c}il");
        let org = json!({"slug": "other", "display_name": text});
        refused(&app, Method::POST, "/v1/orgs", org, "display_name").await;
        let patch = json!({"display_name": text});
        refused(&app, Method::PATCH, "/v1/orgs/acme", patch, "display_name").await;
        let gateway = json!({"name": text});
        refused(&app, Method::POST, gateways, gateway, "name").await;
        let token = json!({"name": text});
        let path = "/v1/orgs/acme/users/alice@acme.test/tokens";
        refused(&app, Method::POST, path, token, "name").await;
        let admin_token = json!({"name": text, "org": "acme"});
        refused(&app, Method::POST, "/v1/admin/tokens", admin_token, "name").await;
        let impersonation = json!({"org": "acme", "minutes": 5, "reason": text});
        refused(
            &app,
            Method::POST,
            "/v1/admin/impersonations",
            impersonation,
            "reason",
        )
        .await;
    }
    let (status, org) = app.send(Method::GET, "/v1/orgs/acme", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        org["display_name"], "Org acme",
        "a refused update changed the org"
    );
    app.expect(
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"display_name": "Acmé — Zürich 日本"})),
        StatusCode::OK,
    )
    .await;
}

async fn licenses_ending_past_the_longest_length_are_refused_however_given(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_org("acme").await;
    let path = "/v1/orgs/acme/license";
    for license in [
        json!({"tier": "team", "valid_until": "9999-12-31T00:00:00Z"}),
        json!({"tier": "team", "valid_until": "2300-01-01T00:00:00Z"}),
        json!({"tier": "team", "valid_from": "9000-01-01T00:00:00Z", "valid_for_days": 30}),
        json!({"tier": "team", "valid_for_days": 36_501}),
    ] {
        refused(&app, Method::PUT, path, license, "valid").await;
    }
    for license in [
        json!({"tier": "team", "valid_for_days": 36_500}),
        json!({"tier": "team", "valid_until": "2100-01-01T00:00:00Z"}),
    ] {
        app.expect(Method::PUT, path, Some(license), StatusCode::OK)
            .await;
    }
}
