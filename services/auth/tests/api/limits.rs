//! Per-org rate limits — a noisy org does not starve a quiet one; cross-tenant admin routes
//! have their own, stricter limit; refusals carry `Retry-After` and `RateLimit-*` headers —
//! and the tenant-scoped metrics (counters and gauges by org, never histograms).

use std::time::Duration;

use mcpg_auth::RateLimitSettings;
use reqwest::{Response, StatusCode};

use crate::helpers::{Backend, TestApp, assert_error, spawn_app_with};

const ORG_RPS: u32 = 5;

fn header(response: &Response, name: &str) -> u64 {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} header missing"))
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a number")
}

/// An API key of `org` (its admin), made by the global admin.
async fn org_key(app: &TestApp, org: &str) -> String {
    let created = app
        .expect(
            reqwest::Method::POST,
            "/v1/admin/tokens",
            Some(serde_json::json!({"name": format!("{org} key"), "org": org})),
            StatusCode::CREATED,
        )
        .await;
    created["token"].as_str().expect("token").to_owned()
}

/// Sends `count` requests for `org` at `per_second` with `token`; returns the statuses and
/// one 429.
async fn drive(
    app: &TestApp,
    org: &str,
    token: &str,
    per_second: u32,
    count: usize,
) -> (Vec<StatusCode>, Option<Response>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / per_second);
    let (mut statuses, mut limited) = (Vec::new(), None);
    for _ in 0..count {
        ticker.tick().await;
        let response = app
            .client
            .get(format!("{}/v1/orgs/{org}/workspaces", app.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("sent");
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited.get_or_insert(response);
        } else {
            assert_eq!(header(&response, "ratelimit-limit"), u64::from(ORG_RPS));
        }
    }
    (statuses, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_org_at_ten_times_its_limit_is_refused_while_a_quiet_org_is_not() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.rate_limits = RateLimitSettings {
            org_rps: ORG_RPS,
            admin_rps: 0,
            ..RateLimitSettings::default()
        };
    })
    .await;
    for org in ["noisy", "quiet"] {
        app.create_org(org).await;
    }
    let (noisy_key, quiet_key) = (org_key(&app, "noisy").await, org_key(&app, "quiet").await);
    let noisy = drive(&app, "noisy", &noisy_key, ORG_RPS * 10, 100);
    let quiet = drive(&app, "quiet", &quiet_key, ORG_RPS / 2, 5);
    let ((noisy, limited), (quiet, _)) = tokio::join!(noisy, quiet);
    let refused = noisy
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        refused >= 50,
        "the noisy org is refused most requests: {refused}/100"
    );
    assert!(
        quiet.iter().all(|s| *s == StatusCode::OK),
        "the quiet org is never refused: {quiet:?}"
    );
    let limited = limited.expect("a 429 for the noisy org");
    assert!(header(&limited, "retry-after") >= 1);
    assert_eq!(header(&limited, "ratelimit-limit"), u64::from(ORG_RPS));
    assert_eq!(header(&limited, "ratelimit-remaining"), 0);
    assert!(header(&limited, "ratelimit-reset") >= 1);
    let body: serde_json::Value = limited.json().await.expect("json");
    assert_error(&body, "rate_limited");

    // The org's budget is spent, and the vendor can still act on it: a global admin is
    // not held to the org's limit.
    let (flooded, _) = drive(&app, "noisy", &noisy_key, ORG_RPS * 10, 20).await;
    assert!(
        flooded.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{flooded:?}"
    );
    let (status, body) = app
        .send(
            reqwest::Method::PATCH,
            "/v1/orgs/noisy",
            Some(serde_json::json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the vendor suspends the noisy org: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_tenant_admin_routes_have_their_own_stricter_limit() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.rate_limits = RateLimitSettings {
            org_rps: 100,
            admin_rps: 2,
            ..RateLimitSettings::default()
        };
    })
    .await;
    app.create_org("acme").await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = app
            .admin(reqwest::Method::GET, "/v1/orgs")
            .send()
            .await
            .expect("sent");
        statuses.push(response.status());
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "the admin limit is reached: {statuses:?}"
    );
    let (status, _) = app
        .send(reqwest::Method::GET, "/v1/orgs/acme/workspaces", None)
        .await;
    assert_eq!(status, StatusCode::OK, "an org route keeps its own budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_usage_and_limits_are_gauges_labelled_by_org() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let org = format!("metered-{}", uuid::Uuid::new_v4().simple());
    app.create_org(&org).await;
    app.set_license(
        &org,
        serde_json::json!({"tier": "team", "limits": {"max_workspaces": 3}, "valid_for_days": 30}),
    )
    .await;
    // Through an org key: a global admin's requests are not charged to the org.
    let key = org_key(&app, &org).await;
    let created = app
        .client
        .post(format!("{}/v1/orgs/{org}/workspaces", app.address))
        .bearer_auth(&key)
        .json(&serde_json::json!({"slug": "main"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), StatusCode::CREATED);
    let text = app.scrape().await;
    for line in [
        format!("mcpg_quota_usage{{org=\"{org}\",quota=\"workspaces\"}} 1"),
        format!("mcpg_quota_limit{{org=\"{org}\",quota=\"workspaces\"}} 3"),
        format!("mcpg_quota_usage{{org=\"{org}\",quota=\"gateways\"}} 0"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in /metrics");
    }
    assert!(
        text.lines().any(|l| l.starts_with(&format!(
            "mcpg_org_requests_total{{org=\"{org}\",outcome=\"allowed\"}}"
        ))),
        "requests counted by org"
    );
    assert!(
        !text.contains(&format!("_bucket{{org=\"{org}\"")),
        "no histogram is labelled by org"
    );
}
