//! Revocation lists: what they name is refused, in grace too, and an older list never
//! undoes a newer one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcpg_entitlements::{GatewayBuilder, ModeSettings, Settings, StartError, State};
use mcpg_license_core::{
    ManualClock, RevocationList, SigningKey, Tier, TrustStore, Unverified, decode_unverified,
    issue_offline_license,
};

use crate::support::*;

fn list(root: &SigningKey, serial: u64, certificates: &[&str], licenses: &[&str]) -> String {
    RevocationList {
        serial,
        iat: START,
        certificates: certificates.iter().map(|c| c.to_string()).collect(),
        licenses: licenses.iter().map(|l| l.to_string()).collect(),
    }
    .sign(root)
    .expect("list signs")
}

fn offline_with(
    root: &SigningKey,
    dir: &Path,
    revocations: Option<String>,
) -> Result<mcpg_entitlements::Gateway, StartError> {
    let mut c = claims("airgap", Tier::Team, START - DAY);
    (c.exp, c.rfa, c.grc) = (START + 365 * DAY, None, None);
    GatewayBuilder::new(Settings {
        mode: ModeSettings::Offline {
            license: issue_offline_license(&c, root, None).expect("sign"),
            license_path: PathBuf::from("airgap.license"),
            deployment_id: None,
        },
        state_dir: dir.to_owned(),
        trust: TrustStore::new([root.public_key().clone()]),
        revocation_list: revocations,
        more_tenants: Vec::new(),
    })
    .clock(Arc::new(ManualClock::new(START)))
    .build()
}

#[test]
fn an_offline_license_named_by_the_list_is_refused_and_an_older_list_does_not_undo_it() {
    let dir = temp_dir();
    let root = SigningKey::generate().expect("root");
    assert!(offline_with(&root, dir.path(), None).is_ok());
    let revoked = offline_with(
        &root,
        dir.path(),
        Some(list(&root, 2, &[], &["lic-airgap"])),
    );
    assert!(
        matches!(
            revoked,
            Err(StartError::License {
                code: "revoked",
                ..
            })
        ),
        "{revoked:?}"
    );
    let rolled_back = offline_with(&root, dir.path(), Some(list(&root, 1, &[], &[])));
    assert!(
        matches!(
            rolled_back,
            Err(StartError::License {
                code: "revoked",
                ..
            })
        ),
        "the kept serial 2 still applies"
    );
}

#[test]
fn a_list_not_signed_by_a_root_stops_the_start() {
    let dir = temp_dir();
    let root = SigningKey::generate().expect("root");
    let stranger = SigningKey::generate().expect("stranger");
    let error =
        offline_with(&root, dir.path(), Some(list(&stranger, 9, &[], &[]))).expect_err("refused");
    assert!(matches!(error, StartError::Revocations(_)), "{error}");
}

#[tokio::test]
async fn a_revoked_issuer_certificate_is_refused_even_in_grace() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Enterprise);
    federated(dir.path(), &clock, &fed)
        .refresh_now()
        .await
        .expect("federates");
    let (root_key, cid) = {
        let authority = fed.authority.lock().expect("lock");
        let Ok(Unverified::Certificate { certificate, .. }) =
            decode_unverified(&authority.certificate)
        else {
            panic!("the fake's certificate decodes");
        };
        (authority.root.clone(), certificate.cid)
    };

    fed.set(Behaviour::Outage { retry_after: None });
    clock.set(START + 3 * DAY);
    let mut settings = federated_settings(dir.path(), fed.trust());
    settings.revocation_list = Some(list(&root_key, 1, &[&cid], &[]));
    let gateway = GatewayBuilder::new(settings)
        .clock(Arc::new(clock.clone()))
        .client(fed.clone())
        .build()
        .expect("starts");
    let decision = gateway.check(&acme(), "policy.cedar");
    assert_eq!(
        (decision.allowed, decision.state),
        (false, State::Unlicensed)
    );

    fed.set(Behaviour::Serve {
        org: "acme".into(),
        tier: Tier::Enterprise,
    });
    assert_eq!(
        gateway.refresh_now().await.expect_err("refused").code(),
        "revoked"
    );
}
