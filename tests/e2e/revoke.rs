//! Scenario 3: the operator says no with `mcpg-ctl` — a license revoked, an org suspended, a
//! gateway's credential revoked. At its next refresh the gateway drops to Tier-0 at once
//! (grace is for outages, not for an explicit no).

use std::time::Duration;

use serde_json::Value;

use crate::support::license::short_token_service;
use crate::support::process::wait_until;
use crate::support::{Gateway, Signer};

/// Polls `check PLUGIN` until the gateway reports `revoked`; returns the last status.
fn wait_for_revoked(gateway: &Gateway, plugin: &str) -> Value {
    let check = wait_until("the gateway to be revoked", Duration::from_secs(20), || {
        let check = gateway.check(plugin);
        (check.field("state") == "revoked").then_some(check)
    });
    assert!(!check.allowed(), "{}", check.json);
    assert_eq!(check.field("reason"), "revoked");
    assert_eq!(check.field("tier"), "free");
    gateway.status()
}

#[test]
fn revoking_the_license_suspending_the_org_or_revoking_the_gateway_ends_entitlements() {
    let signer = Signer::new();
    let (service, root) = short_token_service(&signer, "3s", &["--grant-cache-ttl", "1s"]);
    let gateways: Vec<(&str, Gateway)> = ["acme", "globex", "initech"]
        .into_iter()
        .map(|org| {
            let credential = service.tenant(org, "team", &[], "gw-1");
            (
                org,
                Gateway::federated(&service.url, &credential, &[&root.public]),
            )
        })
        .collect();
    for (org, gateway) in &gateways {
        let check = gateway.check("workspace.rbac");
        assert!(check.allowed(), "{org}: {}", check.json);
        assert_eq!(check.field("state"), "active");
    }
    let initech_gateway = service.ctl_json(&["gateway", "list", "initech/main/prod"]);
    let initech_gateway = initech_gateway[0]["id"]
        .as_str()
        .expect("gateway id")
        .to_owned();

    service.ctl_ok(&["license", "revoke", "acme"]);
    service.ctl_ok(&["org", "suspend", "globex"]);
    service.ctl_ok(&["gateway", "revoke", "initech/main/prod", &initech_gateway]);

    let acme = wait_for_revoked(&gateways[0].1, "workspace.rbac");
    assert_eq!(acme["default"]["revoked"], "license_revoked", "{acme}");
    // A restart that only reads the state directory (no refresh) still says why, and the
    // next refresh is a real time, not the epoch.
    let out = gateways[0].1.run(&["--no-refresh", "status", "--json"]);
    let resumed: Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(resumed["default"]["state"], "revoked", "{resumed}");
    assert_eq!(
        resumed["default"]["revoked"], "license_revoked",
        "{resumed}"
    );
    let next = resumed["federation"][0]["next_refresh"]
        .as_i64()
        .expect("next refresh");
    assert!(next > 1_700_000_000, "{resumed}");
    assert!(
        resumed["federation"][0]["last_error"]
            .to_string()
            .contains("license_revoked"),
        "{resumed}"
    );
    // When the no was decided survives too: a real time, the same as before the restart.
    let since = resumed["default"]["revoked_since"]
        .as_i64()
        .expect("revoked_since");
    assert!(since > 1_700_000_000, "{resumed}");
    assert_eq!(acme["default"]["revoked_since"], since, "{acme}");
    // And in words: revoked, since when, never "not_federated" or "next at 1970".
    let out = gateways[0].1.run(&["--no-refresh", "status"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("state:    revoked\n"), "{text}");
    let decided = format!(
        "revoked:  license_revoked (decided {}",
        resumed["default"]["revoked_since_rfc3339"]
            .as_str()
            .expect("revoked_since_rfc3339")
    );
    assert!(text.contains(&decided), "{text}");
    assert!(
        !text.contains("not_federated") && !text.contains("1970"),
        "{text}"
    );
    let globex = wait_for_revoked(&gateways[1].1, "workspace.rbac");
    assert_eq!(globex["default"]["revoked"], "org_suspended", "{globex}");
    let initech = wait_for_revoked(&gateways[2].1, "workspace.rbac");
    assert_eq!(initech["federation"][0]["stopped"], true, "{initech}");
    // Free-tier plugins remain: the gateway runs as Tier-0.
    assert!(gateways[0].1.check("identity.apikey").allowed());
}
