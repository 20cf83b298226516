//! Rolling a BYOC issuer to a new key and certificate while gateways keep asking for
//! tokens: `POST /v1/admin/keys/import`, pending for the publish delay, then active.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mcpg_license_core::SigningKey;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::byoc::{Byoc, acme_bounds, certify, verify_at_gateway};
use crate::helpers::{Backend, assert_error, now, on_both_backends, spawn_app_full};

on_both_backends!(
    a_byoc_issuer_rolls_to_a_new_certified_key_without_a_failed_request,
    a_license_written_before_a_narrower_certificate_is_refused_at_token_time,
);

async fn a_byoc_issuer_rolls_to_a_new_certified_key_without_a_failed_request(backend: Backend) {
    let t0 = now();
    let byoc = Byoc::new(acme_bounds(), t0 - 60, t0 + 20 * 86_400);
    let app = Arc::new(spawn_app_full(backend, |s| byoc.apply(s), None).await);
    let credential = app.gateway("acme").await;

    // Refused: a certificate from a root this service does not trust, and a key that is
    // not the certified one.
    let stranger = SigningKey::generate().expect("rng");
    let next = SigningKey::generate().expect("rng");
    let (foreign, _) = certify(&stranger, &next, acme_bounds(), t0 - 60, t0 + 400 * 86_400);
    let (certificate, _) = certify(&byoc.root, &next, acme_bounds(), t0 - 60, t0 + 400 * 86_400);
    for (key, cert) in [(&next, &foreign), (&stranger, &certificate)] {
        let (status, body) = app
            .send(
                Method::POST,
                "/v1/admin/keys/import",
                Some(json!({"signing_key": key.to_paserk().as_str(), "certificate": cert})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_error(&body, "invalid_request");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (app, credential, stop) = (app.clone(), credential.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut bodies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = app.token(&credential).await;
                assert_eq!(
                    status,
                    StatusCode::OK,
                    "a request failed during the roll: {body}"
                );
                bodies.push(body);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            bodies
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let imported = app
        .expect(
            Method::POST,
            "/v1/admin/keys/import",
            Some(json!({"signing_key": next.to_paserk().as_str(), "certificate": certificate})),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(imported["state"], "pending");
    assert_eq!(imported["kid"], next.kid().as_str());

    // Published first, then signing (publish delay 1 s, reloads every 100 ms).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = app.token_ok(&credential).await;
        if body["kid"] == next.kid().as_str() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new key never became active"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut kids = HashSet::new();
    let trust = byoc.trust();
    let mut count = 0;
    for client in clients {
        let bodies: Vec<Value> = client.await.expect("client task");
        for body in bodies {
            verify_at_gateway(&trust, &body, now());
            kids.insert(body["kid"].as_str().expect("kid").to_owned());
            count += 1;
        }
    }
    assert!(count > 16, "only {count} tokens during the roll");
    assert_eq!(
        kids,
        HashSet::from([byoc.key.kid().to_string(), next.kid().to_string()]),
        "tokens from the old key, then the new one"
    );
    let keys = app
        .expect(Method::GET, "/v1/admin/keys", None, StatusCode::OK)
        .await;
    let state_of = |kid: &str| {
        keys.as_array()
            .and_then(|k| k.iter().find(|k| k["kid"] == kid))
            .map(|k| k["state"].clone())
    };
    assert_eq!(state_of(next.kid().as_str()), Some(json!("active")));
    assert_eq!(state_of(byoc.key.kid().as_str()), Some(json!("retiring")));
}

/// Writes outside the certificate are refused when written; a license written under a
/// broader certificate is still checked when a token is made under a narrower one (the
/// vendor re-certified the customer's key with less), and refused with the bound it breaks
/// rather than signed.
async fn a_license_written_before_a_narrower_certificate_is_refused_at_token_time(
    backend: Backend,
) {
    let t0 = now();
    let byoc = Byoc::new(acme_bounds(), t0 - 60, t0 + 20 * 86_400);
    let app = spawn_app_full(backend, |s| byoc.apply(s), None).await;
    // Team with policy.cedar: inside the first certificate's bounds.
    let credential = app.gateway("acme").await;
    app.token_ok(&credential).await;

    // The next certificate allows the Team defaults only: no policy.cedar.
    let mut narrower = acme_bounds();
    narrower.entitlements =
        Some(mcpg_license_core::Catalog::builtin().tier_defaults(mcpg_license_core::Tier::Team));
    let next = SigningKey::generate().expect("rng");
    let (certificate, _) = certify(&byoc.root, &next, narrower, t0 - 60, t0 + 400 * 86_400);
    app.expect(
        Method::POST,
        "/v1/admin/keys/import",
        Some(json!({"signing_key": next.to_paserk().as_str(), "certificate": certificate})),
        StatusCode::ACCEPTED,
    )
    .await;
    // Once the new key signs (publish delay 1 s, reloads every 100 ms), the license in force
    // no longer fits any served certificate.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body) = app.token(&credential).await;
        if status == StatusCode::FORBIDDEN {
            break body;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "the narrower certificate never took over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_error(&body, "outside_certificate_bounds");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("entitlement_not_allowed"), "{message}");
    // Back inside: a license without the plugin is signed under the new key.
    app.set_license("acme", json!({"tier": "team", "valid_for_days": 30}))
        .await;
    let body = app.token_ok(&credential).await;
    assert_eq!(body["kid"], next.kid().as_str());
}
