//! Active → Grace → Lapsed by time, recovery, revocation mid-grace, decisions per tier.

use mcpg_entitlements::{Denial, Reason, State};
use mcpg_license_core::{ManualClock, Tier};

use crate::support::*;

const PAID: &str = "policy.cedar";
const FREE: &str = "identity.apikey";

#[tokio::test]
async fn active_turns_to_grace_at_exp_and_lapses_exactly_at_grc_while_unreachable() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Enterprise);
    let gateway = federated(dir.path(), &clock, &fed);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    let (exp, grc) = (START + 24 * HOUR, START + 24 * HOUR + 7 * DAY);
    assert_eq!(gateway.check(&acme(), PAID).reason, Reason::Allowed);

    fed.set(Behaviour::Outage { retry_after: None });
    clock.set(exp - 1);
    assert!(gateway.refresh_now().await.is_err());
    assert_eq!(gateway.check(&acme(), PAID).state, State::Active);

    clock.set(exp);
    let in_grace = gateway.check(&acme(), PAID);
    assert_eq!(
        (in_grace.allowed, in_grace.state, in_grace.tier),
        (true, State::Grace, Tier::Enterprise)
    );
    clock.set(grc - 1);
    assert!(gateway.refresh_now().await.is_err());
    assert_eq!(gateway.check(&acme(), PAID).state, State::Grace);

    clock.set(grc);
    let paid = gateway.check(&acme(), PAID);
    assert_eq!(
        (paid.allowed, paid.reason, paid.state, paid.tier),
        (false, Reason::Lapsed, State::Lapsed, Tier::Free)
    );
    let free = gateway.check(&acme(), FREE);
    assert_eq!((free.allowed, free.state), (true, State::Lapsed));
    assert!(
        gateway
            .explain(Some(&acme()), PAID)
            .contains("grace period")
    );
}

#[tokio::test]
async fn a_lapsed_tenant_is_active_again_when_the_service_returns() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Enterprise);
    let gateway = federated(dir.path(), &clock, &fed);
    gateway.refresh_now().await.expect("first refresh");
    fed.set(Behaviour::Outage { retry_after: None });
    clock.advance(9 * DAY);
    assert!(gateway.refresh_now().await.is_err());
    assert_eq!(gateway.check(&acme(), PAID).state, State::Lapsed);

    fed.set(Behaviour::Serve {
        org: "acme".into(),
        tier: Tier::Enterprise,
    });
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    let decision = gateway.check(&acme(), PAID);
    assert_eq!((decision.allowed, decision.state), (true, State::Active));
}

#[tokio::test]
async fn a_403_license_revoked_in_the_middle_of_grace_revokes_at_once() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let gateway = federated(dir.path(), &clock, &fed);
    gateway.refresh_now().await.expect("first refresh");
    fed.set(Behaviour::Outage { retry_after: None });
    clock.advance(3 * DAY);
    assert!(gateway.refresh_now().await.is_err());
    assert_eq!(gateway.check(&acme(), "workspace.rbac").state, State::Grace);

    fed.set(Behaviour::Deny(Denial::LicenseRevoked));
    let outcome = gateway.refresh_now().await.expect_err("denied");
    assert_eq!(outcome.code(), "license_revoked");
    let paid = gateway.check(&acme(), "workspace.rbac");
    assert_eq!(
        (paid.allowed, paid.reason, paid.state),
        (false, Reason::Revoked, State::Revoked)
    );
    assert!(gateway.check(&acme(), FREE).allowed);
    assert_eq!(gateway.snapshot().default.revoked, Some("license_revoked"));
}

#[tokio::test]
async fn an_invalid_credential_revokes_and_stops_refreshing() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let gateway = federated(dir.path(), &clock, &fed);
    gateway.refresh_now().await.expect("first refresh");
    fed.set(Behaviour::Deny(Denial::InvalidCredential));
    assert!(gateway.refresh_now().await.is_err());
    assert_eq!(
        gateway.check_default("workspace.rbac").state,
        State::Revoked
    );
    let calls = fed.calls();
    clock.advance(30 * DAY);
    assert_eq!(gateway.refresh_due().await, 0);
    assert_eq!(
        fed.calls(),
        calls,
        "no request after the credential was refused"
    );
    assert!(gateway.snapshot().federation[0].stopped);
}

