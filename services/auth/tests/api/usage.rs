//! Usage (issue 15): reports on the token request, the daily aggregates, the usage API,
//! over-limit records and the retention's roll-up. Counts reach the database at the flush;
//! the tests flush by stopping the server (it flushes at shutdown) and starting it again.

use std::sync::Arc;

use mcpg_license_core::ManualClock;
use mcpg_license_core::clock::to_rfc3339;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, assert_error, now, on_both_backends, spawn_app, spawn_app_full, split,
};

/// 08:00 UTC of yesterday (so the second simulated day is today).
fn first_day_at_8() -> i64 {
    (now() / 86_400 - 1) * 86_400 + 8 * 3_600
}

fn day(at: i64) -> String {
    to_rfc3339(at)[..10].to_owned()
}

fn report(version: &str, plugins: Value) -> Value {
    json!({"v": 1, "since": "2026-11-03T08:00:00Z", "until": "2026-11-03T16:00:00Z",
           "version": version, "plugins": plugins})
}

async fn token_with(app: &TestApp, credential: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/v1/federation/token", app.address))
        .bearer_auth(credential)
        .json(&body)
        .send()
        .await
        .expect("token request sent");
    split(response).await
}

async fn token_raw(app: &TestApp, credential: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/v1/federation/token", app.address))
        .bearer_auth(credential)
        .body(body)
        .send()
        .await
        .expect("token request sent");
    split(response).await
}

/// Stops (which flushes the usage meter) and starts the server again.
async fn flush(app: &mut TestApp) {
    app.stop().await;
    app.start().await;
}

/// Adds environment `env` to `org`'s `main` workspace and registers `name` in it.
async fn gateway_in(app: &TestApp, org: &str, env: &str, name: &str) -> String {
    let envs = format!("/v1/orgs/{org}/workspaces/main/environments");
    let (status, _) = app
        .send(Method::POST, &envs, Some(json!({"slug": env})))
        .await;
    assert!(status == StatusCode::CREATED || status == StatusCode::CONFLICT);
    let body = app
        .expect(
            Method::POST,
            &format!("{envs}/{env}/gateways"),
            Some(json!({"name": name})),
            StatusCode::CREATED,
        )
        .await;
    body["credential"].as_str().expect("credential").to_owned()
}

async fn usage(app: &TestApp, path: &str) -> Value {
    app.expect(Method::GET, path, None, StatusCode::OK).await
}

