//! BYOC issuers at the gateway: a gateway that pins only the vendor root accepts a BYOC
//! issuer's tokens inside its certificate's bounds and nothing outside them, even from a
//! patched issuer that signs whatever it likes with the certified key; revocation lists
//! from the federation or a file end what they name at once, grace or not.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcpg_entitlements::{
    Gateway, GatewayBuilder, ModeSettings, RefreshError, Settings, State, TenantKey, TokenResponse,
};
use mcpg_license_core::{
    Bounds, Catalog, EntitlementId, JwtSigner, LicenseClaims, ManualClock, RevocationList,
    SigningKey, Tier, TrustStore, Unverified, decode_unverified, issue_offline_license,
};

use crate::support::*;

/// The BYOC certificate's bounds: org `acme`, Team, the Team defaults plus `policy.cedar`,
/// 1 h tokens, 1 day of grace.
fn acme_bounds() -> Bounds {
    let mut entitlements = Catalog::builtin().tier_defaults(Tier::Team);
    entitlements.insert(EntitlementId::parse("plugin:policy.cedar").expect("id"));
    Bounds {
        orgs: Some(vec!["acme".into()]),
        max_tier: Tier::Team,
        entitlements: Some(entitlements),
        max_token_lifetime: HOUR,
        max_grace: DAY,
    }
}

/// Claims the BYOC issuer may sign for `acme` at `iat`.
fn inside(iat: i64) -> LicenseClaims {
    let mut c = claims("acme", Tier::Team, iat);
    c.exp = iat + HOUR;
    c.rfa = Some(iat + HOUR / 3);
    c.grc = Some(c.exp + DAY);
    c
}

/// The vendor root and a BYOC key certified for `acme`, valid for 30 days.
struct Byoc {
    root: SigningKey,
    signer: JwtSigner,
    certificate: String,
}

impl Byoc {
    fn new(exp: i64) -> Self {
        let root = SigningKey::generate().expect("root");
        let (signer, certificate) = Authority::issuer(&root, acme_bounds(), START - DAY, exp);
        Self {
            root,
            signer,
            certificate,
        }
    }

    /// The patched issuer: signs any claims with the certified key.
    fn sign(&self, claims: &LicenseClaims) -> TokenResponse {
        TokenResponse {
            token: self.signer.sign(claims).expect("sign"),
            issuer_certificate: self.certificate.clone(),
            issuer_certificates: Vec::new(),
            plugin_set: None,
        }
    }

    fn trust(&self) -> TrustStore {
        TrustStore::new([self.root.public_key().clone()])
    }

    /// A fake federation that answers with `response`.
    fn federation(&self, clock: &ManualClock, response: TokenResponse) -> Arc<FakeFederation> {
        let fed = FakeFederation::new(clock.clone(), Tier::Team);
        fed.set(Behaviour::Fixed(response));
        fed
    }

    /// A gateway pinning only this root, keeping state in `dir`.
    fn gateway(&self, dir: &Path, clock: &ManualClock, fed: &Arc<FakeFederation>) -> Gateway {
        GatewayBuilder::new(federated_settings(dir, self.trust()))
            .clock(Arc::new(clock.clone()))
            .client(fed.clone())
            .build()
            .expect("gateway starts")
    }

    fn cid(&self) -> String {
        match decode_unverified(&self.certificate) {
            Ok(Unverified::Certificate { certificate, .. }) => certificate.cid,
            other => panic!("not a certificate: {other:?}"),
        }
    }

    fn revocations(&self, serial: u64, certificates: &[&str], licenses: &[&str]) -> String {
        RevocationList {
            serial,
            iat: START,
            certificates: certificates.iter().map(|c| c.to_string()).collect(),
            licenses: licenses.iter().map(|l| l.to_string()).collect(),
        }
        .sign(&self.root)
        .expect("list signs")
    }
}

/// A gateway pinning only `byoc`'s root whose federation answers `response`; the outcome
/// of its first refresh.
async fn refresh_with(byoc: &Byoc, response: TokenResponse) -> Result<State, RefreshError> {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = byoc.federation(&clock, response);
    let gateway = byoc.gateway(dir.path(), &clock, &fed);
    let outcome = gateway.refresh_now().await;
    if outcome.is_err() {
        assert_eq!(gateway.tenants().len(), 0, "nothing rejected is cached");
    }
    outcome
}

