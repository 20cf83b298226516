//! A root rollover without a flag day: the service's key is certified by an old root, a new
//! root certifies the same key, both certificates are served while gateways pinning either
//! root keep refreshing (the real `mcpg-entitlements` library), then the old certificate is
//! removed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpg_auth::{ExternalKey, Settings};
use mcpg_entitlements::{Gateway, GatewayBuilder, ModeSettings, RefreshError, State};
use mcpg_license_core::{Bounds, SigningKey, TrustStore};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::byoc::certify;
use crate::helpers::{Backend, TestApp, now, on_both_backends, spawn_app_full};

const DAY: i64 = 86_400;

/// An old and a new root, one issuer key certified by each, as files.
pub struct Roots {
    pub old: SigningKey,
    pub new: SigningKey,
    pub key: SigningKey,
    pub old_cert: String,
    pub old_cid: String,
    pub new_cert: String,
    pub new_cid: String,
    dir: tempfile::TempDir,
}

impl Roots {
    pub fn new() -> Self {
        let t0 = now();
        let old = SigningKey::generate().expect("rng");
        let new = SigningKey::generate().expect("rng");
        let key = SigningKey::generate().expect("rng");
        let (old_cert, old_cid) = certify(&old, &key, Bounds::unbounded(), t0 - 60, t0 + 90 * DAY);
        let (new_cert, new_cid) = certify(&new, &key, Bounds::unbounded(), t0 - 60, t0 + 400 * DAY);
        let roots = Self {
            old,
            new,
            key,
            old_cert,
            old_cid,
            new_cert,
            new_cid,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let write = |name: &str, text: &str| {
            std::fs::write(roots.path(name), text).expect("write file");
        };
        write("signing.paserk", roots.key.to_paserk().as_str());
        write("old.cert", &roots.old_cert);
        write("new.cert", &roots.new_cert);
        write("old.public.paserk", &roots.old.public_key().to_paserk());
        write("new.public.paserk", &roots.new.public_key().to_paserk());
        roots
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The service signs with the key under the old root's certificate and trusts both.
    pub fn apply(&self, settings: &mut Settings) {
        settings.external_key = Some(ExternalKey {
            signing_key: self.path("signing.paserk"),
            passphrase_file: None,
            certificates: vec![self.path("old.cert")],
        });
        settings.trusted_roots = vec![
            self.path("old.public.paserk"),
            self.path("new.public.paserk"),
        ];
    }

    pub fn kid(&self) -> String {
        self.key.kid().to_string()
    }
}

/// Which roots a gateway pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pins {
    Old,
    Both,
    New,
}

fn gateway(
    app: &TestApp,
    roots: &Roots,
    pins: Pins,
    credential: &str,
    state_dir: &Path,
) -> Gateway {
    let old = roots.old.public_key().clone();
    let new = roots.new.public_key().clone();
    let trust = match pins {
        Pins::Old => TrustStore::new([old]),
        Pins::Both => TrustStore::new([old, new]),
        Pins::New => TrustStore::new([new]),
    };
    GatewayBuilder::new(mcpg_entitlements::Settings {
        mode: ModeSettings::Federated {
            url: app.address.clone(),
            credential: SecretString::from(credential.to_owned()),
            timeout: Duration::from_secs(10),
        },
        state_dir: state_dir.to_owned(),
        trust,
        revocation_list: None,
        more_tenants: Vec::new(),
    })
    .build()
    .expect("gateway starts")
}

/// The certificates `GET /v1/admin/keys` lists for `kid`.
pub async fn listed(app: &TestApp, kid: &str) -> Vec<Value> {
    let keys = app
        .expect(Method::GET, "/v1/admin/keys", None, StatusCode::OK)
        .await;
    keys.as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .and_then(|k| k["certificates"].as_array().cloned())
        .expect("the key and its certificates")
}

/// Phases of the rollover, as a refresh saw them when it started. A refresh that started
/// while an admin request was under way may see either side of it.
const OLD_ONLY: u8 = 0;
const ADDING: u8 = 1;
const BOTH_SERVED: u8 = 2;
const REMOVING: u8 = 3;
const NEW_ONLY: u8 = 4;

/// What one gateway's refreshes gave: the phase each started in, and its outcome.
type Log = Arc<Mutex<Vec<(u8, Result<(), &'static str>)>>>;

/// Waits until every gateway has started and finished at least two refreshes in `phase`.
async fn each_refreshed_in(logs: &[Log], phase: u8) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done = logs.iter().all(|log| {
            let log = log.lock().expect("log");
            log.iter().filter(|(p, _)| *p == phase).count() >= 2
        });
        if done {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gateways did not refresh in phase {phase}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

on_both_backends!(gateways_pinning_either_root_keep_federating_through_a_root_rollover);

async fn gateways_pinning_either_root_keep_federating_through_a_root_rollover(backend: Backend) {
    let roots = Roots::new();
    let app = Arc::new(spawn_app_full(backend, |s| roots.apply(s), None).await);
    let probe = app.gateway("acme").await;
    let kid = roots.kid();
    let served = app.token_ok(&probe).await;
    assert_eq!(served["issuer_certificates"], json!([roots.old_cert]));

    let phase = Arc::new(AtomicU8::new(OLD_ONLY));
    let stop = Arc::new(AtomicBool::new(false));
    let pins = [
        Pins::Old,
        Pins::Old,
        Pins::Old,
        Pins::Both,
        Pins::Both,
        Pins::Both,
        Pins::New,
        Pins::New,
    ];
    let state_dirs: Vec<tempfile::TempDir> = pins
        .iter()
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let mut clients = Vec::new();
    let mut credentials = Vec::new();
    let mut logs: Vec<Log> = Vec::new();
    for (i, pins) in pins.into_iter().enumerate() {
        let (credential, _) = app.register_gateway("acme", &format!("pinned-{i}")).await;
        let gateway = gateway(&app, &roots, pins, &credential, state_dirs[i].path());
        credentials.push(credential);
        let log = Log::default();
        logs.push(log.clone());
        let (phase, stop) = (phase.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let seen = phase.load(Ordering::SeqCst);
                let outcome = gateway
                    .refresh_now()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.code());
                log.lock().expect("log").push((seen, outcome));
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            (pins, gateway)
        }));
    }
    each_refreshed_in(&logs, OLD_ONLY).await;

