//! The offline usage ledger: a signed entry per UTC day that survives restarts, a clock set
//! back and a crash mid-append, and exports as a bundle the vendor verifies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcpg_entitlements::usage::export;
use mcpg_entitlements::usage::ledger::{CURRENT_FILE, KEY_FILE, LEDGER_FILE};
use mcpg_entitlements::{Gateway, GatewayBuilder, ModeSettings, Settings, StartError};
use mcpg_license_core::usage::{
    ChainState, LicenseCheck, PluginCounts, SignedEntry, verify_bundle,
};
use mcpg_license_core::{
    LicenseClaims, ManualClock, SigningKey, Tier, TrustStore, issue_offline_license,
};

use crate::support::*;

/// START is 2027-01-15T08:00:00Z.
const DAY_15: &str = "2027-01-15";

struct Site {
    root: SigningKey,
    license: String,
    clock: ManualClock,
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        let root = SigningKey::generate().expect("root");
        let mut c: LicenseClaims = claims("airgap", Tier::Team, START - DAY);
        c.exp = START + 365 * DAY;
        c.rfa = None;
        c.grc = None;
        c.sub = "lic-airgap".into();
        c.lic = "lic-airgap".into();
        c.bind = Some("dc1".into());
        let license = issue_offline_license(&c, &root, None).expect("license signs");
        Self {
            root,
            license,
            clock: ManualClock::new(START),
            dir: temp_dir(),
        }
    }

    fn start(&self) -> Result<Gateway, StartError> {
        GatewayBuilder::new(Settings {
            mode: ModeSettings::Offline {
                license: self.license.clone(),
                license_path: PathBuf::from("airgap.license"),
                deployment_id: Some("dc1".into()),
            },
            state_dir: self.dir.path().to_owned(),
            trust: TrustStore::new([self.root.public_key().clone()]),
            revocation_list: None,
            more_tenants: Vec::new(),
        })
        .clock(Arc::new(self.clock.clone()))
        .build()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn entries(&self) -> Vec<SignedEntry> {
        read_lines(&self.path(LEDGER_FILE))
    }

    fn export(&self) -> Vec<u8> {
        export::bundle(
            self.dir.path(),
            "dc1",
            &self.license,
            None,
            self.clock_now(),
        )
        .expect("exports")
        .to_json()
        .into_bytes()
    }

    fn clock_now(&self) -> i64 {
        mcpg_license_core::Clock::now(&self.clock)
    }

    fn verify(
        &self,
        bytes: &[u8],
        chain: Option<&ChainState>,
    ) -> mcpg_license_core::usage::VerifiedBundle {
        let trust = TrustStore::new([self.root.public_key().clone()]);
        verify_bundle(
            bytes,
            chain,
            &LicenseCheck {
                trust: &trust,
                license: Some(&self.license),
                deployment_id: Some("dc1"),
            },
        )
        .expect("the export verifies")
    }
}

fn read_lines(path: &Path) -> Vec<SignedEntry> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("entry"))
        .collect()
}

fn days(entries: &[SignedEntry]) -> Vec<(String, u32)> {
    entries
        .iter()
        .map(|e| (e.entry.day.clone(), e.entry.gateways_active))
        .collect()
}

fn rbac(entry: &SignedEntry) -> PluginCounts {
    entry
        .entry
        .plugins
        .get("workspace.rbac")
        .copied()
        .unwrap_or_default()
}

