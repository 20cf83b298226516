//! The state directory: resuming after a restart, the highest time seen, tampering.

use std::fs;
use std::path::{Path, PathBuf};

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
    fed.set(Behaviour::Deny(mcpg_entitlements::Denial::OrgSuspended));
    assert!(gateway.refresh_now().await.is_err());

    fed.set(Behaviour::Outage { retry_after: None });
    let restarted = federated(dir.path(), &clock, &fed);
    assert_eq!(
        restarted.check_default("workspace.rbac").reason,
        Reason::Revoked
    );
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
