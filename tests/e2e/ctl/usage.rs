//! `mcpg-ctl usage show|export` against a real service: gateways ask for tokens (some with
//! usage reports), the service flushes its counts, and the month's CSV export has exactly
//! the expected columns and totals.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Server, assert_one_error, stdout};
use crate::support::process::wait_until;

fn register(server: &Server, org: &str, name: &str) -> String {
    let registered = server.json(["gateway", "register", &format!("{org}/main/prod"), name]);
    registered["credential"]
        .as_str()
        .expect("credential")
        .to_owned()
}

fn setup(server: &Server, org: &str, max_gateways: u32) {
    server
        .ctl(["org", "create", org, "--display-name", org])
        .success();
    let limit = format!("max_gateways={max_gateways}");
    server
        .ctl([
            "license",
            "set",
            org,
            "--tier",
            "team",
            "--entitlement",
            "plugin:policy.cedar",
            "--limit",
            &limit,
        ])
        .success();
    server
        .ctl(["workspace", "create", &format!("{org}/main")])
        .success();
    server
        .ctl(["env", "create", &format!("{org}/main/prod")])
        .success();
}

fn token(server: &Server, credential: &str, body: &Value) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/federation/token", server.url))
        .bearer_auth(credential)
        .json(body)
        .send()
        .expect("token request");
    assert_eq!(response.status().as_u16(), 200);
}

#[test]
fn the_month_export_has_one_row_per_org_with_exact_totals() {
    let server = Server::start();
    setup(&server, "acme", 2);
    setup(&server, "globex", 5);
    let (a1, a2) = (
        register(&server, "acme", "edge-1"),
        register(&server, "acme", "edge-2"),
    );
    let g1 = register(&server, "globex", "edge-1");
    // Renewed with one seat: two gateways are now one too many (shown, not cut off).
    server
        .ctl([
            "license",
            "set",
            "acme",
            "--tier",
            "team",
            "--entitlement",
            "plugin:policy.cedar",
            "--limit",
            "max_gateways=1",
        ])
        .success();
    let report = json!({"usage": {"v": 1, "since": "2026-11-03T08:00:00Z",
        "until": "2026-11-03T16:00:00Z", "version": "0.1.0",
        "plugins": {"policy.cedar": {"allowed": 3, "refused": 1}}}});
    token(&server, &a1, &report);
    token(&server, &a1, &report);
    token(&server, &a2, &json!({}));
    token(&server, &g1, &json!({"usage": "not a report"}));
    // The service writes its counts every 10 s.
    wait_until("the usage flush", Duration::from_secs(30), || {
        let shown = server.json(["usage", "show", "globex"]);
        let rows = shown["rows"].as_array()?;
        (rows.last()?["tokens"] == 1).then_some(())
    });
    let shown = server.json(["usage", "show", "acme"]);
    let today = shown["rows"]
        .as_array()
        .and_then(|r| r.last())
        .cloned()
        .expect("a row");
    assert_eq!(today["gateways_active"], 2);
    assert_eq!(today["tokens"], 3);
    assert_eq!(
        today["plugins"]["policy.cedar"],
        json!({"allowed": 6, "refused": 2})
    );
    assert_eq!(today["over_limit"], json!(["max_gateways"]));

    let month = &today["period"].as_str().expect("period")[..7];
    let day_of_month: u32 = today["period"].as_str().expect("period")[8..]
        .parse()
        .expect("day");
    // p95 by nearest rank over the month's days so far (days without usage count 0).
    let p95 = if day_of_month <= 19 { 2 } else { 0 };
    let csv = stdout(
        &server
            .ctl(["usage", "export", "--month", month, "-o", "csv"])
            .success(),
    );
    assert_eq!(
        csv,
        format!(
            "org,tier,max_gateways,gateways_p95,gateways_max,tokens,plugins_used,days_over_limit\r\n\
             acme,team,1,{p95},2,3,policy.cedar,1\r\n\
             globex,team,5,{},1,1,,0\r\n",
            u32::from(day_of_month <= 19)
        )
    );
    let table = stdout(&server.ctl(["usage", "show", "acme"]).success());
    assert!(
        table.contains("OVER LIMIT") && table.contains("max_gateways"),
        "{table}"
    );
    let csv = stdout(&server.ctl(["usage", "show", "acme", "-o", "csv"]).success());
    assert!(
        csv.starts_with("period,gateways,peak,max,tokens,plugins,versions,over_limit\r\n"),
        "{csv}"
    );
    assert_one_error(server.ctl(["org", "list", "-o", "csv"]), 2, "usage show");
    assert_one_error(
        server.ctl(["usage", "export", "--month", "2026-13"]),
        2,
        "expected a month YYYY-MM",
    );
}