fn summary(rows: &Value) -> Vec<(String, u64, u64, u64)> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["period"].as_str().expect("period").to_owned(),
                r["gateways_active"].as_u64().expect("active"),
                r["tokens"].as_u64().expect("tokens"),
                r["peak_gateways"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

on_both_backends!(three_gateways_in_two_environments_over_two_days_add_up_exactly);

async fn three_gateways_in_two_environments_over_two_days_add_up_exactly(backend: Backend) {
    let start = first_day_at_8();
    let clock = Arc::new(ManualClock::new(start));
    let mut app = spawn_app_full(backend, |_| {}, Some(clock.clone())).await;
    let gw1 = app.gateway("acme").await;
    let gw2 = app.register_gateway("acme", "gw-2").await.0;
    let gw3 = gateway_in(&app, "acme", "dev", "gw-3").await;
    let cedar = |allowed: u64, refused: u64| json!({"policy.cedar": {"allowed": allowed, "refused": refused}});
    // Day 1: gw-1 at 08:00 and 16:00 with reports, gw-2 at 08:00 without, gw-3 at 09:00.
    let ok = |(status, body): (StatusCode, Value)| assert_eq!(status, StatusCode::OK, "{body}");
    ok(token_with(&app, &gw1, json!({"usage": report("0.1.0", cedar(5, 1))})).await);
    ok(token_with(&app, &gw2, json!({})).await);
    clock.advance(3_600);
    ok(token_with(
        &app,
        &gw3,
        json!({"instance": "pod-3", "usage": report("0.1.0", json!({}))}),
    )
    .await);
    clock.advance(7 * 3_600);
    // Format 2 (what mcpg-entitlements sends: counts as pairs) adds to format 1's.
    let mut pairs = report("0.1.0", json!({"policy.cedar": [3, 0]}));
    pairs["v"] = json!(2);
    ok(token_with(&app, &gw1, json!({"usage": pairs})).await);
    // Day 2 at 08:00: gw-1 with a report, gw-3 with a malformed one (still a token).
    clock.set(start + 86_400);
    ok(token_with(&app, &gw1, json!({"usage": report("0.2.0", cedar(10, 0))})).await);
    ok(token_with(&app, &gw3, json!({"usage": {"v": 1, "plugins": "all"}})).await);
    flush(&mut app).await;

    let (d1, d2) = (day(start), day(start + 86_400));
    let days = usage(&app, &format!("/v1/orgs/acme/usage?from={d1}&to={d2}")).await;
    assert_eq!(days["max_gateways"], 10);
    assert_eq!(days["tier"], "team");
    assert_eq!(
        summary(&days["rows"]),
        // Day 2's peak: early in the day all three still hold day 1's tokens.
        vec![(d1.clone(), 3, 4, 3), (d2.clone(), 2, 2, 3)]
    );
    let rows = &days["rows"];
    assert_eq!(
        rows[0]["plugins"],
        json!({"policy.cedar": {"allowed": 8, "refused": 1}})
    );
    assert_eq!(rows[0]["versions"], json!(["0.1.0"]));
    assert_eq!(
        rows[1]["plugins"],
        json!({"policy.cedar": {"allowed": 10, "refused": 0}})
    );
    assert_eq!(rows[1]["versions"], json!(["0.2.0"]));
    assert_eq!(rows[0]["over_limit"], json!([]));

    let envs = usage(
        &app,
        &format!("/v1/orgs/acme/usage?from={d1}&to={d1}&group=environment"),
    )
    .await;
    let per_env: Vec<(&str, u64, u64)> = envs["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["environment"].as_str().expect("env"),
                r["gateways_active"].as_u64().expect("n"),
                r["tokens"].as_u64().expect("n"),
            )
        })
        .collect();
    assert_eq!(per_env, vec![("dev", 1, 1), ("prod", 2, 3)]);

    let gateways = usage(
        &app,
        &format!("/v1/orgs/acme/usage?from={d2}&to={d2}&group=gateway"),
    )
    .await;
    let names: Vec<&str> = gateways["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["gateway_name"].as_str().expect("name"))
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.contains(&"gw-1") && names.contains(&"gw-3"),
        "{names:?}"
    );

    let plugins = usage(
        &app,
        &format!("/v1/orgs/acme/usage?from={d1}&to={d2}&by=month&group=plugin"),
    )
    .await;
    let allowed: u64 = plugins["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["plugins"]["policy.cedar"]["allowed"].as_u64().expect("n"))
        .sum();
    assert_eq!(allowed, 18);

    let months = usage(
        &app,
        &format!("/v1/orgs/acme/usage?from={d1}&to={d2}&by=month"),
    )
    .await;
    if d1[..7] == d2[..7] {
        assert_eq!(
            summary(&months["rows"]),
            vec![(d1[..7].to_owned(), 3, 6, 3)]
        );
    } else {
        assert_eq!(
            summary(&months["rows"]),
            vec![(d1[..7].to_owned(), 3, 4, 3), (d2[..7].to_owned(), 2, 2, 3)]
        );
    }

    let all = usage(&app, &format!("/v1/admin/usage?from={d1}&to={d2}")).await;
    let acme = all["orgs"]
        .as_array()
        .expect("orgs")
        .iter()
        .find(|o| o["org"] == "acme")
        .expect("acme listed");
    assert_eq!(summary(&acme["rows"]), summary(&days["rows"]));

    let metrics = app.scrape().await;
    for outcome in ["accepted", "malformed"] {
        let line = format!("mcpg_usage_reports_total{{outcome=\"{outcome}\"}}");
        assert!(metrics.contains(&line), "{line} missing");
    }
}

