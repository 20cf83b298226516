//! Every list route of the management API pages: `?limit=` (1-1000, default 100) and an
//! opaque `?cursor=` from the previous page's `x-next-cursor` header (absent on the last
//! page). Walking pages of 2 yields every item exactly once, in the list's order; a bad
//! limit or a cursor that is garbled or from another route is 400, never 500.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, on_both_backends, spawn_app, split};
use crate::rbac::{grant, user_token};

on_both_backends!(
    list_routes_walk_every_item_once_in_pages_of_two,
    bad_limits_and_foreign_or_garbled_cursors_are_refused,
);

const NEXT: &str = "x-next-cursor";

/// One page: status, body and the next cursor.
async fn page(app: &TestApp, path: &str, query: &str) -> (StatusCode, Value, Option<String>) {
    let separator = if path.contains('?') { '&' } else { '?' };
    let response = app
        .admin(Method::GET, &format!("{path}{separator}{query}"))
        .send()
        .await
        .expect("sent");
    let next = response
        .headers()
        .get(NEXT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, body) = split(response).await;
    (status, body, next)
}

/// Walks `path` in pages of 2; returns the items and the number of pages.
async fn walk(app: &TestApp, path: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..100 {
        let query = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".to_owned(),
        };
        let (status, body, next) = page(app, path, &query).await;
        assert_eq!(status, StatusCode::OK, "{path}?{query} → {body}");
        let got = body.as_array().expect("a JSON array");
        assert!(got.len() <= 2, "{path}: a page of {} items", got.len());
        items.extend(got.iter().cloned());
        match next {
            Some(next) => cursor = Some(next),
            None => return (items, pages),
        }
    }
    panic!("{path}: more than 100 pages");
}

async fn whole(app: &TestApp, path: &str) -> Vec<Value> {
    let (status, body, next) = page(app, path, "limit=1000").await;
    assert_eq!(status, StatusCode::OK, "{path} → {body}");
    assert_eq!(next, None, "{path}: everything fits one page of 1000");
    body.as_array().expect("a JSON array").clone()
}

async fn populate(app: &TestApp) -> Vec<String> {
    for org in ["acme", "b-org", "c-org", "d-org", "e-org"] {
        app.create_org(org).await;
    }
    app.set_license("acme", json!({"tier": "enterprise", "valid_for_days": 30}))
        .await;
    for ws in ["w1", "w2", "w3", "w4", "w5"] {
        let body = json!({"slug": ws});
        app.expect(
            Method::POST,
            "/v1/orgs/acme/workspaces",
            Some(body),
            StatusCode::CREATED,
        )
        .await;
    }
    for env in ["e1", "e2", "e3", "e4", "e5"] {
        let body = json!({"slug": env});
        let path = "/v1/orgs/acme/workspaces/w1/environments";
        app.expect(Method::POST, path, Some(body), StatusCode::CREATED)
            .await;
    }
    for gateway in ["g1", "g2", "g3", "g4", "g5"] {
        let body = json!({"name": gateway});
        let path = "/v1/orgs/acme/workspaces/w1/environments/e1/gateways";
        app.expect(Method::POST, path, Some(body), StatusCode::CREATED)
            .await;
    }
    for n in 1..=5 {
        user_token(app, "acme", "alice@acme.test").await;
        let bound = grant(app, "acme", &format!("u{n}@acme.test"), "admin", json!({})).await;
        assert_eq!(bound["role"], "admin", "{bound}");
        let body = json!({"name": format!("key {n}"), "org": "acme"});
        app.expect(
            Method::POST,
            "/v1/admin/tokens",
            Some(body),
            StatusCode::CREATED,
        )
        .await;
    }
    vec![
        "/v1/orgs".to_owned(),
        "/v1/orgs/acme/workspaces".to_owned(),
        "/v1/orgs/acme/workspaces/w1/environments".to_owned(),
        "/v1/orgs/acme/workspaces/w1/environments/e1/gateways".to_owned(),
        "/v1/orgs/acme/users/alice@acme.test/tokens".to_owned(),
        "/v1/orgs/acme/rbac/bindings".to_owned(),
        "/v1/admin/tokens".to_owned(),
    ]
}

async fn list_routes_walk_every_item_once_in_pages_of_two(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in populate(&app).await {
        let all = whole(&app, &path).await;
        assert!(all.len() >= 5, "{path}: {}", all.len());
        let (walked, pages) = walk(&app, &path).await;
        assert_eq!(walked, all, "{path}: the pages differ from the whole list");
        assert_eq!(pages, all.len().div_ceil(2), "{path}");
        let ids: std::collections::BTreeSet<String> =
            walked.iter().map(|item| item["id"].to_string()).collect();
        assert_eq!(ids.len(), walked.len(), "{path}: an item came twice");
    }
    let slugs: Vec<Value> = whole(&app, "/v1/orgs")
        .await
        .iter()
        .map(|org| org["slug"].clone())
        .collect();
    assert_eq!(
        slugs,
        ["acme", "b-org", "c-org", "d-org", "e-org"].map(Value::from)
    );
    let (status, body, next) = page(&app, "/v1/orgs", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().map(Vec::len), Some(5), "default limit 100");
    assert_eq!(next, None);
}

async fn bad_limits_and_foreign_or_garbled_cursors_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let paths = populate(&app).await;
    let (_, _, orgs_cursor) = page(&app, "/v1/orgs", "limit=1").await;
    let orgs_cursor = orgs_cursor.expect("a next cursor after one of five orgs");
    let (_, _, ws_cursor) = page(&app, "/v1/orgs/acme/workspaces", "limit=1").await;
    let ws_cursor = ws_cursor.expect("a next cursor after one of five workspaces");
    for path in &paths {
        let foreign = if path == "/v1/orgs" {
            &ws_cursor
        } else {
            &orgs_cursor
        };
        for query in [
            "limit=0".to_owned(),
            "limit=1001".to_owned(),
            "limit=-1".to_owned(),
            "limit=two".to_owned(),
            "cursor=!!!".to_owned(),
            "cursor=AAAA".to_owned(),
            "cursor=eyJyIjoxfQ".to_owned(),
            format!("cursor={}", "A".repeat(5000)),
            format!("cursor={foreign}"),
        ] {
            let (status, body, _) = page(&app, path, &query).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{path}?{query:.60} → {body}"
            );
            assert_error(&body, "invalid_request");
        }
    }
}
