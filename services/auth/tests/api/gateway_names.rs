//! A gateway's name is unique among the unrevoked gateways of its environment (409
//! otherwise, naming the name), so it can stand for the gateway: `GET …/gateways?name=`
//! finds it and `GET …/gateways/{id}` shows one. Revoking frees the name for a
//! replacement; another environment may use the same name.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, assert_error, on_both_backends, spawn_app};

on_both_backends!(
    a_second_gateway_of_the_same_name_is_refused,
    a_batch_is_refused_whole_for_a_taken_or_repeated_name,
    a_revoked_gateway_frees_its_name,
    a_gateway_is_found_by_name_and_shown_by_id,
);

const GWS: &str = "/v1/orgs/acme/workspaces/main/environments/prod/gateways";

async fn a_second_gateway_of_the_same_name_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await; // registers gw-1
    let (status, body) = app
        .send(Method::POST, GWS, Some(json!({"name": " gw-1 "})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error(&body, "conflict");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("\"gw-1\"") && message.contains("main/prod"),
        "{message}"
    );
    // Nothing was written: still one gateway, one registration in the chain.
    let listed = app.expect(Method::GET, GWS, None, StatusCode::OK).await;
    assert_eq!(listed.as_array().expect("list").len(), 1, "{listed}");
    // The same name in another environment is another gateway.
    app.expect(
        Method::POST,
        "/v1/orgs/acme/workspaces/main/environments",
        Some(json!({"slug": "staging"})),
        StatusCode::CREATED,
    )
    .await;
    app.expect(
        Method::POST,
        "/v1/orgs/acme/workspaces/main/environments/staging/gateways",
        Some(json!({"name": "gw-1"})),
        StatusCode::CREATED,
    )
    .await;
}

async fn a_batch_is_refused_whole_for_a_taken_or_repeated_name(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await; // registers gw-1
    let batch = format!("{GWS}/batch");
    let (status, body) = app
        .send(
            Method::POST,
            &batch,
            Some(json!({"gateways": [{"name": "gw-2"}, {"name": "gw-1"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("a gateway named \"gw-1\" is already registered")),
        "{body}"
    );
    let (status, body) = app
        .send(
            Method::POST,
            &batch,
            Some(json!({"gateways": [{"name": "gw-3"}, {"name": "gw-2"}, {"name": "gw-3"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"gw-3\" more than once")),
        "{body}"
    );
    // All or none: gw-2 was registered by neither.
    let listed = app.expect(Method::GET, GWS, None, StatusCode::OK).await;
    assert_eq!(listed.as_array().expect("list").len(), 1, "{listed}");
}

async fn a_revoked_gateway_frees_its_name(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    let (old_credential, old_id) = app.register_gateway("acme", "edge").await;
    app.expect(
        Method::DELETE,
        &format!("{GWS}/{old_id}"),
        None,
        StatusCode::OK,
    )
    .await;
    let (credential, id) = app.register_gateway("acme", "edge").await;
    assert_ne!(id, old_id);
    assert!(app.token_ok(&credential).await["token"].is_string());
    let (status, _) = app.token(&old_credential).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Both are listed under the name: the revoked one first, then its replacement.
    let named = app
        .expect(
            Method::GET,
            &format!("{GWS}?name=edge"),
            None,
            StatusCode::OK,
        )
        .await;
    let named = named.as_array().expect("list");
    assert_eq!(named.len(), 2, "{named:?}");
    assert_eq!(named[0]["id"], old_id.as_str());
    assert!(named[0]["revoked_at"].is_string());
    assert_eq!(named[1]["id"], id.as_str());
    assert!(named[1]["revoked_at"].is_null());
}

async fn a_gateway_is_found_by_name_and_shown_by_id(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    let (_, id) = app.register_gateway("acme", "edge 7").await;
    let found = app
        .expect(
            Method::GET,
            &format!("{GWS}?name=edge%207"),
            None,
            StatusCode::OK,
        )
        .await;
    let found = found.as_array().expect("list");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], id.as_str());
    let none = app
        .expect(
            Method::GET,
            &format!("{GWS}?name=edge"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(none.as_array().map(Vec::len), Some(0), "{none}");

    let shown = app
        .expect(Method::GET, &format!("{GWS}/{id}"), None, StatusCode::OK)
        .await;
    assert_eq!(shown["name"], "edge 7");
    assert!(
        shown.get("credential").is_none(),
        "never shown again: {shown}"
    );
    let (status, body) = app
        .send(Method::GET, &format!("{GWS}/0193-no-such-gateway"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_error(&body, "not_found");
    // A gateway is shown only under its own environment.
    let (status, body) = app
        .send(
            Method::GET,
            &format!("/v1/orgs/acme/workspaces/main/environments/nope/gateways/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
