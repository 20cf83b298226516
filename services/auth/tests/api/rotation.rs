//! Key rotation: published before it signs, no failed request while it happens, the old
//! key stays published while its tokens may be in grace.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Backend, now, on_both_backends, spawn_app_with};

on_both_backends!(key_rotation_under_eight_concurrent_clients_fails_no_request);

const CLIENTS: usize = 8;

async fn key_rotation_under_eight_concurrent_clients_fails_no_request(backend: Backend) {
    // Generous margins: the machine running CI may be loaded, and the pending key must not
    // sign before the checks below have run, yet must sign before the clients stop.
    let app = Arc::new(
        spawn_app_with(backend, |settings| {
            settings.key_publish_delay = Duration::from_secs(3);
        })
        .await,
    );
    let credential = Arc::new(app.gateway("acme").await);
    let old_kid = app.token_ok(&credential).await["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (app, credential) = (app.clone(), credential.clone());
        clients.push(tokio::spawn(async move {
            let mut kids = BTreeSet::new();
            let mut count = 0_u32;
            while Instant::now() < deadline {
                let body = app.token_ok(&credential).await;
                let token = body["token"].as_str().expect("token");
                app.key_set()
                    .await
                    .verify_jwt(token, "http://127.0.0.1:8421", now())
                    .expect("token verifies against the JWKS served right after it");
                kids.insert(body["kid"].as_str().expect("kid").to_owned());
                count += 1;
            }
            (kids, count)
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let pending = app
        .expect(
            Method::POST,
            "/v1/admin/keys/rotate",
            None,
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(pending["state"], "pending");
    let new_kid = pending["kid"].as_str().expect("kid").to_owned();
    let published: Vec<String> = app
        .jwks()
        .await
        .keys
        .iter()
        .filter_map(|k| k.kid.clone())
        .collect();
    assert!(
        published.contains(&new_kid),
        "pending key is published at once"
    );
    assert_eq!(
        app.token_ok(&credential).await["kid"],
        old_kid.as_str(),
        "pending key does not sign yet"
    );

    let mut seen = BTreeSet::new();
    let mut total = 0;
    for client in clients {
        let (kids, count) = client.await.expect("client finished without failure");
        seen.extend(kids);
        total += count;
    }
    assert!(
        total > CLIENTS as u32 * 5,
        "clients made progress ({total} tokens)"
    );
    assert_eq!(
        seen,
        BTreeSet::from([old_kid.clone(), new_kid.clone()]),
        "both keys signed during the run"
    );

    let keys: Value = app
        .expect(Method::GET, "/v1/admin/keys", None, StatusCode::OK)
        .await;
    let state_of = |kid: &str| {
        keys.as_array()
            .expect("list")
            .iter()
            .find(|k| k["kid"] == kid)
            .map(|k| k["state"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(state_of(&new_kid).as_deref(), Some("active"));
    assert_eq!(state_of(&old_kid).as_deref(), Some("retiring"));
    let published: Vec<String> = app
        .jwks()
        .await
        .keys
        .iter()
        .filter_map(|k| k.kid.clone())
        .collect();
    assert!(
        published.contains(&old_kid),
        "retiring key stays published for tokens in grace"
    );
    assert_eq!(app.token_ok(&credential).await["kid"], new_kid.as_str());
}