#[tokio::test]
async fn each_bound_broken_alone_by_a_patched_issuer_is_rejected_with_its_own_reason() {
    let byoc = Byoc::new(START + 30 * DAY);
    assert_eq!(
        refresh_with(&byoc, byoc.sign(&inside(START))).await,
        Ok(State::Active),
        "inside the bounds"
    );
    type Edit = Box<dyn Fn(&mut LicenseClaims)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("org_not_allowed", Box::new(|c| c.org = "globex".into())),
        ("tier_above_max", Box::new(|c| c.tier = Tier::Enterprise)),
        (
            "entitlement_not_allowed",
            Box::new(|c| {
                c.ent
                    .insert(EntitlementId::parse("plugin:identity.saml").expect("id"));
            }),
        ),
        (
            "lifetime_too_long",
            Box::new(|c| {
                c.exp = c.iat + 2 * HOUR;
                c.grc = Some(c.exp + DAY);
            }),
        ),
        (
            "grace_too_long",
            Box::new(|c| c.grc = Some(c.exp + 2 * DAY)),
        ),
        (
            "issuer_mismatch",
            Box::new(|c| c.iss = "https://rogue.example".into()),
        ),
    ];
    for (code, edit) in cases {
        let mut c = inside(START);
        edit(&mut c);
        let error = refresh_with(&byoc, byoc.sign(&c))
            .await
            .expect_err("rejected");
        assert_eq!(error.code(), code, "{error}");
    }

    // A token that would outlive the certificate, though within every other bound.
    let short = Byoc::new(START + HOUR / 2);
    let error = refresh_with(&short, short.sign(&inside(START)))
        .await
        .expect_err("rejected");
    assert_eq!(error.code(), "outlives_certificate", "{error}");
}

#[tokio::test]
async fn a_byoc_issuer_for_one_org_never_yields_a_token_accepted_for_another() {
    let byoc = Byoc::new(START + 30 * DAY);
    let globex = TenantKey::parse("globex/platform/prod").expect("tenant");
    for tier in [Tier::Free, Tier::Team, Tier::Enterprise] {
        for org in ["globex", "acme2", "ACME", "acme "] {
            let mut c = inside(START);
            c.org = org.into();
            c.tier = tier;
            c.ent = Catalog::builtin().tier_defaults(tier.min(Tier::Team));
            let outcome = refresh_with(&byoc, byoc.sign(&c)).await;
            assert!(
                matches!(&outcome, Err(RefreshError::Rejected(_))),
                "{org}/{tier}: {outcome:?}"
            );
        }
    }
    // Accepted for acme, the gateway still answers nothing for globex.
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = byoc.federation(&clock, byoc.sign(&inside(START)));
    let gateway = byoc.gateway(dir.path(), &clock, &fed);
    gateway.refresh_now().await.expect("acme federates");
    assert!(gateway.check(&acme(), "observability.audit").allowed);
    assert!(!gateway.check(&globex, "observability.audit").allowed);
}

