//! The token request's body: empty or the documented object, nothing else. Unknown
//! members and deeply nested JSON are refused with our error shape before a token is
//! issued.

use reqwest::StatusCode;

use crate::helpers::{Backend, assert_error, spawn_app, split};

#[tokio::test]
async fn token_requests_with_unknown_members_or_deep_nesting_are_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let credential = app.gateway("acme").await;
    let token = |body: Vec<u8>| {
        app.client
            .post(format!("{}/v1/federation/token", app.address))
            .bearer_auth(&credential)
            .body(body)
            .send()
    };
    for accepted in [&b""[..], b"  \n", b"{}", b"{\"instance\":\"pod-1\"}"] {
        let (status, body) = split(token(accepted.to_vec()).await.expect("sent")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{} → {body}",
            String::from_utf8_lossy(accepted)
        );
    }
    let deep = |depth: usize| {
        let mut text = String::from("{\"extra\":");
        text.push_str(&"[".repeat(depth));
        text.push_str(&"]".repeat(depth));
        text.push('}');
        text.into_bytes()
    };
    let deep_instance = {
        let mut text = String::from("{\"instance\":\"pod\",\"x\":");
        text.push_str(&"{\"a\":".repeat(10_000));
        text.push('1');
        text.push_str(&"}".repeat(10_000));
        text.push('}');
        text.into_bytes()
    };
    for refused in [
        b"{\"instance\":\"pod-1\",\"extra\":1}".to_vec(),
        b"{\"unknown\":{}}".to_vec(),
        deep(10_000),
        deep(40),
        deep_instance,
    ] {
        let (status, body) = split(token(refused.clone()).await.expect("sent")).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{:.80} → {body}",
            String::from_utf8_lossy(&refused)
        );
        assert_error(&body, "invalid_request");
    }
}