#[tokio::test]
async fn a_bad_usage_report_never_refuses_the_token_but_a_bad_body_still_does() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let credential = app.gateway("acme").await;
    let many: serde_json::Map<String, Value> = (0..513)
        .map(|i| (format!("p{i}"), json!({"allowed": 1})))
        .collect();
    let ignored = [
        json!({"usage": "text"}),
        json!({"usage": 5}),
        json!({"usage": null}),
        json!({"usage": {"v": 2}}),
        json!({"usage": report("0.1.0", json!({"Not-Lowercase": {"allowed": 1}}))}),
        json!({"usage": report("0.1.0", json!({"policy.cedar": {"allowed": -1}}))}),
        json!({"usage": report("0.1.0", Value::Object(many))}),
        json!({"instance": "pod-1", "usage": report("0.1.0", json!({"pad": {"x": "y".repeat(70_000)}}))}),
    ];
    for body in &ignored {
        let (status, answer) = token_with(&app, &credential, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{:.120} → {answer}",
            body.to_string()
        );
        assert!(answer["token"].is_string());
    }
    for refused in [
        b"not json".to_vec(),
        br#"{"usage": {"v": 1}, "extra": 1}"#.to_vec(),
        br#"{"usage": {"v": 1}"#.to_vec(),
    ] {
        let (status, body) = token_raw(&app, &credential, refused).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_error(&body, "invalid_request");
    }
    flush(&mut app).await;
    let today = day(now());
    let answer = usage(
        &app,
        &format!("/v1/orgs/acme/usage?from={today}&to={today}"),
    )
    .await;
    let row = &answer["rows"][0];
    assert_eq!(
        row["tokens"],
        ignored.len() as u64,
        "every accepted request counted"
    );
    assert_eq!(row["plugins"], json!({}), "no ignored report counted");
    let metrics = app.scrape().await;
    assert!(metrics.contains("mcpg_usage_reports_total{outcome=\"oversized\"}"));
}

on_both_backends!(an_org_over_its_limits_gets_one_audit_entry_per_limit_and_day);

async fn an_org_over_its_limits_gets_one_audit_entry_per_limit_and_day(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let gw1 = app.gateway("acme").await;
    let mut credentials = vec![gw1];
    for name in ["gw-2", "gw-3", "gw-4"] {
        credentials.push(app.register_gateway("acme", name).await.0);
    }
    // The license shrinks below the gateways registered (a renewal with fewer seats).
    app.set_license(
        "acme",
        json!({"tier": "team", "entitlements_add": ["plugin:policy.cedar"],
               "limits": {"max_gateways": 3}, "valid_for_days": 30}),
    )
    .await;
    // A plugin the license does not include, allowed (a tampered gateway).
    let tampered = report(
        "0.1.0",
        json!({"policy.cedar": {"allowed": 1}, "slack": {"allowed": 2}}),
    );
    for round in 0..2 {
        for credential in &credentials {
            let (status, body) = token_with(&app, credential, json!({"usage": tampered})).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "round {round}: nothing is cut off: {body}"
            );
        }
        flush(&mut app).await;
    }
    let today = day(now());
    let entries = usage(&app, "/v1/orgs/acme/audit?action=usage.over_limit").await;
    let entries = entries["entries"].as_array().expect("entries");
    let mut limits: Vec<&str> = entries
        .iter()
        .map(|e| e["target"].as_str().expect("target"))
        .collect();
    limits.sort_unstable();
    assert_eq!(
        limits,
        vec![format!("usage/{today}"); 2],
        "one entry per limit and day"
    );
    let shown = usage(
        &app,
        &format!("/v1/orgs/acme/usage?from={today}&to={today}"),
    )
    .await;
    assert_eq!(
        shown["rows"][0]["over_limit"],
        json!(["max_gateways", "plugin"])
    );
    assert_eq!(shown["rows"][0]["days_over_limit"], 1);
    assert_eq!(shown["rows"][0]["gateways_active"], 4);
    let metrics = app.scrape().await;
    assert!(
        metrics.contains("mcpg_usage_over_limit_total{org=\"acme\",limit=\"max_gateways\"}")
            || metrics.contains("mcpg_usage_over_limit_total{limit=\"max_gateways\",org=\"acme\"}"),
        "over-limit metric missing"
    );
}

on_both_backends!(days_past_the_retention_roll_up_into_their_month);