#[tokio::test]
async fn a_revoked_certificate_from_the_federation_ends_entitlements_at_once_even_in_grace() {
    let byoc = Byoc::new(START + 30 * DAY);
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = byoc.federation(&clock, byoc.sign(&inside(START)));
    let gateway = byoc.gateway(dir.path(), &clock, &fed);
    assert_eq!(gateway.refresh_due().await, 1);
    assert_eq!(gateway.revocation_serial(), None);

    // Outage; the token expires; the gateway rides its grace.
    fed.set(Behaviour::Outage { retry_after: None });
    clock.set(START + 2 * HOUR);
    assert_eq!(
        gateway.check(&acme(), "observability.audit").state,
        State::Grace
    );
    assert!(gateway.check(&acme(), "observability.audit").allowed);

    // An older-serial list and a list naming someone else change nothing.
    *fed.revocations.lock().expect("lock") = Some(byoc.revocations(5, &["cert-other"], &[]));
    assert_eq!(
        gateway.refresh_revocations().await.expect("fetched"),
        Some(true)
    );
    assert!(gateway.check(&acme(), "observability.audit").allowed);

    // The federation publishes a list naming the BYOC certificate: refused at once.
    *fed.revocations.lock().expect("lock") = Some(byoc.revocations(6, &[&byoc.cid()], &[]));
    assert_eq!(
        gateway.refresh_revocations().await.expect("fetched"),
        Some(true)
    );
    let decision = gateway.check(&acme(), "observability.audit");
    assert_eq!((decision.allowed, decision.state), (false, State::Revoked));
    assert_eq!(gateway.snapshot().revocation_serial, Some(6));

    // A replayed older list is ignored: the revocation stays.
    *fed.revocations.lock().expect("lock") = Some(byoc.revocations(5, &[], &[]));
    assert_eq!(
        gateway.refresh_revocations().await.expect("fetched"),
        Some(false)
    );
    assert_eq!(gateway.revocation_serial(), Some(6));
    assert!(!gateway.check(&acme(), "observability.audit").allowed);

    // A token under the revoked certificate is not taken either, and a restart keeps the list.
    fed.set(Behaviour::Fixed(byoc.sign(&inside(START + 2 * HOUR))));
    let error = gateway.refresh_now().await.expect_err("rejected");
    assert_eq!(error.code(), "revoked");
    drop(gateway);
    let restarted = byoc.gateway(dir.path(), &clock, &fed);
    assert_eq!(restarted.revocation_serial(), Some(6));
    assert!(!restarted.check(&acme(), "observability.audit").allowed);
}

#[tokio::test]
async fn the_first_refresh_fetches_the_list_before_taking_a_token() {
    let byoc = Byoc::new(START + 30 * DAY);
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = byoc.federation(&clock, byoc.sign(&inside(START)));
    *fed.revocations.lock().expect("lock") = Some(byoc.revocations(1, &[&byoc.cid()], &[]));
    let gateway = byoc.gateway(dir.path(), &clock, &fed);
    assert_eq!(gateway.refresh_due().await, 0, "the token is refused");
    assert_eq!(gateway.revocation_serial(), Some(1));
    assert!(!gateway.check(&acme(), "observability.audit").allowed);
}

#[test]
fn a_revoked_offline_license_stops_working_on_the_next_list_load() {
    let byoc = Byoc::new(START + 30 * DAY);
    let dir = temp_dir();
    let file = dir.path().join("revocations.paseto");
    std::fs::write(&file, byoc.revocations(1, &[], &[])).expect("write");
    let mut c = claims("airgap", Tier::Team, START - DAY);
    (c.exp, c.rfa, c.grc) = (START + 365 * DAY, None, None);
    let gateway = GatewayBuilder::new(Settings {
        mode: ModeSettings::Offline {
            license: issue_offline_license(&c, &byoc.root, None).expect("sign"),
            license_path: PathBuf::from("airgap.license"),
            deployment_id: None,
        },
        state_dir: dir.path().to_owned(),
        trust: byoc.trust(),
        revocation_list: Some(byoc.revocations(1, &[], &[])),
        more_tenants: Vec::new(),
    })
    .clock(Arc::new(ManualClock::new(START)))
    .revocation_file(file.clone())
    .build()
    .expect("starts");
    let decision = gateway.check_default("observability.audit");
    assert_eq!((decision.allowed, decision.state), (true, State::Offline));
    assert_eq!(
        gateway.reload_revocation_file().expect("reads"),
        Some(false)
    );

    // The site's license update brings a new list, dropped in place: the next re-read
    // (every minute in `run`) applies it.
    std::fs::write(&file, byoc.revocations(2, &[], &["lic-airgap"])).expect("write");
    assert_eq!(
        gateway.reload_revocation_file().expect("applies"),
        Some(true)
    );
    let decision = gateway.check_default("observability.audit");
    assert_eq!((decision.allowed, decision.state), (false, State::Revoked));

    std::fs::write(&file, byoc.revocations(1, &[], &[])).expect("write");
    assert!(!gateway.load_revocation_file(&file).expect("verifies"));
    assert!(!gateway.check_default("observability.audit").allowed);

    let stranger = Byoc::new(START + DAY);
    std::fs::write(&file, stranger.revocations(9, &[], &[])).expect("write");
    assert!(gateway.load_revocation_file(&file).is_err(), "not our root");
    assert_eq!(gateway.revocation_serial(), Some(2));
}
