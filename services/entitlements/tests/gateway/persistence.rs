//! The state directory: resuming after a restart, the highest time seen, tampering.

use std::fs;
use std::path::{Path, PathBuf};

use mcpg_entitlements::store::credential_fingerprint;
use mcpg_entitlements::{Reason, State};
use mcpg_license_core::{ManualClock, Tier};

use crate::support::*;

fn state_file(dir: &Path) -> PathBuf {
    fs::read_dir(dir)
        .expect("state dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("federation-"))
        })
        .expect("a federation state file")
}

#[tokio::test]
async fn a_restart_in_the_middle_of_grace_resumes_grace_from_disk() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Enterprise);
    federated(dir.path(), &clock, &fed)
        .refresh_now()
        .await
        .expect("refresh");

    fed.set(Behaviour::Outage { retry_after: None });
    clock.set(START + 4 * DAY);
    let restarted = federated(dir.path(), &clock, &fed);
    let decision = restarted.check(&acme(), "policy.cedar");
    assert_eq!((decision.allowed, decision.state), (true, State::Grace));
    assert_eq!(restarted.default_tenant(), Some(acme()));
    assert!(restarted.refresh_due().await == 0, "the outage goes on");
    assert_eq!(restarted.check_default("policy.cedar").state, State::Grace);
}

#[tokio::test]
async fn a_restart_before_exp_resumes_active_and_after_grc_resumes_lapsed() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    federated(dir.path(), &clock, &fed)
        .refresh_now()
        .await
        .expect("refresh");

    clock.set(START + HOUR);
    assert_eq!(
        federated(dir.path(), &clock, &fed)
            .check(&acme(), "workspace.rbac")
            .state,
        State::Active
    );
    clock.set(START + 9 * DAY);
    let lapsed = federated(dir.path(), &clock, &fed).check(&acme(), "workspace.rbac");
    assert_eq!((lapsed.allowed, lapsed.reason), (false, Reason::Lapsed));
}

#[tokio::test]
async fn the_clock_moved_back_30_days_does_not_revive_a_lapsed_token() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Enterprise);
    let gateway = federated(dir.path(), &clock, &fed);
    gateway.refresh_now().await.expect("refresh");
    fed.set(Behaviour::Outage { retry_after: None });

    clock.set(START + 9 * DAY);
    assert_eq!(gateway.check(&acme(), "policy.cedar").state, State::Lapsed);
    gateway.tick();
    clock.set(START + 9 * DAY - 30 * DAY);
    assert_eq!(
        gateway.check(&acme(), "policy.cedar").reason,
        Reason::Lapsed
    );
    assert!(gateway.snapshot().clock_behind);

    let restarted = federated(dir.path(), &clock, &fed);
    let decision = restarted.check(&acme(), "policy.cedar");
    assert_eq!((decision.allowed, decision.state), (false, State::Lapsed));
}

#[tokio::test]
async fn a_tampered_state_file_is_rejected_and_never_trusted() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    federated(dir.path(), &clock, &fed)
        .refresh_now()
        .await
        .expect("refresh");
    let path = state_file(dir.path());

    // Upgrade the tier inside the signed token: the signature no longer verifies.
    let mut record: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    let token = record["token"].as_str().expect("token").to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(b64.decode(parts[1]).expect("b64")).expect("utf8");
    let forged = payload.replace("\"team\"", "\"enterprise\"");
    assert_ne!(payload, forged);
    record["token"] = format!("{}.{}.{}", parts[0], b64.encode(forged), parts[2]).into();
    fs::write(&path, serde_json::to_vec(&record).expect("json")).expect("write");

    fed.set(Behaviour::Outage { retry_after: None });
    let restarted = federated(dir.path(), &clock, &fed);
    let decision = restarted.check(&acme(), "workspace.rbac");
    assert_eq!(
        (decision.allowed, decision.reason),
        (false, Reason::NotFederated)
    );
    assert_eq!(restarted.default_tenant(), None);

    fs::write(&path, b"{ not json").expect("write");
    let garbage = federated(dir.path(), &clock, &fed);
    assert_eq!(
        garbage.check_default("workspace.rbac").state,
        State::Unlicensed
    );
}

#[tokio::test]
async fn a_revocation_survives_a_restart() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let gateway = federated(dir.path(), &clock, &fed);
    gateway.refresh_now().await.expect("refresh");
    clock.advance(600);
    let decided = START + 600;
    fed.set(Behaviour::Deny(mcpg_entitlements::Denial::OrgSuspended));
    assert!(gateway.refresh_now().await.is_err());
    assert_eq!(gateway.snapshot().default.revoked_since, Some(decided));

    fed.set(Behaviour::Outage { retry_after: None });
    clock.advance(3_600);
    let restarted = federated(dir.path(), &clock, &fed);
    assert_eq!(
        restarted.check_default("workspace.rbac").reason,
        Reason::Revoked
    );
    // Why, and since when, survive the restart; the next attempt is due now, not at 1970.
    let snapshot = restarted.snapshot();
    assert_eq!(snapshot.default.revoked, Some("org_suspended"));
    assert_eq!(snapshot.default.revoked_since, Some(decided));
    assert_eq!(snapshot.federation[0].next_refresh, Some(START + 4_200));

    // The same no again after the restart keeps the time it was first said.
    fed.set(Behaviour::Deny(mcpg_entitlements::Denial::OrgSuspended));
    clock.advance(60);
    assert!(restarted.refresh_now().await.is_err());
    assert_eq!(restarted.snapshot().default.revoked_since, Some(decided));
    let again = federated(dir.path(), &clock, &fed);
    assert_eq!(again.snapshot().default.revoked_since, Some(decided));
}

