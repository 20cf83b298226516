//! A token served with several certificates of its key (a root rollover): the gateway uses
//! the first that chains to a root it pins and persists that one; when none does, the
//! primary's error is the answer.

use mcpg_entitlements::{State, TokenResponse};
use mcpg_license_core::{Bounds, IssuerCertificate, ManualClock, SigningKey, Tier};

use crate::support::*;

/// The fake federation's key certified again, by a root no gateway here pins.
fn certified_by_stranger(authority: &Authority) -> String {
    let stranger = SigningKey::generate().expect("key");
    IssuerCertificate {
        cid: format!("cert-stranger-{}", stranger.kid()),
        issuer: ISSUER.into(),
        key: authority.signer.key().public_key().clone(),
        iat: START - DAY,
        nbf: START - DAY,
        exp: START + 365 * DAY,
        bounds: Bounds::unbounded(),
    }
    .sign(&stranger)
    .expect("certificate signs")
}

fn persisted(dir: &std::path::Path) -> String {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("federation-"))
        .map(|e| std::fs::read_to_string(e.path()).expect("state file"))
        .collect()
}

#[tokio::test]
async fn the_first_served_certificate_that_chains_to_a_pinned_root_verifies_and_is_persisted() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let (response, trusted, untrusted) = {
        let authority = fed.authority.lock().expect("lock");
        let untrusted = certified_by_stranger(&authority);
        let token = authority
            .signer
            .sign(&claims("acme", Tier::Team, START))
            .expect("sign");
        let response = TokenResponse {
            token,
            issuer_certificate: untrusted.clone(),
            issuer_certificates: vec![untrusted.clone(), authority.certificate.clone()],
            plugin_set: None,
        };
        (response, authority.certificate.clone(), untrusted)
    };
    fed.set(Behaviour::Fixed(response));
    let gateway = federated(dir.path(), &clock, &fed);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    let state = persisted(dir.path());
    assert!(
        state.contains(&trusted),
        "the certificate that verified is kept"
    );
    assert!(
        !state.contains(&untrusted),
        "not the one that did not chain"
    );
    drop(gateway);
    let restarted = federated(dir.path(), &clock, &fed);
    assert_eq!(
        restarted.check(&acme(), "identity.oidc").state,
        State::Active
    );
}

#[tokio::test]
async fn when_no_served_certificate_chains_the_primarys_error_is_the_answer() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let response = {
        let authority = fed.authority.lock().expect("lock");
        let first = certified_by_stranger(&authority);
        let second = certified_by_stranger(&authority);
        TokenResponse {
            token: authority
                .signer
                .sign(&claims("acme", Tier::Team, START))
                .expect("sign"),
            issuer_certificate: first.clone(),
            issuer_certificates: vec![first, second],
            plugin_set: None,
        }
    };
    fed.set(Behaviour::Fixed(response));
    let gateway = federated(dir.path(), &clock, &fed);
    let error = gateway.refresh_now().await.expect_err("rejected");
    assert_eq!(error.code(), "untrusted_root");
    assert!(persisted(dir.path()).is_empty());
}

#[tokio::test]
async fn without_issuer_certificates_the_single_certificate_is_used() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    // The fake federation answers like a federation that predates the array.
    let gateway = federated(dir.path(), &clock, &fed);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    let response: TokenResponse =
        serde_json::from_str(r#"{"token":"t","issuer_certificate":"c"}"#).expect("old shape");
    assert_eq!(response.certificates().collect::<Vec<_>>(), ["c"]);
}
