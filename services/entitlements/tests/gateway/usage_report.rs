//! Usage reports of federated gateways: every token request carries the checks counted
//! since the last acknowledged report; a failed request keeps them for the next one.

use std::collections::BTreeMap;

use mcpg_entitlements::{GatewayBuilder, ModeSettings, UsageReport};
use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::usage::PluginCounts;
use mcpg_license_core::{ManualClock, Tier};

use crate::standin::{Answer, StandIn};
use crate::support::*;

fn counts(allowed: u64, refused: u64) -> PluginCounts {
    PluginCounts { allowed, refused }
}

fn plugins(report: &Option<UsageReport>) -> Vec<(String, PluginCounts)> {
    report
        .as_ref()
        .expect("a report was sent")
        .plugins
        .clone()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn a_refresh_reports_the_checks_and_a_failed_refresh_sends_them_again() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let gateway = federated(dir.path(), &clock, &fed);
    gateway.refresh_now().await.expect("first token");
    assert_eq!(plugins(&fed.reports()[0]), vec![], "nothing checked yet");

    for _ in 0..3 {
        assert!(gateway.check(&acme(), "workspace.rbac").allowed);
    }
    assert!(!gateway.check_default("policy.cedar").allowed);
    assert!(!gateway.check_default("shadow.exfiltrate").allowed);
    clock.set(START + HOUR);
    fed.set(Behaviour::Outage { retry_after: None });
    assert!(gateway.refresh_now().await.is_err());
    let expected = vec![
        ("_unknown".to_owned(), counts(0, 1)),
        ("policy.cedar".to_owned(), counts(0, 1)),
        ("workspace.rbac".to_owned(), counts(3, 0)),
    ];
    assert_eq!(plugins(&fed.reports()[1]), expected);

    // Not acknowledged: sent again, with what was counted meanwhile.
    assert!(gateway.check_default("workspace.rbac").allowed);
    clock.set(START + 2 * HOUR);
    fed.set(Behaviour::Serve {
        org: "acme".into(),
        tier: Tier::Team,
    });
    gateway.refresh_now().await.expect("refresh");
    let resent = fed.reports()[2].clone().expect("report");
    assert_eq!(
        plugins(&Some(resent.clone())),
        vec![
            ("_unknown".to_owned(), counts(0, 1)),
            ("policy.cedar".to_owned(), counts(0, 1)),
            ("workspace.rbac".to_owned(), counts(4, 0)),
        ]
    );
    assert_eq!(resent.v, 2, "format 2: counts as pairs");
    assert_eq!(
        resent.since,
        to_rfc3339(START),
        "since the last acknowledged report"
    );
    assert_eq!(resent.until, to_rfc3339(START + 2 * HOUR));
    assert_eq!(resent.version, env!("CARGO_PKG_VERSION"));

    // Acknowledged: the next report starts from zero.
    clock.set(START + 3 * HOUR);
    gateway.refresh_now().await.expect("refresh");
    let next = fed.reports()[3].clone().expect("report");
    assert_eq!(next.plugins, BTreeMap::new());
    assert_eq!(next.since, to_rfc3339(START + 2 * HOUR));
    let snapshot = gateway.snapshot();
    assert_eq!(
        snapshot.federation[0].last_usage_report,
        Some(START + 3 * HOUR)
    );
}

#[tokio::test]
async fn the_http_client_sends_the_report_as_the_usage_member_of_the_body() {
    let server = StandIn::start(Answer::Token {
        org: "acme".into(),
        tier: Tier::Team,
    })
    .await;
    let dir = temp_dir();
    let mut settings = federated_settings(dir.path(), server.authority.trust());
    if let ModeSettings::Federated { url, .. } = &mut settings.mode {
        *url = server.url();
    }
    let gateway = GatewayBuilder::new(settings)
        .build()
        .expect("gateway starts");
    gateway.refresh_now().await.expect("token");
    for _ in 0..2 {
        gateway.check_default("workspace.rbac");
    }
    gateway.refresh_now().await.expect("token");
    let bodies = server.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["usage"]["plugins"], serde_json::json!({}));
    let usage = &bodies[1]["usage"];
    assert_eq!(usage["v"], 2);
    assert_eq!(
        usage["plugins"],
        serde_json::json!({"workspace.rbac": [2, 0]})
    );
    assert_eq!(usage["since"], bodies[0]["usage"]["until"]);
    assert!(usage["until"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(
        bodies[1].as_object().map(|o| o.len()),
        Some(1),
        "only the usage member: {}",
        bodies[1]
    );
}

#[tokio::test]
async fn a_federation_that_refuses_the_report_still_hands_out_tokens() {
    // A federation older than usage reports refuses the unknown member with 400.
    let server = StandIn::start(Answer::Token {
        org: "acme".into(),
        tier: Tier::Team,
    })
    .await;
    server.then(Answer::Error {
        status: 400,
        code: "invalid_body",
        retry_after: None,
    });
    let dir = temp_dir();
    let mut settings = federated_settings(dir.path(), server.authority.trust());
    if let ModeSettings::Federated { url, .. } = &mut settings.mode {
        *url = server.url();
    }
    let gateway = GatewayBuilder::new(settings)
        .build()
        .expect("gateway starts");
    gateway
        .refresh_now()
        .await
        .expect("a token, asked again without the report");
    gateway.refresh_now().await.expect("token");
    let bodies = server.bodies();
    assert_eq!(bodies.len(), 3);
    assert!(bodies[0].get("usage").is_some());
    assert_eq!(bodies[1], serde_json::json!({}), "asked again without it");
    assert_eq!(bodies[2], serde_json::json!({}), "reports paused for a day");
}
