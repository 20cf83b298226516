//! Cluster-wide rate limits: replicas on one database count each other through heartbeat
//! rows and each enforces `ceil(rate / alive)`, so an org's licensed `rps` holds for the
//! cluster, not per replica; a replica that stops (or stops beating) is no longer counted.

use std::time::{Duration, Instant};

use mcpg_auth::KekSource;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cluster_root::{kek_file, run_sql, spawn_replica};
use crate::helpers::{Backend, TestApp, on_both_backends, spawn_app_with};

on_both_backends!(
    three_replicas_together_grant_an_orgs_rate_not_three_times_it,
    a_replica_that_stops_beating_is_dropped_after_three_missed_beats,
);

/// A beat long enough that a loaded test machine does not miss three in a row.
const BEAT: Duration = Duration::from_millis(500);
/// The org's licensed rate.
const RPS: u32 = 20;
/// How long the org is driven.
const DRIVE: Duration = Duration::from_secs(3);
/// Clients per replica, each sending one request every [`PACE`]: about 10 × [`RPS`] in all.
const CLIENTS_PER_REPLICA: usize = 2;
const PACE: Duration = Duration::from_millis(30);

/// Starts a first replica beating every [`BEAT`], with a KEK file in `keks` that the
/// replicas spawned from it share.
async fn first_replica(backend: Backend, keks: &tempfile::TempDir) -> TestApp {
    let kek = kek_file(keks.path(), 0x77);
    spawn_app_with(backend, |s| {
        s.heartbeat_interval = BEAT;
        s.kek = KekSource::File(kek);
    })
    .await
}

/// The replicas alive as `app` last read them (its `/readyz`).
async fn alive(app: &TestApp) -> u64 {
    let response = app
        .client
        .get(format!("{}/readyz", app.ops_address))
        .send()
        .await
        .expect("readyz");
    let body: Value = response.json().await.expect("json");
    body["replicas_alive"].as_u64().expect("replicas_alive")
}

/// Polls `app` until it counts `expected` replicas, for up to `within`; returns the last
/// count read.
async fn wait_for_alive(app: &TestApp, expected: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let count = alive(app).await;
        if count == expected || Instant::now() >= deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends token requests with `credential` to the API at `address` every [`PACE`] until
/// `until`; returns how many were granted (200) and refused (429). Anything else fails.
async fn drive(address: String, credential: String, until: Instant) -> (u32, u32) {
    let client = reqwest::Client::new();
    let mut ticker = tokio::time::interval(PACE);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut granted, mut refused) = (0, 0);
    while Instant::now() < until {
        ticker.tick().await;
        let response = client
            .post(format!("{address}/v1/federation/token"))
            .bearer_auth(&credential)
            .send()
            .await
            .expect("token request sent");
        match response.status() {
            StatusCode::OK => granted += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}: {:?}", response.text().await),
        }
    }
    (granted, refused)
}

async fn three_replicas_together_grant_an_orgs_rate_not_three_times_it(backend: Backend) {
    let keks = tempfile::tempdir().expect("tempdir");
    let mut first = first_replica(backend, &keks).await;
    let credential = first.gateway("acme").await;
    first
        .set_license(
            "acme",
            json!({"tier": "team", "limits": {"rps": RPS, "max_gateways": 10}, "valid_for_days": 30}),
        )
        .await;
    let mut second = spawn_replica(&first, tempfile::tempdir().expect("tempdir")).await;
    let mut third = spawn_replica(&first, tempfile::tempdir().expect("tempdir")).await;
    for app in [&first, &second, &third] {
        assert_eq!(wait_for_alive(app, 3, BEAT * 10).await, 3);
    }

    let start = Instant::now();
    let until = start + DRIVE;
    let mut clients = Vec::new();
    for app in [&first, &second, &third] {
        for _ in 0..CLIENTS_PER_REPLICA {
            clients.push(tokio::spawn(drive(
                app.address.clone(),
                credential.clone(),
                until,
            )));
        }
    }
    let (mut granted, mut refused) = (0u32, 0u32);
    for client in clients {
        let (g, r) = client.await.expect("client task");
        granted += g;
        refused += r;
    }
    let seconds = start.elapsed().as_secs_f64();

    // Each replica allows its share s = ceil(20 / 3) = 7 per second with a burst of 7: in
    // T seconds at most s·(T + 1). The cluster: 3·s·(T + 1) = 21·(T + 1). One extra
    // burst per replica covers a re-division should a loaded machine delay a beat past
    // the expiry (docs/OPERATIONS.md, "Cluster-wide limits"). Replicas each enforcing the
    // full 20/s would grant about 60·(T + 1).
    let share = f64::from(RPS.div_ceil(3));
    let bound = 3.0 * share * (seconds + 2.0);
    assert!(
        f64::from(granted) <= bound,
        "{granted} tokens granted in {seconds:.2} s; at most {bound:.0} expected"
    );
    assert!(granted >= 3, "each replica grants at least its first burst");
    assert!(refused > 0, "the org was driven past its rate");

    // A replica that stops gracefully deletes its row: the others re-divide by 2.
    third.stop().await;
    for app in [&first, &second] {
        assert_eq!(wait_for_alive(app, 2, BEAT * 10).await, 2);
    }
    let page = first.scrape().await;
    assert!(page.contains("# HELP mcpg_replicas_alive"), "{page}");
    second.stop().await;
    first.stop().await;
}

/// SQL of `app`'s backend for the database's time in Unix milliseconds.
fn now_ms_sql(app: &TestApp) -> &'static str {
    if app.database.is_some() {
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
    } else {
        "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
    }
}

async fn a_replica_that_stops_beating_is_dropped_after_three_missed_beats(backend: Backend) {
    let keks = tempfile::tempdir().expect("tempdir");
    let mut first = first_replica(backend, &keks).await;
    let mut second = spawn_replica(&first, tempfile::tempdir().expect("tempdir")).await;
    for app in [&first, &second] {
        assert_eq!(wait_for_alive(app, 2, BEAT * 10).await, 2);
    }
    // A replica that beat once and then vanished without deleting its row (killed).
    let now = now_ms_sql(&first);
    let ghost = format!(
        "INSERT INTO replicas (id, host, listen, started_at, beat_at) \
         VALUES ('ghost', 'gone.example', '10.0.0.9:8421', {now}, {now})"
    );
    assert_eq!(run_sql(&first, &ghost).await, 1);
    let seen = Instant::now();
    for app in [&first, &second] {
        assert_eq!(
            wait_for_alive(app, 3, BEAT * 2).await,
            3,
            "counted while fresh"
        );
    }
    for app in [&first, &second] {
        assert_eq!(
            wait_for_alive(app, 2, BEAT * 10).await,
            2,
            "dropped once stale"
        );
    }
    assert!(
        seen.elapsed() >= BEAT * 2,
        "not dropped before it missed its beats"
    );
    second.stop().await;
    first.stop().await;
}