#[test]
fn a_day_is_appended_once_it_is_over_and_days_without_the_gateway_get_empty_entries() {
    let site = Site::new();
    let gateway = site.start().expect("starts");
    for _ in 0..5 {
        assert!(gateway.check_default("workspace.rbac").allowed);
    }
    assert!(!gateway.check_default("policy.cedar").allowed);
    gateway.tick();
    assert!(site.entries().is_empty(), "the day is not over");
    site.clock.set(START + DAY);
    gateway.tick();
    let entries = site.entries();
    assert_eq!(days(&entries), vec![(DAY_15.to_owned(), 1)]);
    assert_eq!(
        rbac(&entries[0]),
        PluginCounts {
            allowed: 5,
            refused: 0
        }
    );
    assert_eq!(
        entries[0].entry.plugins["policy.cedar"],
        PluginCounts {
            allowed: 0,
            refused: 1
        }
    );
    assert_eq!((entries[0].entry.seq, entries[0].entry.tokens), (1, 0));
    assert_eq!(entries[0].entry.license_id, "lic-airgap");
    // Stopped gracefully on the 16th, restarted on the 19th.
    gateway.check_default("workspace.rbac");
    gateway.flush_usage();
    drop(gateway);
    site.clock.set(START + 4 * DAY);
    let gateway = site.start().expect("restarts");
    let entries = site.entries();
    assert_eq!(
        days(&entries),
        vec![
            (DAY_15.to_owned(), 1),
            ("2027-01-16".to_owned(), 1),
            ("2027-01-17".to_owned(), 0),
            ("2027-01-18".to_owned(), 0),
        ]
    );
    assert_eq!(
        rbac(&entries[1]),
        PluginCounts {
            allowed: 1,
            refused: 0
        }
    );
    let snapshot = gateway.snapshot().usage_ledger.expect("recording");
    assert_eq!(
        (snapshot.open_day.as_str(), snapshot.last_seq),
        ("2027-01-19", Some(4))
    );
    // The export verifies, from the genesis entry to the last day.
    let verified = site.verify(&site.export(), None);
    assert_eq!(verified.entries.len(), 4);
    assert_eq!(verified.chain.last_seq, 4);
    assert_eq!(verified.chain.last_hash, entries[3].hash);
}

#[test]
fn the_deployment_key_is_made_once_with_mode_0600_and_kept() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new();
    drop(site.start().expect("starts"));
    let key = std::fs::read_to_string(site.path(KEY_FILE)).expect("key file");
    assert!(key.starts_with("k4.secret."));
    let mode = std::fs::metadata(site.path(KEY_FILE))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(site.start().expect("restarts"));
    assert_eq!(
        std::fs::read_to_string(site.path(KEY_FILE)).expect("key"),
        key
    );
}

#[test]
fn a_clock_set_back_never_writes_a_day_before_the_last() {
    let site = Site::new();
    let gateway = site.start().expect("starts");
    site.clock.set(START + 2 * DAY);
    gateway.tick();
    drop(gateway);
    assert_eq!(site.entries().len(), 2);
    // Back by two days and more (to before the license's nbf would refuse the start), and
    // the highest-time file lost too: the open day still holds.
    std::fs::remove_file(site.path("max-seen-time.json")).expect("remove");
    site.clock.set(START - HOUR);
    let gateway = site.start().expect("restarts");
    gateway.check_default("workspace.rbac");
    gateway.tick();
    site.clock.set(START + DAY);
    gateway.tick();
    assert_eq!(
        site.entries().len(),
        2,
        "no day appended while the clock is behind"
    );
    site.clock.set(START + 3 * DAY + HOUR);
    gateway.tick();
    let entries = site.entries();
    assert_eq!(
        days(&entries),
        vec![
            (DAY_15.to_owned(), 1),
            // Skipped over by the test's clock: no tick ran that day.
            ("2027-01-16".to_owned(), 0),
            ("2027-01-17".to_owned(), 1),
        ]
    );
    assert_eq!(
        rbac(&entries[2]),
        PluginCounts {
            allowed: 1,
            refused: 0
        }
    );
    site.verify(&site.export(), None);
}

