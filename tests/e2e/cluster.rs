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
    // The org rate is not under test here (the eight clients ask as fast as they can); the
    // key reload interval is long, so that only announcements and the activation time can
    // explain how fast every replica signs with the new key.
    let flags = [
        "--issuer",
        "https://auth.cluster.test",
        "--org-rps",
        "0",
        "--key-publish-delay",
        "2s",
        "--key-reload-interval",
        "1h",
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
    // Every replica hears of the resumption (the next phase sends to all three; one that
    // has not yet heard would still answer 403 for a few milliseconds).
    wait_until(
        "every replica to grant again",
        Duration::from_secs(5),
        || {
            let all = cluster
                .replicas
                .iter()
                .all(|replica| token(&client, replica, &credential).0 == 200);
            all.then_some(())
        },
    );

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
        // Active after the publish delay: the replica that reloads first then (each wakes
        // for a pending key's activation) activates it, and the others follow its
        // announcement.
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

/// `GET /readyz` of `replica`: how many replicas it counts alive.
fn replicas_alive(client: &Client, replica: &Service) -> u64 {
    client
        .get(format!("{}/readyz", replica.url))
        .send()
        .ok()
        .and_then(|r| r.json::<Value>().ok())
        .and_then(|body| body["replicas_alive"].as_u64())
        .unwrap_or(0)
}

#[test]
fn an_org_asking_ten_times_its_rate_over_three_replicas_is_held_to_its_cluster_wide_rate() {
    const RATE: u64 = 20;
    let Some(cluster) = Cluster::start(&["--issuer", "https://auth.cluster.test"]) else {
        return;
    };
    let one = &cluster.replicas[0];
    let file = one.tenant("acme", "team", &["--limit", &format!("rps={RATE}")], "gw-1");
    let credential = credential(&file);
    let client = Client::new();
    wait_until(
        "every replica to count three",
        Duration::from_secs(20),
        || {
            let all = cluster
                .replicas
                .iter()
                .all(|r| replicas_alive(&client, r) == 3);
            all.then_some(())
        },
    );
    // Four clients, each a request every 20 ms, spread over the replicas in turn: about
    // 200 requests a second, ten times the org's rate.
    let started = Instant::now();
    let (granted, asked) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|n| {
                let (credential, replicas) = (&credential, &cluster.replicas);
                scope.spawn(move || {
                    let client = Client::new();
                    let (mut granted, mut asked, mut turn) = (0_u64, 0_u64, n);
                    while started.elapsed() < Duration::from_secs(4) {
                        let replica = &replicas[turn % replicas.len()];
                        turn += 1;
                        asked += 1;
                        match token(&client, replica, credential).0 {
                            200 => granted += 1,
                            429 => {}
                            other => panic!("token request answered {other}"),
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    (granted, asked)
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().expect("client"))
            .fold((0, 0), |(g, a), (g1, a1)| (g + g1, a + a1))
    });
    let seconds = started.elapsed().as_secs_f64();
    // docs/OPERATIONS.md, "Cluster-wide limits": at most (R + n - 1)·(T + 1) (case 1), plus
    // one burst per replica should a late beat change a count on this loaded machine (case
    // 3). Each replica enforcing the whole rate would grant about three times as much.
    let bound = (RATE + 2) as f64 * (seconds + 2.0);
    eprintln!("granted {granted} of {asked} in {seconds:.1} s; the bound is {bound:.0}");
    assert!(
        asked as f64 >= 5.0 * RATE as f64 * seconds,
        "the clients asked {asked} in {seconds:.1} s: not enough pressure"
    );
    assert!(
        (granted as f64) <= bound,
        "granted {granted} of {asked} in {seconds:.1} s: above the cluster-wide bound {bound:.0}"
    );
    // Held to the rate, not starved: at least half of it was granted.
    assert!(
        granted as f64 >= RATE as f64 * seconds / 2.0,
        "granted only {granted} in {seconds:.1} s"
    );
}
