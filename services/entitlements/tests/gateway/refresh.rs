//! Refresh scheduling: single flight, jitter around rfa, backoff honouring Retry-After.

use std::sync::Arc;
use std::time::Duration;

use mcpg_entitlements::State;
use mcpg_license_core::{ManualClock, Tier};

use crate::support::*;

#[tokio::test]
async fn many_concurrent_refreshes_make_one_fetch() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let mut fed = FakeFederation::new(clock.clone(), Tier::Team);
    Arc::get_mut(&mut fed).expect("sole owner").delay = Some(Duration::from_millis(200));
    let gateway = federated(dir.path(), &clock, &fed);
    let callers: Vec<_> = (0..64)
        .map(|_| {
            let gateway = gateway.clone();
            tokio::spawn(async move { gateway.refresh_now().await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.expect("task"), Ok(State::Active));
    }
    assert_eq!(fed.calls(), 1);
}

#[tokio::test]
async fn the_next_refresh_is_within_ten_percent_of_rfa() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let gateway = federated(dir.path(), &clock, &fed);
    assert_eq!(gateway.refresh_due().await, 1);
    let next = gateway.next_refresh_at().expect("scheduled");
    let rfa = START + 8 * HOUR;
    assert!(
        (rfa - 2_880..=rfa + 2_880).contains(&next),
        "next refresh at rfa{:+}",
        next - rfa
    );
    assert_eq!(gateway.refresh_due().await, 0, "not due yet");
    assert_eq!(fed.calls(), 1);
    clock.set(next);
    assert_eq!(gateway.refresh_due().await, 1);
}

#[tokio::test]
async fn failures_back_off_and_honour_retry_after() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let gateway = federated(dir.path(), &clock, &fed);
    fed.set(Behaviour::Outage { retry_after: None });
    assert_eq!(gateway.refresh_due().await, 0);
    let first = gateway.next_refresh_at().expect("scheduled") - START;
    assert!((1..=30).contains(&first), "first backoff {first}s");

    fed.set(Behaviour::Outage {
        retry_after: Some(Duration::from_secs(1_200)),
    });
    clock.set(START + first);
    assert_eq!(gateway.refresh_due().await, 0);
    let wait = gateway.next_refresh_at().expect("scheduled") - (START + first);
    assert!(wait >= 1_200, "Retry-After ignored: {wait}s");
    assert_eq!(gateway.snapshot().federation[0].consecutive_failures, 2);
}

/// The longest wait a server's `Retry-After` can impose (`schedule::MAX_RETRY_AFTER`).
const LONGEST_WAIT: i64 = HOUR / 2;

#[tokio::test]
async fn a_huge_retry_after_cannot_suspend_or_wrap_the_refresh_schedule() {
    // ~3 years, i64::MAX (overflowed `now + wait` to a negative time), u64::MAX (wrapped to
    // -1 through `as i64`).
    for retry_after in [100_000_000, i64::MAX as u64, u64::MAX] {
        let dir = temp_dir();
        let clock = ManualClock::new(START);
        let fed = FakeFederation::new(clock.clone(), Tier::Team);
        let gateway = federated(dir.path(), &clock, &fed);
        fed.set(Behaviour::Outage {
            retry_after: Some(Duration::from_secs(retry_after)),
        });
        for failures in 1..=20 {
            let now = START + (failures - 1) * LONGEST_WAIT;
            clock.set(now);
            assert_eq!(gateway.refresh_due().await, 0);
            let wait = gateway.next_refresh_at().expect("scheduled") - now;
            assert!(
                (1..=LONGEST_WAIT).contains(&wait),
                "Retry-After {retry_after} after {failures} failures: next refresh in {wait}s"
            );
        }
        assert_eq!(fed.calls(), 20, "every due refresh was attempted");
    }
}
