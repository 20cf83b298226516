//! Offline licenses: they gate plugins, bind to a deployment, and expire to Tier-0.

use std::path::PathBuf;
use std::sync::Arc;

use mcpg_entitlements::{
    Gateway, GatewayBuilder, ModeSettings, Reason, Settings, StartError, State,
};
use mcpg_license_core::{
    LicenseClaims, Limits, ManualClock, SigningKey, Tier, TrustStore, issue_offline_license,
};

use crate::support::*;

fn license(root: &SigningKey, tier: Tier, bind: Option<&str>) -> String {
    let mut c: LicenseClaims = claims("airgap", tier, START - DAY);
    c.exp = START + 365 * DAY;
    c.rfa = None;
    c.grc = None;
    c.sub = "lic-airgap".into();
    c.bind = bind.map(str::to_owned);
    issue_offline_license(&c, root, None).expect("license signs")
}

fn offline(
    root: &SigningKey,
    token: String,
    deployment: Option<&str>,
    clock: &ManualClock,
    dir: &std::path::Path,
) -> Result<Gateway, StartError> {
    GatewayBuilder::new(Settings {
        mode: ModeSettings::Offline {
            license: token,
            license_path: PathBuf::from("airgap.license"),
            deployment_id: deployment.map(str::to_owned),
        },
        state_dir: dir.to_owned(),
        trust: TrustStore::new([root.public_key().clone()]),
        revocation_list: None,
        more_tenants: Vec::new(),
    })
    .clock(Arc::new(clock.clone()))
    .build()
}

fn airgap() -> mcpg_entitlements::TenantKey {
    mcpg_entitlements::TenantKey::parse("airgap/platform/prod").expect("valid")
}

#[test]
fn an_offline_license_gates_plugins_by_its_entitlements() {
    let dir = temp_dir();
    let root = SigningKey::generate().expect("root");
    let clock = ManualClock::new(START);
    let gateway = offline(
        &root,
        license(&root, Tier::Team, Some("dc1")),
        Some("dc1"),
        &clock,
        dir.path(),
    )
    .expect("starts");
    let rbac = gateway.check(&airgap(), "workspace.rbac");
    assert_eq!(
        (rbac.allowed, rbac.state, rbac.tier),
        (true, State::Offline, Tier::Team)
    );
    let cedar = gateway.check_default("policy.cedar");
    assert_eq!((cedar.allowed, cedar.reason), (false, Reason::NotEntitled));
    assert_eq!(gateway.default_tenant(), Some(airgap()));
}

#[test]
fn the_licenses_limits_are_shown_in_the_status_for_the_gateway_to_enforce() {
    let dir = temp_dir();
    let root = SigningKey::generate().expect("root");
    let clock = ManualClock::new(START);
    let mut c: LicenseClaims = claims("airgap", Tier::Team, START - DAY);
    c.exp = START + 365 * DAY;
    c.rfa = None;
    c.grc = None;
    c.sub = "lic-airgap".into();
    c.lim = Limits {
        max_servers: Some(5),
        max_concurrent_requests: Some(100),
        ..Limits::default()
    };
    let token = issue_offline_license(&c, &root, None).expect("license signs");
    let gateway = offline(&root, token, None, &clock, dir.path()).expect("starts");
    let license = gateway.snapshot().default.license.expect("a license");
    assert_eq!(license.limits.max_servers, Some(5));
    assert_eq!(license.limits.max_concurrent_requests, Some(100));
    assert_eq!(license.limits.max_gateways, None, "absent: unlimited");
    let json = serde_json::to_value(&license).expect("serialises");
    assert_eq!(
        json["limits"],
        serde_json::json!({"max_servers": 5, "max_concurrent_requests": 100})
    );
}

#[test]
fn a_license_bound_to_another_deployment_is_rejected() {
    let dir = temp_dir();
    let root = SigningKey::generate().expect("root");
    let clock = ManualClock::new(START);
    let error = offline(
        &root,
        license(&root, Tier::Team, Some("dc1")),
        Some("dc2"),
        &clock,
        dir.path(),
    )
    .expect_err("rejected");
    assert!(
        matches!(
            error,
            StartError::License {
                code: "binding_mismatch",
                ..
            }
        ),
        "{error}"
    );
    let unbound = offline(
        &root,
        license(&root, Tier::Team, Some("dc1")),
        None,
        &clock,
        dir.path(),
    );
    assert!(unbound.is_err(), "a bound license needs the deployment id");
}

#[test]
fn a_license_from_an_unknown_signer_is_rejected() {
    let dir = temp_dir();
    let root = SigningKey::generate().expect("root");
    let stranger = SigningKey::generate().expect("stranger");
    let clock = ManualClock::new(START);
    let error = offline(
        &root,
        license(&stranger, Tier::Team, None),
        None,
        &clock,
        dir.path(),
    )
    .expect_err("rejected");
    assert!(
        matches!(
            error,
            StartError::License {
                code: "unknown_key",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn an_expired_license_means_tier0() {
    let dir = temp_dir();
    let root = SigningKey::generate().expect("root");
    let clock = ManualClock::new(START + 400 * DAY);
    let gateway = offline(
        &root,
        license(&root, Tier::Enterprise, None),
        None,
        &clock,
        dir.path(),
    )
    .expect("starts");
    let paid = gateway.check(&airgap(), "policy.cedar");
    assert_eq!(
        (paid.allowed, paid.reason, paid.state),
        (false, Reason::OfflineExpired, State::OfflineExpired)
    );
    assert!(gateway.check(&airgap(), "identity.apikey").allowed);
}

#[test]
fn a_license_expiring_while_running_drops_to_tier0_and_warns_before() {
    let dir = temp_dir();
    let root = SigningKey::generate().expect("root");
    let clock = ManualClock::new(START);
    let gateway = offline(
        &root,
        license(&root, Tier::Enterprise, None),
        None,
        &clock,
        dir.path(),
    )
    .expect("starts");
    assert_eq!(gateway.warnings_emitted(), 0);
    clock.set(START + 350 * DAY);
    gateway.tick();
    gateway.tick();
    assert_eq!(gateway.warnings_emitted(), 1, "one warning a day");
    clock.advance(DAY);
    gateway.tick();
    assert_eq!(gateway.warnings_emitted(), 2);
    clock.set(START + 365 * DAY);
    assert_eq!(
        gateway.check(&airgap(), "policy.cedar").reason,
        Reason::OfflineExpired
    );
}