    // The new root certifies the same key: served beside the old certificate.
    phase.store(ADDING, Ordering::SeqCst);
    let added = app
        .expect(
            Method::POST,
            &format!("/v1/admin/keys/{kid}/certificates"),
            Some(json!({"certificate": roots.new_cert})),
            StatusCode::CREATED,
        )
        .await;
    phase.store(BOTH_SERVED, Ordering::SeqCst);
    assert_eq!(added["cid"], roots.new_cid.as_str());
    assert_eq!(added["root_kid"], roots.new.kid().as_str());
    let served = app.token_ok(&probe).await;
    assert_eq!(
        served["issuer_certificate"],
        roots.old_cert.as_str(),
        "the primary stays first"
    );
    assert_eq!(
        served["issuer_certificates"],
        json!([roots.old_cert, roots.new_cert])
    );
    let jwks: Value = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.address))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks JSON");
    let entry = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .expect("the key in the JWKS");
    assert_eq!(entry["mcpg_cert"], roots.old_cert.as_str());
    assert_eq!(entry["mcpg_certs"], json!([roots.old_cert, roots.new_cert]));
    let certificates = listed(&app, &kid).await;
    assert_eq!(certificates.len(), 2, "{certificates:?}");
    assert_eq!(certificates[0]["cid"], roots.old_cid.as_str());
    assert_eq!(certificates[0]["root_kid"], roots.old.kid().as_str());
    assert_eq!(certificates[0]["primary"], true);
    assert_eq!(certificates[1]["cid"], roots.new_cid.as_str());
    assert!(certificates[1]["expires_at"].is_string());
    each_refreshed_in(&logs, BOTH_SERVED).await;

    // Every gateway carries the new root: the old certificate goes.
    phase.store(REMOVING, Ordering::SeqCst);
    app.expect(
        Method::DELETE,
        &format!("/v1/admin/keys/{kid}/certificates/{}", roots.old_cid),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    phase.store(NEW_ONLY, Ordering::SeqCst);
    let served = app.token_ok(&probe).await;
    assert_eq!(served["issuer_certificate"], roots.new_cert.as_str());
    assert_eq!(served["issuer_certificates"], json!([roots.new_cert]));
    let certificates = listed(&app, &kid).await;
    assert_eq!(certificates.len(), 1, "{certificates:?}");
    assert_eq!(certificates[0]["cid"], roots.new_cid.as_str());
    assert_eq!(certificates[0]["primary"], true);
    each_refreshed_in(&logs, NEW_ONLY).await;
    stop.store(true, Ordering::SeqCst);

    for (client, log) in clients.into_iter().zip(&logs) {
        let (pins, gateway) = client.await.expect("client task");
        let outcomes = log.lock().expect("log").clone();
        for (seen, outcome) in &outcomes {
            let expected: Result<(), &str> = match (pins, *seen) {
                (Pins::Old, REMOVING) | (Pins::New, ADDING) => continue,
                (Pins::Both, _) | (Pins::Old, OLD_ONLY | ADDING | BOTH_SERVED) => Ok(()),
                (Pins::New, BOTH_SERVED | REMOVING | NEW_ONLY) => Ok(()),
                (Pins::Old, _) | (Pins::New, _) => Err("untrusted_root"),
            };
            assert_eq!(
                *outcome, expected,
                "{pins:?}, a refresh started in phase {seen}"
            );
        }
        // A refresh that failed verification keeps the last good token.
        assert_eq!(gateway.default_handle().state(), State::Active, "{pins:?}");
    }

    // The gateways persisted the certificate that verified their token (the new root's,
    // since the removal): restarted on their state directories they resume Active.
    for i in [3, 7] {
        let restarted = gateway(&app, &roots, pins[i], &credentials[i], state_dirs[i].path());
        assert_eq!(
            restarted.default_handle().state(),
            State::Active,
            "{:?}",
            pins[i]
        );
    }
    let fresh = tempfile::tempdir().expect("tempdir");
    let old_only = gateway(&app, &roots, Pins::Old, &credentials[0], fresh.path());
    match old_only.refresh_now().await {
        Err(error @ RefreshError::Rejected(_)) => assert_eq!(error.code(), "untrusted_root"),
        other => panic!("an old-only gateway federated after the removal: {other:?}"),
    }
}
