//! The directory's own rules, without a database.

use super::dirty::{FIRST_BACKOFF, MAX_BACKOFF};
use super::*;

fn directory(state: ListenerState) -> Directory {
    Directory {
        gateways: RwLock::new(HashMap::new()),
        cells: Mutex::new(HashMap::new()),
        dirty: Mutex::new(Dirty::default()),
        any_dirty: AtomicBool::new(false),
        wake: Notify::new(),
        peers: Arc::new(PeerStatus::with_state(state)),
        plugin_sets: Arc::new(PluginSetCache::default()),
    }
}

fn listed(org: &str) -> Listed {
    Listed {
        id: GatewayId::new("0193f2ab-7c1d-7e3a-9b2f-0c4d5e6f7a8b"),
        org: Arc::new(OrgCell::new(OrgGrant::new(
            org.to_owned(),
            format!("{org}-slug"),
            OrgStatus::Active,
            None,
            None,
        ))),
        place: Arc::new(PlaceGrant {
            workspace: "main".into(),
            environment: "prod".into(),
            plugin_set: None,
        }),
    }
}

fn hash(byte: u8) -> CredentialHash {
    CredentialHash::from_hex(&format!("{byte:02x}").repeat(32)).expect("64 hex digits")
}

#[test]
fn a_dirty_org_is_asked_of_the_database_until_a_reload_that_saw_its_change() {
    let directory = directory(ListenerState::NotApplicable);
    directory
        .gateways
        .write()
        .expect("lock")
        .extend([(hash(1), listed("org-a")), (hash(2), listed("org-b"))]);
    assert!(directory.lookup(&hash(1)).is_some());
    assert!(
        directory.lookup(&hash(3)).is_none(),
        "not held: the database says"
    );

    directory.mark(&[Change::grants("org-a")]);
    assert!(directory.lookup(&hash(1)).is_none(), "org-a changed");
    assert!(directory.lookup(&hash(2)).is_some(), "org-b did not");

    // A reload that started before a second change does not clear the mark.
    let before = directory.dirty().generation;
    directory.mark(&[Change::grants("org-a")]);
    directory.clean(before, Some("org-a"));
    assert!(directory.lookup(&hash(1)).is_none());
    let after = directory.dirty().generation;
    directory.clean(after, Some("org-a"));
    assert!(directory.lookup(&hash(1)).is_some());
    assert!(!directory.any_dirty.load(Ordering::Acquire));

    // `All` holds every answer back until a full load that started after it.
    directory.mark(&[Change::All]);
    assert!(directory.lookup(&hash(2)).is_none());
    directory.clean(before, None);
    assert!(
        directory.lookup(&hash(2)).is_none(),
        "an older load is not enough"
    );
    let now = directory.dirty().generation;
    directory.clean(now, None);
    assert!(directory.lookup(&hash(2)).is_some());
}

#[test]
fn on_postgresql_the_directory_answers_only_while_listening() {
    let directory = directory(ListenerState::Down);
    directory
        .gateways
        .write()
        .expect("lock")
        .insert(hash(1), listed("org-a"));
    assert!(directory.lookup(&hash(1)).is_none());
    directory.peers.set_for_test(ListenerState::Starting);
    assert!(directory.lookup(&hash(1)).is_none());
    directory.peers.set_for_test(ListenerState::Listening);
    assert!(directory.lookup(&hash(1)).is_some());
}

#[test]
fn a_failed_read_is_retried_after_a_doubling_wait() {
    let mut dirty = Dirty::default();
    let now = Instant::now();
    assert!(dirty.ready("org-a", now));
    dirty.failed("org-a");
    assert!(!dirty.ready("org-a", now));
    assert_eq!(dirty.retry["org-a"].1, FIRST_BACKOFF);
    for _ in 0..10 {
        dirty.failed("org-a");
    }
    assert_eq!(dirty.retry["org-a"].1, MAX_BACKOFF);
    assert!(dirty.ready("org-a", now + MAX_BACKOFF + Duration::from_secs(1)));
    assert!(dirty.next_retry().is_some());
}

