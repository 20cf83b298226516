//! Scenario 2: the service goes away. Gateways keep the entitlements of their persisted
//! token: a fresh token needs no federation at all, and past its expiry the gateway rides
//! the outage out in grace (refreshes failing as `outage`) until the signed grace bound.

use std::time::Duration;

use crate::support::license::short_token_service;
use crate::support::process::wait_until;
use crate::support::{Gateway, Service, Signer};

#[test]
fn a_gateway_keeps_its_entitlements_when_the_service_is_killed() {
    let mut service = Service::start(&[]);
    let credential = service.tenant("globex", "team", &[], "gw-1");
    let gateway = Gateway::federated(&service.url, &credential, &[&service.dev_root()]);
    assert!(gateway.check("workspace.rbac").allowed());

    service.kill();
    assert!(!service.ready(), "the service is down");
    let kept = gateway.check("workspace.rbac");
    assert!(kept.allowed(), "{}", kept.json);
    assert_eq!(kept.field("state"), "active");
    assert!(!gateway.check("environment.rbac").allowed());
}

#[test]
fn past_its_token_expiry_a_gateway_rides_out_the_outage_in_grace() {
    let signer = Signer::new();
    let (mut service, root) = short_token_service(&signer, "3s", &[]);
    let credential = service.tenant("acme", "team", &[], "gw-1");
    let gateway = Gateway::federated(&service.url, &credential, &[&root.public]);
    let first = gateway.check("workspace.rbac");
    assert!(first.allowed(), "{}", first.json);
    let license = gateway.status()["default"]["license"].clone();
    let (exp, grc) = (
        license["expires_at"].as_i64().expect("expires_at"),
        license["grace_until"].as_i64().expect("grace_until"),
    );
    assert_eq!(
        grc - exp,
        7 * 86_400,
        "the grace bound is signed: {license}"
    );

    service.kill();
    // Each status is a new process resuming from the state directory; once the token has
    // expired its refresh is due, fails, and the gateway is in grace.
    let status = wait_until(
        "the gateway to enter grace",
        Duration::from_secs(20),
        || {
            let status = gateway.status();
            (status["default"]["state"] == "grace").then_some(status)
        },
    );
    let federation = &status["federation"][0];
    let error = federation["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("outage"), "{status}");
    assert!(federation["consecutive_failures"].as_u64() >= Some(1));
    assert!(
        status["default"]["seconds_to_grace_end"].as_i64() > Some(6 * 86_400),
        "{status}"
    );
    assert_eq!(status["default"]["license"]["grace_until"], grc);

    let kept = gateway.check("workspace.rbac");
    assert!(
        kept.allowed(),
        "entitlements are kept in grace: {}",
        kept.json
    );
    assert_eq!(kept.field("state"), "grace");
    let denied = gateway.check("environment.rbac");
    assert!(!denied.allowed());
    assert_eq!(denied.field("reason"), "not_entitled");
}
