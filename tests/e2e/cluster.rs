//! Three replicas of `mcpg-auth` as real processes on one PostgreSQL database, set up as
//! docs/OPERATIONS.md says (the owner migrates, the service runs as an app role under
//! row-level security, one KEK) and with no key flags: they share the database's one
//! development root, hear each other's changes within a second, and rotate keys under load
//! without failing a request.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::Value;
use tempfile::TempDir;

use crate::support::postgres::Database;
use crate::support::process::wait_until;
use crate::support::{Gateway, Service};

/// Three replicas, the database and the KEK they share.
struct Cluster {
    replicas: Vec<Service>,
    _kek: TempDir,
    database: Database,
}

impl Cluster {
    /// Starts the first replica (it migrates, makes the root and the bootstrap token),
    /// then the other two at once.
    fn start(extra: &[&str]) -> Option<Self> {
        let database = Database::create()?;
        let kek = tempfile::tempdir().expect("temporary directory");
        let kek_file = kek.path().join("cluster.kek");
        let mut bytes = [0_u8; 32];
        getrandom::getrandom(&mut bytes).expect("random bytes");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        write_private(&kek_file, &hex);
        let kek_file = kek_file.display().to_string();
        let mut args = vec![
            "--database-url",
            &database.app_url,
            "--migrate-database-url",
            &database.owner_url,
            "--kek-file",
            &kek_file,
        ];
        args.extend(extra);
        let first = Service::start(&args);
        let others: Vec<Service> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..2)
                .map(|_| scope.spawn(|| Service::start_replica(&first, &args)))
                .collect();
            starts
                .into_iter()
                .map(|start| start.join().expect("replica started"))
                .collect()
        });
        let mut replicas = vec![first];
        replicas.extend(others);
        Some(Self {
            replicas,
            _kek: kek,
            database,
        })
    }
}

fn write_private(path: &std::path::Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("KEK file");
    file.write_all(text.as_bytes()).expect("KEK written");
}

/// `POST /v1/federation/token` with `credential`: the status and the body.
fn token(client: &Client, replica: &Service, credential: &str) -> (u16, Value) {
    let response = client
        .post(format!("{}/v1/federation/token", replica.url))
        .bearer_auth(credential)
        .send()
        .expect("token request sent");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn credential(file: &PathBuf) -> String {
    std::fs::read_to_string(file)
        .expect("credential file")
        .trim()
        .to_owned()
}

#[test]
fn three_replicas_share_one_root_hear_each_other_and_rotate_keys_under_load() {
    // One public URL for the cluster, as a balancer in front of it would have.
    // The org rate is not under test here (the eight clients ask as fast as they can), and
    // the first replica to reload after the publish delay activates the key for all.
    let flags = [
        "--issuer",
        "https://auth.cluster.test",
        "--org-rps",
        "0",
        "--key-publish-delay",
        "2s",
        "--key-reload-interval",
        "5s",
    ];
    let Some(cluster) = Cluster::start(&flags) else {
        return;
    };
    let [one, two, three] = &cluster.replicas[..] else {
        unreachable!("three replicas")
    };
    // One development root for the cluster, written by every replica to its data dir.
    let root = std::fs::read_to_string(one.dev_root()).expect("root file");
    for replica in [two, three] {
        assert_eq!(
            std::fs::read_to_string(replica.dev_root()).expect("root"),
            root
        );
    }
    assert_eq!(
        cluster
            .database
            .query("SELECT count(*) FROM development_root"),
        "1"
    );
    // A gateway that pins that one root federates through each replica in turn.
    let file = one.tenant("acme", "enterprise", &[], "gw-1");
    for replica in [one, two, three] {
        let gateway = Gateway::federated(&replica.url, &file, &[&one.dev_root()]);
        let check = gateway.check("policy.cedar");
        assert!(
            check.allowed(),
            "through {}: {}\n{}",
            replica.url,
            check.json,
            gateway.status()
        );
    }

    // A suspension made on replica 1 is refused on replica 3 within a second, although
    // replica 3 has just cached the grant.
    let client = Client::new();
    let credential = credential(&file);
    assert_eq!(token(&client, three, &credential).0, 200);
    one.ctl_ok(&["org", "suspend", "acme"]);
    let suspended = Instant::now();
    let refused = wait_until("replica 3 to refuse", Duration::from_secs(5), || {
        let (status, body) = token(&client, three, &credential);
        (status == 403).then_some(body)
    });
    let took = suspended.elapsed();
    assert_eq!(refused["error"]["code"], "org_suspended", "{refused}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    two.ctl_ok(&["org", "resume", "acme"]);
    wait_until("replica 1 to grant again", Duration::from_secs(5), || {
        (token(&client, one, &credential).0 == 200).then_some(())
    });

    // A key rotation under eight clients spread over the three replicas fails no request.
    let old_kid = token(&client, one, &credential).1["kid"].clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (kids, failures) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8)
            .map(|n| {
                let (stop, credential, replicas) = (stop.clone(), &credential, &cluster.replicas);
                scope.spawn(move || {
                    let client = Client::new();
                    let (mut kids, mut failures, mut turn) = (BTreeSet::new(), Vec::new(), n);
                    while !stop.load(Ordering::Relaxed) {
                        let replica = &replicas[turn % replicas.len()];
                        turn += 1;
                        match token(&client, replica, credential) {
                            (200, body) => {
                                kids.insert(body["kid"].to_string());
                            }
                            // A few examples, not every one (they would flood the report).
                            (status, body) if failures.len() < 3 => {
                                failures.push(format!("{status}: {body}"));
                            }
                            _ => failures.push(String::new()),
                        }
                    }
                    (kids, failures)
                })
            })
            .collect();
        let rotated = two.ctl_json(&["keys", "rotate"]);
        let new_kid = rotated["kid"].clone();
        // Active after the publish delay, at the first reload of any replica (every 30 s
        // by default; the others follow its announcement).
        wait_until(
            "every replica to sign with the new key",
            Duration::from_secs(60),
            || {
                let all = cluster
                    .replicas
                    .iter()
                    .all(|r| token(&Client::new(), r, &credential).1["kid"] == new_kid);
                all.then_some(())
            },
        );
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        let mut kids = BTreeSet::new();
        let mut failures = Vec::new();
        for client in clients {
            let (k, f) = client.join().expect("client");
            kids.extend(k);
            failures.extend(f);
        }
        (kids, failures)
    });
    let examples: Vec<&String> = failures.iter().filter(|f| !f.is_empty()).collect();
    assert!(
        failures.is_empty(),
        "{} failed requests, e.g. {examples:?}",
        failures.len()
    );
    assert!(kids.contains(&old_kid.to_string()), "{kids:?}");
    assert_eq!(kids.len(), 2, "the old key, then the new one: {kids:?}");
}