#[test]
fn a_torn_or_garbled_last_line_is_cut_and_its_day_appended_again() {
    for garble in [false, true] {
        let site = Site::new();
        let gateway = site.start().expect("starts");
        site.clock.set(START + DAY);
        gateway.tick();
        for _ in 0..7 {
            gateway.check_default("workspace.rbac");
        }
        gateway.tick();
        // What the open-day file holds just before the append of the 16th.
        let open_before = std::fs::read(site.path(CURRENT_FILE)).expect("open day");
        site.clock.set(START + 2 * DAY);
        gateway.tick();
        drop(gateway);
        let ledger = std::fs::read_to_string(site.path(LEDGER_FILE)).expect("ledger");
        let lines: Vec<&str> = ledger.lines().collect();
        assert_eq!(lines.len(), 2);
        // The crash: the second append written in part, the open day not yet moved on.
        let torn = if garble {
            format!("{}\n{}\n", lines[0], "#".repeat(40))
        } else {
            format!("{}\n{}", lines[0], &lines[1][..lines[1].len() / 2])
        };
        std::fs::write(site.path(LEDGER_FILE), torn).expect("tear");
        std::fs::write(site.path(CURRENT_FILE), &open_before).expect("restore");
        let gateway = site.start().expect("restarts past a torn line");
        let entries = site.entries();
        assert_eq!(
            days(&entries),
            vec![(DAY_15.to_owned(), 1), ("2027-01-16".to_owned(), 1)],
            "garbled: {garble}"
        );
        assert_eq!(
            rbac(&entries[1]),
            PluginCounts {
                allowed: 7,
                refused: 0
            }
        );
        drop(gateway);
        site.verify(&site.export(), None);
    }
}

#[test]
fn a_crash_after_the_append_does_not_append_the_day_twice() {
    let site = Site::new();
    let gateway = site.start().expect("starts");
    gateway.check_default("workspace.rbac");
    gateway.tick();
    let open_before = std::fs::read(site.path(CURRENT_FILE)).expect("open day");
    site.clock.set(START + DAY);
    gateway.tick();
    drop(gateway);
    // The append went through; the crash came before the open day moved on.
    std::fs::write(site.path(CURRENT_FILE), &open_before).expect("restore");
    let gateway = site.start().expect("restarts");
    gateway.tick();
    let entries = site.entries();
    assert_eq!(days(&entries), vec![(DAY_15.to_owned(), 1)]);
    assert_eq!(
        rbac(&entries[0]),
        PluginCounts {
            allowed: 1,
            refused: 0
        }
    );
}

#[test]
fn an_edited_entry_in_the_ledger_stops_the_start() {
    let site = Site::new();
    let gateway = site.start().expect("starts");
    gateway.check_default("workspace.rbac");
    site.clock.set(START + 3 * DAY);
    gateway.tick();
    drop(gateway);
    let ledger = std::fs::read_to_string(site.path(LEDGER_FILE)).expect("ledger");
    let edited = ledger.replacen("\"allowed\":1", "\"allowed\":0", 1);
    assert_ne!(edited, ledger);
    std::fs::write(site.path(LEDGER_FILE), edited).expect("edit");
    let err = site.start().expect_err("refuses an edited ledger");
    assert!(matches!(err, StartError::Ledger(_)), "{err}");
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn a_second_process_on_the_same_state_directory_only_reads() {
    let site = Site::new();
    let recorder = site.start().expect("starts");
    let reader = site.start().expect("a second one starts");
    assert!(recorder.snapshot().usage_ledger.is_some());
    assert!(reader.snapshot().usage_ledger.is_none());
    site.clock.set(START + DAY);
    reader.tick();
    recorder.tick();
    assert_eq!(site.entries().len(), 1, "appended once");
}

#[test]
fn successive_exports_continue_the_chain_and_a_replay_is_refused() {
    let site = Site::new();
    let gateway = site.start().expect("starts");
    site.clock.set(START + 2 * DAY);
    gateway.tick();
    let first = site.verify(&site.export(), None);
    assert_eq!(first.chain.last_seq, 2);
    site.clock.set(START + 4 * DAY);
    gateway.tick();
    let second = site.export();
    let next = site.verify(&second, Some(&first.chain));
    assert_eq!((next.already_imported, next.entries.len()), (2, 2));
    let trust = TrustStore::new([site.root.public_key().clone()]);
    let replay = verify_bundle(
        &second,
        Some(&next.chain),
        &LicenseCheck {
            trust: &trust,
            license: Some(&site.license),
            deployment_id: Some("dc1"),
        },
    );
    assert_eq!(replay.err().map(|e| e.code()), Some("replayed"));
}