async fn days_past_the_retention_roll_up_into_their_month(backend: Backend) {
    let start = first_day_at_8() - 86_400;
    let clock = Arc::new(ManualClock::new(start));
    let mut app = spawn_app_full(
        backend,
        |settings| settings.usage_retention = std::time::Duration::from_secs(30 * 86_400),
        Some(clock.clone()),
    )
    .await;
    let credential = app.gateway("acme").await;
    for _ in 0..3 {
        app.token_ok(&credential).await;
    }
    let cedar = report(
        "0.1.0",
        json!({"policy.cedar": {"allowed": 4, "refused": 0}}),
    );
    assert_eq!(
        token_with(&app, &credential, json!({"usage": cedar}))
            .await
            .0,
        StatusCode::OK
    );
    flush(&mut app).await;
    let d = day(start);
    let month = &d[..7];
    let before = usage(&app, &format!("/v1/orgs/acme/usage?from={d}&to={d}")).await;
    assert_eq!(summary(&before["rows"]), vec![(d.clone(), 1, 4, 1)]);
    // 40 days on, the start-up roll-up moves the day into its month.
    clock.advance(40 * 86_400);
    app.stop().await;
    app.start().await;
    let path = format!("/v1/orgs/acme/usage?from={d}&to={d}");
    let mut rolled = Value::Null;
    for _ in 0..100 {
        rolled = usage(&app, &path).await;
        if rolled["rows"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(rolled["rows"], json!([]), "the day is gone");
    let months = usage(
        &app,
        &format!("/v1/orgs/acme/usage?from={d}&to={d}&by=month"),
    )
    .await;
    assert_eq!(
        summary(&months["rows"]),
        vec![(month.to_owned(), 1, 4, u64::MAX)]
    );
    assert_eq!(months["rows"][0]["peak_gateways"], Value::Null);
    assert_eq!(
        months["rows"][0]["plugins"],
        json!({"policy.cedar": {"allowed": 4, "refused": 0}})
    );
}

/// An API key of `org` (its admin), made by the global admin.
async fn org_key(app: &TestApp, org: &str) -> String {
    let created = app
        .expect(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"name": format!("{org} key"), "org": org})),
            StatusCode::CREATED,
        )
        .await;
    created["token"].as_str().expect("token").to_owned()
}

on_both_backends!(another_orgs_admin_cannot_tell_an_orgs_usage_from_a_missing_org);

async fn another_orgs_admin_cannot_tell_an_orgs_usage_from_a_missing_org(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    app.gateway("globex").await;
    let (acme, globex) = (org_key(&app, "acme").await, org_key(&app, "globex").await);
    let get = |token: String, path: &'static str| {
        let request = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(token);
        async move { split(request.send().await.expect("sent")).await }
    };
    let (own, _) = get(acme.clone(), "/v1/orgs/acme/usage").await;
    assert_eq!(own, StatusCode::OK);
    let (other, other_body) = get(globex.clone(), "/v1/orgs/acme/usage").await;
    let (missing, missing_body) = get(globex.clone(), "/v1/orgs/no-such-org/usage").await;
    assert_eq!(
        (other, missing),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(other_body, missing_body);
    let (all, body) = get(acme, "/v1/admin/usage").await;
    assert_eq!(all, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn usage_queries_are_checked_with_clear_errors() {
    let app = spawn_app(Backend::Sqlite).await;
    app.gateway("acme").await;
    for (query, words) in [
        ("from=2026-11-31", "from must be a date"),
        ("from=2026-11-10&to=2026-11-01", "is after"),
        ("from=2024-01-01&to=2026-11-01", "at most 731"),
        ("by=week", "by must be day or month"),
        ("group=team", "group must be"),
        ("color=red", "invalid query"),
    ] {
        let (status, body) = app
            .send(Method::GET, &format!("/v1/orgs/acme/usage?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query} → {body}");
        assert_error(&body, "invalid_request");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(words), "{query}: {message}");
    }
    let (status, body) = app
        .send(Method::GET, "/v1/admin/usage?group=plugin", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn stopping_the_server_during_a_flush_loses_no_count() {
    // Flushes back to back: the stop lands in one, whose drained counts must still land.
    let mut app = spawn_app_full(
        Backend::Sqlite,
        |settings| settings.usage_flush_interval = std::time::Duration::from_millis(1),
        None,
    )
    .await;
    let credential = app.gateway("acme").await;
    for _ in 0..40 {
        app.token_ok(&credential).await;
    }
    flush(&mut app).await;
    let today = day(now());
    let answer = usage(
        &app,
        &format!("/v1/orgs/acme/usage?from={today}&to={today}"),
    )
    .await;
    assert_eq!(answer["rows"][0]["tokens"], 40);
}
