//! Separate budgets: gateways' token requests are not charged to the org's management
//! budget, and one principal is held to its share of that budget, so a viewer hammering
//! reads starves neither its org's gateways nor the org's other operators.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::rbac::{call, grant, user_token};

const ORG_RPS: u32 = 6;

/// Org `acme` (Enterprise) with a gateway and a viewer on `main/prod`; returns the
/// gateway credential and the viewer's token.
async fn acme_with_viewer(app: &TestApp) -> (String, String) {
    let gateway = app.gateway("acme").await;
    let enterprise =
        json!({"tier": "enterprise", "limits": {"max_gateways": 10}, "valid_for_days": 30});
    app.set_license("acme", enterprise).await;
    let viewer = user_token(app, "acme", "vera@acme.test").await;
    let env = json!({"workspace": "main", "environment": "prod"});
    let bound = grant(app, "acme", "vera@acme.test", "viewer", env).await;
    assert_eq!(bound["role"], "viewer", "{bound}");
    (gateway, viewer)
}

/// Sends `count` reads as `token` as fast as possible; returns how many were refused.
async fn hammer(app: &TestApp, token: &str, count: usize) -> usize {
    let mut refused = 0;
    for _ in 0..count {
        let (status, _) = call(app, token, Method::GET, "/v1/orgs/acme/workspaces", None).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    refused
}

fn limited(app_rps: u32) -> impl FnOnce(&mut mcpg_auth::Settings) {
    move |settings| {
        settings.rate_limits.org_rps = app_rps;
        settings.rate_limits.admin_rps = 0;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_hammering_reads_does_not_make_its_gateways_token_requests_429() {
    let app = spawn_app_with(Backend::Sqlite, limited(ORG_RPS)).await;
    let (gateway, viewer) = acme_with_viewer(&app).await;
    let refused = hammer(&app, &viewer, 40).await;
    assert!(refused > 20, "the viewer is limited: {refused}/40 refused");
    // While the viewer's and the org's management budget is spent, the gateway still gets
    // its tokens: they have a budget of their own.
    for _ in 0..ORG_RPS {
        let (status, body) = app.token(&gateway).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_principal_is_held_to_its_share_while_another_of_the_org_gets_through() {
    let app = spawn_app_with(Backend::Sqlite, limited(ORG_RPS)).await;
    let (_, viewer) = acme_with_viewer(&app).await;
    let admin_key = app
        .expect(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"name": "acme key", "org": "acme"})),
            StatusCode::CREATED,
        )
        .await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    // The viewer alone gets at most its share of the burst (half of it by default).
    let mut allowed = 0;
    for _ in 0..ORG_RPS {
        let (status, _) = call(&app, &viewer, Method::GET, "/v1/orgs/acme/workspaces", None).await;
        if status == StatusCode::OK {
            allowed += 1;
        }
    }
    assert!(
        allowed <= ORG_RPS.div_ceil(2),
        "the viewer got {allowed} of a burst of {ORG_RPS}"
    );
    // The org's admin key still gets through, inside the same org budget.
    let (status, body) = call(
        &app,
        &admin_key,
        Method::GET,
        "/v1/orgs/acme/workspaces",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