#[test]
fn gateway_ids_are_compact_only_in_their_canonical_form() {
    let canonical = "0193f2ab-7c1d-7e3a-9b2f-0c4d5e6f7a8b";
    assert!(matches!(GatewayId::new(canonical), GatewayId::Uuid(_)));
    for other in [
        "0193F2AB-7C1D-7E3A-9B2F-0C4D5E6F7A8B",
        "gw-1",
        "0193f2ab7c1d7e3a9b2f0c4d5e6f7a8b",
    ] {
        assert!(
            matches!(GatewayId::new(other), GatewayId::Text(_)),
            "{other}"
        );
        let listed = Listed {
            id: GatewayId::new(other),
            ..listed("org-a")
        };
        assert_eq!(listed.gateway_id().to_string(), other);
    }
    let listed = Listed {
        id: GatewayId::new(canonical),
        ..listed("org-a")
    };
    assert_eq!(listed.gateway_id().to_string(), canonical);
}

#[test]
fn a_change_to_everything_of_an_org_is_not_narrowed_by_a_later_license_change() {
    let directory = directory(ListenerState::NotApplicable);
    directory
        .gateways
        .write()
        .expect("lock")
        .insert(hash(1), listed("org-a"));
    let license = Change::Grants {
        org_id: "org-a".into(),
        scope: GrantScope::Org,
    };
    directory.mark(std::slice::from_ref(&license));
    assert_eq!(directory.dirty().orgs["org-a"].scope, GrantScope::Org);
    assert!(
        directory.lookup(&hash(1)).is_none(),
        "a license change holds answers back too"
    );
    directory.mark(&[Change::grants("org-a")]);
    directory.mark(&[license]);
    let mark = directory.dirty().orgs["org-a"];
    assert_eq!(mark.scope, GrantScope::Everything);
    assert_eq!(mark.generation, directory.dirty().generation);
    directory.clean(mark.generation, Some("org-a"));
    assert!(directory.lookup(&hash(1)).is_some());
}

#[test]
fn a_registration_keeps_the_orgs_other_gateways_answered_until_anything_else_changes() {
    let directory = directory(ListenerState::NotApplicable);
    directory
        .gateways
        .write()
        .expect("lock")
        .insert(hash(1), listed("org-a"));
    let added = Change::Grants {
        org_id: "org-a".into(),
        scope: GrantScope::Added,
    };
    directory.mark(std::slice::from_ref(&added));
    assert_eq!(directory.dirty().orgs["org-a"].scope, GrantScope::Added);
    assert!(
        directory.lookup(&hash(1)).is_some(),
        "a gateway the org had keeps its grant while the newcomers are read"
    );
    assert!(
        directory.lookup(&hash(2)).is_none(),
        "a newcomer is not known yet"
    );
    // A license change on top: the org's grant changed, its answers are held back.
    directory.mark(&[Change::Grants {
        org_id: "org-a".into(),
        scope: GrantScope::Org,
    }]);
    assert_eq!(
        directory.dirty().orgs["org-a"].scope,
        GrantScope::Everything
    );
    assert!(directory.lookup(&hash(1)).is_none());
    let generation = directory.dirty().orgs["org-a"].generation;
    directory.clean(generation, Some("org-a"));
    directory.mark(&[added, Change::grants("org-a")]);
    assert_eq!(
        directory.dirty().orgs["org-a"].scope,
        GrantScope::Everything
    );
    assert!(
        directory.lookup(&hash(1)).is_none(),
        "a revocation on top holds back too"
    );
}

#[test]
fn an_orgs_cell_swaps_the_grant_under_every_entry_that_shares_it() {
    let first = listed("org-a");
    let second = Listed {
        id: GatewayId::new("gw-2"),
        ..first.clone()
    };
    let suspended = OrgGrant::new(
        "org-a".into(),
        "org-a-slug".into(),
        OrgStatus::Suspended,
        None,
        None,
    );
    first.org.grant.store(Arc::new(suspended));
    assert_eq!(second.org.grant().status, OrgStatus::Suspended);
}
