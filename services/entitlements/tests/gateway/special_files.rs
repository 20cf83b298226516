//! Files that are not small regular files (a symlink to `/dev/zero`, a FIFO, a directory, a
//! huge file) in place of the configuration, the offline license or the state: a clear error
//! naming the path, never a hang or an unbounded read.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use mcpg_entitlements::store::{StateStore, credential_fingerprint};
use mcpg_entitlements::{GatewayConfig, Reason};
use mcpg_license_core::{ManualClock, Tier};

use crate::support::*;

/// Runs `f` on its own thread and fails the test when it takes longer than 10 s (a read
/// of a FIFO without a writer, or of `/dev/zero`, never ends).
fn promptly<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("finished within 10 s, without reading forever")
}

fn fifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn dev_zero(path: &Path) {
    std::os::unix::fs::symlink("/dev/zero", path).expect("symlink");
}

/// Every kind of unreadable file at `path`, made by `make`, one after the other.
/// Makes one kind of file at a path.
type Make = fn(&Path);

fn specials() -> [(&'static str, Make); 4] {
    [
        ("a symlink to /dev/zero", dev_zero),
        ("a FIFO", fifo),
        ("a directory", |p| std::fs::create_dir(p).expect("mkdir")),
        ("a 2 MiB file", |p| {
            std::fs::write(p, vec![b'#'; 2 * 1024 * 1024]).expect("write")
        }),
    ]
}

#[test]
fn a_config_file_that_is_not_a_small_regular_file_is_refused_naming_it() {
    for (what, make) in specials() {
        let dir = temp_dir();
        let path = dir.path().join("gateway.toml");
        make(&path);
        let shown = path.clone();
        let error = promptly(move || GatewayConfig::load(&shown))
            .expect_err(what)
            .to_string();
        assert!(
            error.contains(&path.display().to_string()),
            "{what}: {error}"
        );
        assert!(
            error.contains("not a regular file") || error.contains("larger than"),
            "{what}: {error}"
        );
    }
}

#[test]
fn an_offline_license_that_is_not_a_small_regular_file_is_refused_naming_it() {
    for (what, make) in specials() {
        let dir = temp_dir();
        let license = dir.path().join("license.paseto");
        make(&license);
        let config = GatewayConfig::parse(
            &format!(
                "mode = \"offline\"\nstate_dir = \"{}\"\n[offline]\nlicense = \"{}\"\n",
                dir.path().join("state").display(),
                license.display()
            ),
            &dir.path().join("gateway.toml"),
        )
        .expect("config parses");
        let base = dir.path().to_owned();
        let error = promptly(move || config.resolve(&base).map(|_| ()))
            .expect_err(what)
            .to_string();
        assert!(
            error.contains(&license.display().to_string()),
            "{what}: {error}"
        );
    }
}

#[tokio::test]
async fn state_files_that_are_not_small_regular_files_are_ignored_without_hanging() {
    for (what, make) in specials() {
        let dir = temp_dir();
        let store = StateStore::open(dir.path()).expect("state dir");
        make(&store.federation_path(&credential_fingerprint(CREDENTIAL)));
        make(&dir.path().join("max-seen-time.json"));
        make(&dir.path().join("revocation-list.paseto"));
        let clock = ManualClock::new(START);
        let fed = FakeFederation::new(clock.clone(), Tier::Team);
        fed.set(Behaviour::Outage { retry_after: None });
        let state = dir.path().to_owned();
        let gateway = promptly(move || federated(&state, &clock, &fed));
        assert_eq!(
            gateway.check_default("workspace.rbac").reason,
            Reason::NotFederated,
            "{what}: no state taken"
        );
    }
}
