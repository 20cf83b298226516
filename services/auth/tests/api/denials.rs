//! Refused management requests are counted by reason (no org label), and a caller of one
//! org refused on another org's routes counts as a cross-tenant probe. The log budget that
//! bounds their lines is unit-tested with the middleware (`http::denials`).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, TestApp, on_both_backends, spawn_app};
use crate::rbac::{call, grant, user_token};

on_both_backends!(
    refused_requests_are_counted_by_reason_without_naming_orgs,
    a_caller_refused_on_another_orgs_routes_raises_the_probe_metric,
);

/// The value of one series on the metrics page (0 when absent).
fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|number| number.trim().parse().ok())
        .unwrap_or(0.0)
}

fn denied(page: &str, reason: &str) -> f64 {
    value(
        page,
        &format!("mcpg_denied_requests_total{{reason=\"{reason}\"}}"),
    )
}

const PROBES: &str = "mcpg_cross_tenant_probes_total";

/// An org with an admin; the admin's token.
async fn org_with_admin(app: &TestApp, org: &str) -> String {
    app.gateway(org).await;
    let admin = format!("admin@{org}.com");
    grant(app, org, &admin, "admin", json!({})).await;
    user_token(app, org, &admin).await
}

async fn refused_requests_are_counted_by_reason_without_naming_orgs(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = org_with_admin(&app, "acme").await;
    let stranger = user_token(&app, "acme", "stranger@acme.com").await;
    let before = app.scrape().await;

    let anonymous = app
        .client
        .get(format!("{}/v1/orgs/acme/workspaces", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = call(&app, "mcpg_at_not-a-token", Method::GET, "/v1/orgs", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body = Some(json!({"slug": "refused", "display_name": "Refused"}));
    let (status, _) = call(&app, &admin, Method::POST, "/v1/orgs", body).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only a global admin creates orgs"
    );
    let (status, _) = call(
        &app,
        &stranger,
        Method::GET,
        "/v1/orgs/acme/workspaces",
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a user without a binding sees no org"
    );
    // Not an access refusal: a workspace that does not exist.
    let path = "/v1/orgs/acme/workspaces/no-such-workspace/environments";
    let (status, _) = call(&app, &admin, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let after = app.scrape().await;
    for (reason, at_least) in [
        ("unauthenticated", 2.0),
        ("forbidden", 1.0),
        ("org_not_found", 1.0),
    ] {
        let grew = denied(&after, reason) - denied(&before, reason);
        assert!(grew >= at_least, "{reason}: grew by {grew}");
    }
    assert!(after.contains("# HELP mcpg_denied_requests_total"));
    assert!(after.contains("# TYPE mcpg_denied_requests_total counter"));
    let series: Vec<_> = after
        .lines()
        .filter(|line| line.starts_with("mcpg_denied_requests_total"))
        .collect();
    assert!(
        series.iter().all(|line| !line.contains("org=")),
        "no org label: {series:?}"
    );
}

async fn a_caller_refused_on_another_orgs_routes_raises_the_probe_metric(backend: Backend) {
    let app = spawn_app(backend).await;
    let acme_admin = org_with_admin(&app, "acme").await;
    org_with_admin(&app, "globex").await;
    let before = app.scrape().await;

    for path in [
        "/v1/orgs/globex/workspaces",
        "/v1/orgs/globex",
        "/v1/orgs/no-such-org/workspaces",
    ] {
        let (status, _) = call(&app, &acme_admin, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let after_probes = app.scrape().await;
    let grew = value(&after_probes, PROBES) - value(&before, PROBES);
    assert!(grew >= 3.0, "probes grew by {grew}");
    assert!(after_probes.contains(&format!("# HELP {PROBES}")));
    assert!(
        denied(&after_probes, "org_not_found") - denied(&before, "org_not_found") >= 3.0,
        "a hidden org's 404 counts as denied"
    );
}