#[tokio::test]
async fn decisions_follow_the_tier_of_the_token() {
    for (tier, allowed, denied) in [
        (Tier::Free, "observability.metrics", "identity.oidc"),
        (Tier::Team, "workspace.rbac", "environment.rbac"),
        (Tier::Enterprise, "environment.rbac", "shadow.exfiltrate"),
    ] {
        let dir = temp_dir();
        let clock = ManualClock::new(START);
        let fed = FakeFederation::new(clock.clone(), tier);
        let gateway = federated(dir.path(), &clock, &fed);
        gateway.refresh_now().await.expect("refresh");
        let yes = gateway.check(&acme(), allowed);
        assert_eq!((yes.allowed, yes.tier), (true, tier), "{tier} {allowed}");
        let no = gateway.check(&acme(), denied);
        assert!(!no.allowed, "{tier} {denied}");
        let expected = if tier == Tier::Enterprise {
            Reason::UnknownPlugin
        } else {
            Reason::NotEntitled
        };
        assert_eq!(no.reason, expected);
    }
}

#[tokio::test]
async fn grace_warns_once_an_hour() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let gateway = federated(dir.path(), &clock, &fed);
    gateway.refresh_now().await.expect("refresh");
    gateway.tick();
    assert_eq!(gateway.warnings_emitted(), 0, "no warning while active");
    clock.set(START + 24 * HOUR + 10);
    gateway.tick();
    clock.advance(30 * 60);
    gateway.tick();
    assert_eq!(gateway.warnings_emitted(), 1);
    clock.advance(30 * 60);
    gateway.tick();
    assert_eq!(gateway.warnings_emitted(), 2);
}

#[tokio::test]
async fn unknown_tenants_get_tier0_with_not_federated() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Enterprise);
    let gateway = federated(dir.path(), &clock, &fed);
    let before = gateway.check_default(PAID);
    assert_eq!(
        (before.allowed, before.reason, before.state),
        (false, Reason::NotFederated, State::Unlicensed)
    );
    gateway.refresh_now().await.expect("refresh");
    let other = mcpg_entitlements::TenantKey::parse("globex/a/b").expect("valid");
    assert_eq!(gateway.check(&other, PAID).reason, Reason::NotFederated);
    assert!(gateway.check(&other, FREE).allowed);
    assert!(gateway.check_default(PAID).allowed);
}

#[tokio::test]
async fn a_kept_handle_follows_refreshes_and_time() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Enterprise);
    let gateway = federated(dir.path(), &clock, &fed);
    let handle = gateway.default_handle();
    assert!(!handle.check(PAID).allowed);
    gateway.refresh_now().await.expect("refresh");
    assert!(handle.check(PAID).allowed);
    let index = mcpg_entitlements::PluginIndex::resolve(gateway.catalog(), PAID);
    clock.advance(8 * DAY + 1);
    assert_eq!(handle.check_index(index).reason, Reason::Lapsed);
}

#[tokio::test]
async fn explain_says_why_in_words_for_every_reason() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let gateway = federated(dir.path(), &clock, &fed);
    let before = gateway.explain(None, "workspace.rbac");
    assert!(
        before.contains("no entitlements from the federation"),
        "{before}"
    );
    gateway.refresh_now().await.expect("refresh");
    let allowed = gateway.explain(Some(&acme()), "workspace.rbac");
    assert!(
        allowed.starts_with("workspace.rbac is allowed") && allowed.contains("lic-acme"),
        "{allowed}"
    );
    let free = gateway.explain(Some(&acme()), "identity.apikey");
    assert!(free.contains("team license"), "{free}");
    let denied = gateway.explain(Some(&acme()), "policy.cedar");
    assert!(
        denied.contains("does not include plugin:policy.cedar"),
        "{denied}"
    );
    let unknown = gateway.explain(Some(&acme()), "shadow.exfiltrate");
    assert!(unknown.contains("catalog"), "{unknown}");
    fed.set(Behaviour::Outage { retry_after: None });
    clock.set(START + 2 * DAY);
    let grace = gateway.explain(None, "workspace.rbac");
    assert!(grace.contains("grace bound"), "{grace}");
    fed.set(Behaviour::Deny(Denial::TrialExpired));
    assert!(gateway.refresh_now().await.is_err());
    let revoked = gateway.explain(None, "workspace.rbac");
    assert!(revoked.contains("trial_expired"), "{revoked}");
}
