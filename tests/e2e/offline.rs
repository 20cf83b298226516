//! Scenario 4: an air-gapped site. `mcpg-license keygen` and `issue` make an offline license
//! with no server at all; the gateway in offline mode allows what the license grants, checks
//! its deployment binding, and falls back to Tier-0 once it has expired.

use std::time::Duration;

use crate::support::process::wait_until;
use crate::support::{Gateway, Signer};

#[test]
fn an_issued_team_license_allows_team_plugins_and_denies_enterprise_ones() {
    let signer = Signer::new();
    let root = signer.keygen("root");
    let key = root.secret.display().to_string();
    signer.ok(&[
        "issue",
        "--key",
        &key,
        "--org",
        "acme",
        "--tier",
        "team",
        "--without",
        "plugin:observability.audit",
        "--out",
        "acme.license",
    ]);
    let gateway = Gateway::offline(&signer.path("acme.license"), &[&root.public], None);

    let allowed = gateway.check("identity.oidc");
    assert!(allowed.allowed(), "{}", allowed.json);
    assert_eq!(allowed.field("state"), "offline");
    let denied = gateway.check("identity.saml");
    assert!(!denied.allowed());
    assert_eq!(denied.field("reason"), "not_entitled");
    assert!(!gateway.check("observability.audit").allowed());
    assert_eq!(
        gateway.check("no.such-plugin").field("reason"),
        "unknown_plugin"
    );
    let status = gateway.status();
    assert_eq!(status["mode"], "offline");
    assert_eq!(status["default"]["tier"], "team");
}

#[test]
fn a_license_bound_to_another_deployment_does_not_start() {
    let signer = Signer::new();
    let root = signer.keygen("root");
    let key = root.secret.display().to_string();
    signer.ok(&[
        "issue",
        "--key",
        &key,
        "--org",
        "acme",
        "--tier",
        "team",
        "--bind",
        "dc1-cluster-7",
        "--out",
        "acme.license",
    ]);
    let license = signer.path("acme.license");
    let root_public = root.public.display().to_string();
    signer.ok(&[
        "verify",
        "acme.license",
        "--trust",
        &root_public,
        "--bind",
        "dc1-cluster-7",
    ]);

    let bound = Gateway::offline(&license, &[&root.public], Some("dc1-cluster-7"));
    assert!(bound.check("identity.oidc").allowed());
    let elsewhere = Gateway::offline(&license, &[&root.public], Some("dc2-cluster-1"));
    let refused = elsewhere.run(&["check", "identity.oidc"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a license bound to dc1 started on dc2"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("dc1-cluster-7"), "{stderr}");
}

#[test]
fn an_expired_license_leaves_only_tier0_plugins() {
    let signer = Signer::new();
    let root = signer.keygen("root");
    let key = root.secret.display().to_string();
    // `issue` refuses a license that has already expired: this one expires in a second.
    signer.ok(&[
        "issue",
        "--key",
        &key,
        "--org",
        "acme",
        "--tier",
        "enterprise",
        "--valid-for",
        "1s",
        "--out",
        "acme.license",
    ]);
    let gateway = Gateway::offline(&signer.path("acme.license"), &[&root.public], None);
    let paid = wait_until("the license to expire", Duration::from_secs(10), || {
        let check = gateway.check("identity.saml");
        (check.field("state") == "offline_expired").then_some(check)
    });
    assert!(!paid.allowed(), "{}", paid.json);
    assert!(gateway.check("identity.apikey").allowed());
}
