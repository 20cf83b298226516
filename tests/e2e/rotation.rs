//! Keys change under running gateways: the development root's `mcpg-ctl keys rotate`, and a
//! roll to a new certified key with `mcpg-ctl keys import`. Gateways keep federating and
//! verifying throughout, the same gateway included.

use std::time::Duration;

use serde_json::Value;

use crate::support::license::short_token_service;
use crate::support::process::wait_until;
use crate::support::{Gateway, Service, Signer};

fn kid(status: &Value) -> String {
    status["default"]["license"]["kid"]
        .as_str()
        .unwrap_or_else(|| panic!("a kid in {status}"))
        .to_owned()
}

#[test]
fn tokens_of_a_rotated_development_key_verify_and_persisted_ones_still_do() {
    let service = Service::start(&["--key-publish-delay", "1s", "--key-reload-interval", "1s"]);
    let root = service.dev_root();
    let credential = service.tenant("acme", "enterprise", &[], "gw-1");
    let before = Gateway::federated(&service.url, &credential, &[&root]);
    assert!(before.check("policy.cedar").allowed());
    let old = kid(&before.status());

    let rotated = service.ctl_json(&["keys", "rotate"]);
    assert_eq!(rotated["state"], "pending");
    let new = rotated["kid"]
        .as_str()
        .expect("the new key's kid")
        .to_owned();
    assert_ne!(new, old);
    // Once active (after the publish delay, at the next key reload), it signs: a gateway
    // federating now gets a token of the new key, chained to the same root.
    let after = wait_until("the rotated key to sign", Duration::from_secs(20), || {
        let fresh = Gateway::federated(&service.url, &credential, &[&root]);
        assert!(fresh.check("policy.cedar").allowed());
        (kid(&fresh.status()) == new).then_some(fresh)
    });
    assert_eq!(after.status()["default"]["state"], "active");
    // The token of the old key, persisted before the rotation, still verifies.
    let resumed = before.run(&["--no-refresh", "status", "--json"]);
    let resumed: Value = serde_json::from_slice(&resumed.stdout).expect("status --json");
    assert_eq!(resumed["default"]["state"], "active");
    assert_eq!(kid(&resumed), old);
}

#[test]
fn the_same_gateway_keeps_refreshing_across_a_roll_to_a_new_certified_key() {
    let signer = Signer::new();
    let (service, root) = short_token_service(
        &signer,
        "3s",
        &["--key-publish-delay", "1s", "--key-reload-interval", "1s"],
    );
    let credential = service.tenant("acme", "enterprise", &[], "gw-1");
    let gateway = Gateway::federated(&service.url, &credential, &[&root.public]);
    assert!(gateway.check("policy.cedar").allowed());
    let old = kid(&gateway.status());

    let next = signer.keygen("issuer-next");
    let certificate = signer.certify(
        &root,
        &next,
        "issuer-next.cert",
        &["--max-token-lifetime", "3s", "--valid-for", "30d"],
    );
    let imported = service.ctl_json(&[
        "keys",
        "import",
        "--signing-key",
        &next.secret.display().to_string(),
        "--certificate",
        &certificate.display().to_string(),
    ]);
    assert_eq!(imported["state"], "pending");
    let new = imported["kid"]
        .as_str()
        .expect("the new key's kid")
        .to_owned();
    assert_ne!(new, old);

    // The gateway's tokens last 3 s: it refreshes every few seconds and never loses its
    // entitlements while the service switches keys, until it holds a token of the new key.
    // (On a loaded machine one refresh may time out and ride a second in grace: what must
    // hold is that every answer allows, and that the new key's token verifies.)
    wait_until(
        "the gateway to hold a token of the new key",
        Duration::from_secs(25),
        || {
            let check = gateway.check("policy.cedar");
            assert!(check.allowed(), "{}", check.json);
            let status = gateway.status();
            (status["default"]["state"] == "active" && kid(&status) == new).then_some(())
        },
    );
    let settled = gateway.status();
    assert_eq!(
        settled["federation"][0]["consecutive_failures"], 0,
        "{settled}"
    );
}
