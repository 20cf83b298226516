//! Chain rejections: every broken link has its own reason, and nothing rejected is cached
//! or persisted.

use mcpg_entitlements::{RefreshError, State};
use mcpg_license_core::{Bounds, Catalog, EntitlementId, ManualClock, SigningKey, Tier};

use crate::support::*;

/// Refreshes a fresh gateway whose federation answers with a token signed under a
/// certificate made by `make`, and returns the refresh error code.
async fn rejection(
    make: impl FnOnce(&Authority) -> (mcpg_license_core::JwtSigner, String),
    org: &str,
    tier: Tier,
    edit: impl FnOnce(&mut mcpg_license_core::LicenseClaims),
) -> String {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), tier);
    let response = {
        let authority = fed.authority.lock().expect("lock");
        let (signer, certificate) = make(&authority);
        let mut c = claims(org, tier, START);
        edit(&mut c);
        mcpg_entitlements::TokenResponse {
            token: signer.sign(&c).expect("sign"),
            issuer_certificate: certificate,
            issuer_certificates: Vec::new(),
            plugin_set: None,
        }
    };
    fed.set(Behaviour::Fixed(response));
    let gateway = federated(dir.path(), &clock, &fed);
    let error = gateway.refresh_now().await.expect_err("rejected");
    assert!(matches!(error, RefreshError::Rejected(_)), "{error}");
    assert_eq!(
        gateway.check_default("identity.oidc").state,
        State::Unlicensed
    );
    assert_eq!(
        gateway.tenants().len(),
        0,
        "a rejected token is never cached"
    );
    let persisted = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("federation-"));
    assert!(!persisted, "a rejected token is never persisted");
    error.code().to_owned()
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_root_is_rejected() {
    let code = rejection(
        |_| {
            let stranger = SigningKey::generate().expect("key");
            Authority::issuer(
                &stranger,
                Bounds::unbounded(),
                START - DAY,
                START + 30 * DAY,
            )
        },
        "acme",
        Tier::Team,
        |_| {},
    )
    .await;
    assert_eq!(code, "untrusted_root");
}

#[tokio::test]
async fn an_expired_certificate_is_rejected() {
    let code = rejection(
        |a| Authority::issuer(&a.root, Bounds::unbounded(), START - 30 * DAY, START - DAY),
        "acme",
        Tier::Team,
        |_| {},
    )
    .await;
    assert_eq!(code, "certificate_expired");
}

fn bounded(
    edit: impl FnOnce(&mut Bounds),
) -> impl FnOnce(&Authority) -> (mcpg_license_core::JwtSigner, String) {
    let mut bounds = Bounds::unbounded();
    edit(&mut bounds);
    move |a| Authority::issuer(&a.root, bounds, START - DAY, START + 30 * DAY)
}

#[tokio::test]
async fn a_token_for_another_org_than_its_certificate_allows_is_rejected() {
    let make = bounded(|b| b.orgs = Some(vec!["byoc-corp".into()]));
    assert_eq!(
        rejection(make, "acme", Tier::Team, |_| {}).await,
        "org_not_allowed"
    );
}

#[tokio::test]
async fn a_token_above_its_certificates_max_tier_is_rejected() {
    let make = bounded(|b| b.max_tier = Tier::Team);
    assert_eq!(
        rejection(make, "acme", Tier::Enterprise, |_| {}).await,
        "tier_above_max"
    );
}

#[tokio::test]
async fn a_token_with_an_entitlement_its_certificate_does_not_allow_is_rejected() {
    let make = bounded(|b| b.entitlements = Some(Catalog::builtin().tier_defaults(Tier::Team)));
    let code = rejection(make, "acme", Tier::Team, |c| {
        c.ent
            .insert(EntitlementId::parse("plugin:policy.cedar").expect("valid"));
    })
    .await;
    assert_eq!(code, "entitlement_not_allowed");
}

#[tokio::test]
async fn a_token_living_longer_than_its_certificate_allows_is_rejected() {
    let make = bounded(|b| b.max_token_lifetime = 3_600);
    assert_eq!(
        rejection(make, "acme", Tier::Team, |_| {}).await,
        "lifetime_too_long"
    );
}

#[tokio::test]
async fn a_rejected_token_does_not_replace_a_good_one() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Enterprise);
    let gateway = federated(dir.path(), &clock, &fed);
    gateway.refresh_now().await.expect("good token");
    let stranger = SigningKey::generate().expect("key");
    let (signer, certificate) =
        Authority::issuer(&stranger, Bounds::unbounded(), START - DAY, START + DAY);
    fed.set(Behaviour::Fixed(mcpg_entitlements::TokenResponse {
        token: signer
            .sign(&claims("acme", Tier::Enterprise, START))
            .expect("sign"),
        issuer_certificate: certificate,
        issuer_certificates: Vec::new(),
        plugin_set: None,
    }));
    assert_eq!(
        gateway.refresh_now().await.expect_err("rejected").code(),
        "untrusted_root"
    );
    assert!(gateway.check(&acme(), "policy.cedar").allowed);
}

#[tokio::test]
async fn a_rotated_issuer_key_still_verifies_and_each_kid_is_verified_once() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let gateway = federated(dir.path(), &clock, &fed);
    gateway.refresh_now().await.expect("first key");
    clock.advance(HOUR);
    gateway.refresh_now().await.expect("same key again");
    fed.authority.lock().expect("lock").rotate();
    clock.advance(HOUR);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    assert_eq!(gateway.verified_issuers(), 2);
    let kid = gateway.snapshot().default.license.and_then(|l| l.kid);
    assert_eq!(
        kid.as_deref(),
        Some(
            fed.authority
                .lock()
                .expect("lock")
                .signer
                .key()
                .kid()
                .as_str()
        )
    );
}
