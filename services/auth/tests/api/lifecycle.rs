//! Time-driven life cycles on an injected clock: key states, certificate renewal, license
//! expiry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::{Clock, LicenseClaims, ManualClock, Validity};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, now, on_both_backends, spawn_app_on_clock};

on_both_backends!(
    keys_certificates_and_licenses_follow_the_clock,
    a_token_issued_just_before_a_trial_ends_ends_with_the_trial,
);

const DAY: i64 = 86_400;

/// Polls `check` (the server's reloader runs every 100 ms) until it holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn published(app: &TestApp) -> Vec<String> {
    app.jwks()
        .await
        .keys
        .into_iter()
        .filter_map(|k| k.kid)
        .collect()
}

fn verify_at(app: &TestApp, body: &Value, at: i64) -> LicenseClaims {
    app.trust_store()
        .verify_certificate(
            body["issuer_certificate"].as_str().expect("certificate"),
            at,
            Validity::Strict,
        )
        .expect("certificate valid at the clock's time")
        .verify_jwt(body["token"].as_str().expect("token"), at, Validity::Strict)
        .expect("token verifies at the clock's time")
}

async fn keys_certificates_and_licenses_follow_the_clock(backend: Backend) {
    let clock = Arc::new(ManualClock::new(now()));
    let app = spawn_app_on_clock(backend, clock.clone()).await;
    let credential = app.gateway("acme").await;
    app.set_license("acme", json!({"tier": "team", "valid_for_days": 365}))
        .await;
    let first = app.token_ok(&credential).await;
    let old_kid = first["kid"].as_str().expect("kid").to_owned();

    let pending = app
        .expect(
            Method::POST,
            "/v1/admin/keys/rotate",
            None,
            StatusCode::ACCEPTED,
        )
        .await;
    let new_kid = pending["kid"].as_str().expect("kid").to_owned();
    assert_eq!(
        app.token_ok(&credential).await["kid"],
        old_kid.as_str(),
        "pending until the delay passes"
    );
    clock.advance(2);
    eventually("the new key signs", || async {
        app.token_ok(&credential).await["kid"] == new_kid.as_str()
    })
    .await;
    assert!(
        published(&app).await.contains(&old_kid),
        "the old key is retiring, still published"
    );

    clock.advance(DAY + 7 * DAY + 3_600 + 1);
    eventually("the old key is retired", || async {
        !published(&app).await.contains(&old_kid)
    })
    .await;
    let keys = app
        .expect(Method::GET, "/v1/admin/keys", None, StatusCode::OK)
        .await;
    let old = keys
        .as_array()
        .expect("list")
        .iter()
        .find(|k| k["kid"] == old_kid.as_str())
        .expect("old key listed");
    assert_eq!(old["state"], "retired");

    let before = app.token_ok(&credential).await["issuer_certificate"].clone();
    clock.advance(61 * DAY);
    eventually("the certificate is renewed", || async {
        app.token_ok(&credential).await["issuer_certificate"] != before
    })
    .await;
    let _ = verify_at(&app, &app.token_ok(&credential).await, clock.now());

    clock.advance(365 * DAY);
    let (status, body) = app.token(&credential).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "license_expired");
}

/// A token issued ten minutes before the org's trial ends must not outlive the trial: not
/// its expiry, not its refresh time, not its grace (a gateway would otherwise keep the
/// trial's entitlements for a day plus seven days of "outage").
async fn a_token_issued_just_before_a_trial_ends_ends_with_the_trial(backend: Backend) {
    let clock = Arc::new(ManualClock::new(now()));
    let app = spawn_app_on_clock(backend, clock.clone()).await;
    let credential = app.gateway("acme").await;
    let end = clock.now() + 600;
    app.expect(
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"status": "trial", "trial_expires_at": to_rfc3339(end)})),
        StatusCode::OK,
    )
    .await;

    let body = app.token_ok(&credential).await;
    let claims = verify_at(&app, &body, clock.now());
    assert_eq!(claims.exp, end, "expiry capped at the trial's end");
    assert_eq!(claims.grc, Some(end), "no grace past the trial's end");
    assert_eq!(claims.rfa, Some(end), "refresh due by the trial's end");
    assert_eq!(body["expires_at"], to_rfc3339(end));
    assert_eq!(body["grace_until"], to_rfc3339(end));
    assert_eq!(body["refresh_after"], to_rfc3339(end));

    clock.advance(600);
    let (status, body) = app.token(&credential).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "trial_expired");
}
