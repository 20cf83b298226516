//! Gateway-side limits: `max_servers` and `max_concurrent_requests` from the token in
//! force, Tier-0 (no limits) without a license, and the sidecar's server check.

use std::sync::{Arc, Barrier};

use mcpg_entitlements::{Denial, LimitReason, State};
use mcpg_license_core::{LimitKey, Limits, ManualClock, Tier};
use serde_json::{Value, json};

use crate::plugin_sets::serve_sidecar;
use crate::support::*;

fn limits(servers: Option<u64>, requests: Option<u64>) -> Limits {
    Limits {
        max_servers: servers,
        max_concurrent_requests: requests,
        ..Limits::default()
    }
}

#[tokio::test]
async fn servers_over_the_limit_are_refused_naming_the_limit() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let gateway = federated(dir.path(), &clock, &fed);
    let handle = gateway.default_handle();
    assert!(
        handle.check_servers(1_000).allowed,
        "no token: Tier-0, no limit"
    );
    fed.set_limits(limits(Some(3), None));
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    assert!(handle.check_servers(3).allowed);
    let over = handle.check_servers(4);
    assert_eq!(
        (
            over.allowed,
            over.reason,
            over.limit,
            over.max,
            over.requested
        ),
        (
            false,
            LimitReason::OverLimit,
            LimitKey::MaxServers,
            Some(3),
            4
        )
    );
    assert_eq!(handle.limits().max_servers, Some(3));
    let shown = gateway.snapshot().default.limits;
    assert_eq!(
        (shown.max_servers, shown.max_concurrent_requests),
        (Some(3), None)
    );

    // A revoked license falls back to Tier-0, which sets no limit.
    fed.set(Behaviour::Deny(Denial::LicenseRevoked));
    assert!(gateway.refresh_now().await.is_err());
    let revoked = handle.check_servers(4);
    assert_eq!(
        (revoked.allowed, revoked.max, revoked.state),
        (true, None, State::Revoked)
    );
}

#[tokio::test]
async fn permits_are_counted_across_threads_and_released_on_drop() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    fed.set_limits(limits(None, Some(4)));
    let gateway = federated(dir.path(), &clock, &fed);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    let handle = gateway.default_handle();

    // Four threads each hold a permit; a fifth request is refused until one is dropped.
    let held = Arc::new(Barrier::new(5));
    let release = Arc::new(Barrier::new(5));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (handle, held, release) = (handle.clone(), held.clone(), release.clone());
            std::thread::spawn(move || {
                let permit = handle.try_begin_request().expect("within the limit");
                held.wait();
                release.wait();
                drop(permit);
            })
        })
        .collect();
    held.wait();
    assert_eq!(handle.requests_in_flight(), 4);
    let refused = handle.try_begin_request().expect_err("over the limit");
    assert_eq!(
        (
            refused.reason,
            refused.limit,
            refused.max,
            refused.requested
        ),
        (
            LimitReason::OverLimit,
            LimitKey::MaxConcurrentRequests,
            Some(4),
            5
        )
    );
    assert_eq!(gateway.snapshot().default.limits.requests_in_flight, 4);
    release.wait();
    for thread in threads {
        thread.join().expect("thread");
    }
    assert_eq!(handle.requests_in_flight(), 0);

    // Many threads racing never get more than four permits at once.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let handle = handle.clone();
            std::thread::spawn(move || {
                let mut admitted = 0u32;
                for _ in 0..5_000 {
                    if let Ok(permit) = handle.try_begin_request() {
                        assert!(handle.requests_in_flight() <= 4);
                        admitted += 1;
                        drop(permit);
                    }
                }
                admitted
            })
        })
        .collect();
    let admitted: u32 = racers.into_iter().map(|t| t.join().expect("racer")).sum();
    assert!(admitted > 0);
    assert_eq!(handle.requests_in_flight(), 0);
}

#[tokio::test]
async fn a_refresh_changing_the_limit_applies_to_new_requests_at_once() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    fed.set_limits(limits(None, Some(2)));
    let gateway = federated(dir.path(), &clock, &fed);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    let handle = gateway.default_handle();
    let first = handle.try_begin_request().expect("1 of 2");
    let second = handle.try_begin_request().expect("2 of 2");
    assert!(handle.try_begin_request().is_err());

    fed.set_limits(limits(None, Some(1)));
    clock.advance(HOUR);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    assert_eq!(
        handle.requests_in_flight(),
        2,
        "admitted requests keep their permits"
    );
    drop(first);
    let refused = handle
        .try_begin_request()
        .expect_err("1 in flight, limit 1");
    assert_eq!((refused.max, refused.requested), (Some(1), 2));
    drop(second);
    let only = handle.try_begin_request().expect("0 in flight, limit 1");

    fed.set_limits(Limits::default());
    clock.advance(HOUR);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    let more: Vec<_> = (0..100)
        .map(|_| handle.try_begin_request().expect("no limit"))
        .collect();
    assert_eq!(handle.requests_in_flight(), 101);
    drop((only, more));
    assert_eq!(handle.requests_in_flight(), 0);
}

#[tokio::test]
async fn the_sidecar_checks_server_counts() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    fed.set_limits(limits(Some(2), Some(50)));
    let gateway = federated(dir.path(), &clock, &fed);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    let (addr, stop) = serve_sidecar(gateway).await;
    let get = |path: &str| {
        let url = format!("http://{addr}{path}");
        async move {
            let response = reqwest::get(url).await.expect("request");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };
    let (status, ok) = get("/v1/limits/servers?count=2").await;
    assert_eq!(status, 200);
    assert_eq!(
        (&ok["allowed"], &ok["reason"], &ok["limit"], &ok["max"]),
        (
            &json!(true),
            &json!("allowed"),
            &json!("max_servers"),
            &json!(2)
        )
    );
    let (_, over) = get("/v1/limits/servers?count=3&tenant=acme/platform/prod").await;
    assert_eq!(
        (&over["allowed"], &over["reason"]),
        (&json!(false), &json!("over_limit"))
    );
    let (status, missing) = get("/v1/limits/servers").await;
    assert_eq!(
        (status, &missing["error"]["code"]),
        (400, &json!("missing_count"))
    );
    let (status, _) = get("/v1/limits/servers?count=-1").await;
    assert_eq!(status, 400);
    let (_, page) = get("/v1/status").await;
    assert_eq!(
        page["default"]["limits"],
        json!({"max_servers": 2, "max_concurrent_requests": 50, "requests_in_flight": 0})
    );
    let _ = stop.send(());
}