#[cfg(unix)]
#[tokio::test]
async fn state_files_are_private_and_no_temp_files_are_left() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    federated(dir.path(), &clock, &fed)
        .refresh_now()
        .await
        .expect("refresh");
    for entry in fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        assert!(!name.ends_with(".tmp"), "{name} left behind");
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{name} is readable by others");
    }
}

/// Another org's gateway credential (same vendor root).
const THIEF_CREDENTIAL: &str = "mcpg_gw_globex_credential";

#[tokio::test]
async fn another_gateways_state_file_copied_in_and_relabelled_is_refused() {
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Enterprise);
    let victim = temp_dir();
    federated(victim.path(), &clock, &fed)
        .refresh_now()
        .await
        .expect("acme refreshes");
    fed.set(Behaviour::Serve {
        org: "globex".into(),
        tier: Tier::Free,
    });
    let thief = temp_dir();
    federated_as(thief.path(), &clock, &fed, THIEF_CREDENTIAL)
        .refresh_now()
        .await
        .expect("globex refreshes");

    // Transplant acme's state over globex's, relabelled for globex's credential.
    let own = state_file(thief.path());
    let mut record: serde_json::Value =
        serde_json::from_slice(&fs::read(state_file(victim.path())).expect("read")).expect("json");
    record["credential_sha256"] = credential_fingerprint(THIEF_CREDENTIAL).into();
    fs::write(&own, serde_json::to_vec(&record).expect("json")).expect("write");

    fed.set(Behaviour::Outage { retry_after: None });
    clock.set(START + 2 * DAY);
    let restarted = federated_as(thief.path(), &clock, &fed, THIEF_CREDENTIAL);
    let decision = restarted.check(&acme(), "policy.cedar");
    assert!(!decision.allowed, "runs as acme: {decision:?}");
    assert_ne!(restarted.default_tenant(), Some(acme()));
    assert_eq!(
        restarted.check_default("policy.cedar").reason,
        Reason::NotFederated,
        "the transplanted state is ignored, as if there were none"
    );

    // The victim's own restart still resumes its state in grace.
    let resumed = federated(victim.path(), &clock, &fed);
    let decision = resumed.check(&acme(), "policy.cedar");
    assert_eq!((decision.allowed, decision.state), (true, State::Grace));
}

#[tokio::test]
async fn a_fresh_token_for_another_gateway_is_refused_and_the_own_one_kept() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let gateway = federated(dir.path(), &clock, &fed);
    gateway.refresh_now().await.expect("refresh as gw_1");

    let mut other = claims("acme", Tier::Enterprise, START + HOUR);
    other.sub = "gw_2".into();
    let minted = fed.authority.lock().expect("lock").mint(&other);
    fed.set(Behaviour::Fixed(minted));
    clock.set(START + HOUR);
    let error = gateway
        .refresh_now()
        .await
        .expect_err("another gateway's token");
    assert_eq!(error.code(), "other_gateway");
    let decision = gateway.check(&acme(), "policy.cedar");
    assert!(!decision.allowed, "the Enterprise token of gw_2 was taken");
    assert!(
        gateway.check(&acme(), "workspace.rbac").allowed,
        "gw_1's token kept"
    );

    // The pinned id survives a restart.
    let restarted = federated(dir.path(), &clock, &fed);
    assert!(restarted.refresh_now().await.is_err());
    assert!(!restarted.check(&acme(), "policy.cedar").allowed);
}

#[tokio::test]
async fn a_state_file_without_a_mac_is_ignored_and_the_gateway_federates_again() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Enterprise);
    federated(dir.path(), &clock, &fed)
        .refresh_now()
        .await
        .expect("refresh");
    // What the previous version wrote: the same record, version 1, no id and no MAC.
    let path = state_file(dir.path());
    let mut record: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    let fields = record.as_object_mut().expect("object");
    fields.remove("mac");
    fields.remove("gateway_id");
    fields.insert("version".into(), 1.into());
    fs::write(&path, serde_json::to_vec(&record).expect("json")).expect("write");

    fed.set(Behaviour::Outage { retry_after: None });
    clock.set(START + 2 * DAY);
    let restarted = federated(dir.path(), &clock, &fed);
    assert_eq!(
        restarted.check_default("policy.cedar").reason,
        Reason::NotFederated
    );
    fed.set(Behaviour::Serve {
        org: "acme".into(),
        tier: Tier::Enterprise,
    });
    restarted.refresh_now().await.expect("federates again");
    assert_eq!(
        restarted.check(&acme(), "policy.cedar").state,
        State::Active
    );
}
