//! `GET /v1/orgs` lists exactly the orgs the caller may read: a user's own org when they
//! hold a binding anywhere in it (not only at org scope), never another org.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, on_both_backends, spawn_app};
use crate::rbac::{call, grant, user_token};

on_both_backends!(a_user_lists_their_own_org_with_a_binding_below_the_org);

async fn a_user_lists_their_own_org_with_a_binding_below_the_org(backend: Backend) {
    let app = spawn_app(backend).await;
    for org in ["acme", "other"] {
        app.create_org(org).await;
    }
    app.set_license("acme", json!({"tier": "team", "valid_for_days": 30}))
        .await;
    app.expect(
        Method::POST,
        "/v1/orgs/acme/workspaces",
        Some(json!({"slug": "platform"})),
        StatusCode::CREATED,
    )
    .await;
    let alice = user_token(&app, "acme", "alice@acme.test").await;
    let bound = grant(
        &app,
        "acme",
        "alice@acme.test",
        "operator",
        json!({"workspace": "platform"}),
    )
    .await;
    assert_eq!(bound["role"], "operator", "{bound}");
    let (status, orgs) = call(&app, &alice, Method::GET, "/v1/orgs", None).await;
    assert_eq!(status, StatusCode::OK);
    let slugs: Vec<&str> = orgs
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|o| o["slug"].as_str())
        .collect();
    assert_eq!(slugs, ["acme"], "{orgs}");
    let (status, _) = call(&app, &alice, Method::GET, "/v1/orgs/acme", None).await;
    assert_eq!(status, StatusCode::OK, "a listed org can be read");

    // A user without any binding sees no org, in the list as on the org itself.
    let bob = user_token(&app, "acme", "bob@acme.test").await;
    let (_, orgs) = call(&app, &bob, Method::GET, "/v1/orgs", None).await;
    assert_eq!(orgs, json!([]));
    let (status, _) = call(&app, &bob, Method::GET, "/v1/orgs/acme", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
