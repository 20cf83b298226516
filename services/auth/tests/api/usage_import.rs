//! The import of air-gapped deployments' usage receipts (issue 15, item 3):
//! `POST /v1/orgs/{org}/usage/receipts`. Bundles are built here with license-core and a
//! root generated at test time that the server trusts (`--trusted-root`).

use std::collections::BTreeMap;

use mcpg_license_core::AUDIENCE;
use mcpg_license_core::usage::{
    BUNDLE_FORMAT, Bundle, Day, DayEntry, ENTRY_VERSION, GENESIS_HASH, LicenseBinding,
    PluginCounts, SignedEntry, encode_key, license_digest,
};
use mcpg_license_core::{
    EntitlementSet, LicenseClaims, Limits, SigningKey, Tier, issue_offline_license,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, assert_error, now, on_both_backends, spawn_app_with, split,
};
use crate::rbac::{grant, user_token};

/// The vendor root the server trusts, and the directory holding its public key.
pub struct Vendor {
    pub root: SigningKey,
    _dir: tempfile::TempDir,
}

/// A server that trusts a root generated for the test, with org `acme` (and `globex`).
pub async fn app_with_vendor(backend: Backend) -> (TestApp, Vendor) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = SigningKey::generate().expect("rng");
    let path = dir.path().join("vendor-root.public.paserk");
    std::fs::write(&path, root.public_key().to_paserk()).expect("write root");
    let app = spawn_app_with(backend, |settings| settings.trusted_roots = vec![path]).await;
    app.gateway("acme").await;
    app.gateway("globex").await;
    (app, Vendor { root, _dir: dir })
}

/// An offline license of `org` bound to `deployment`, signed by `root`.
pub fn license(root: &SigningKey, org: &str, lic: &str, deployment: &str) -> String {
    let at = now() - 30 * 86_400;
    let claims = LicenseClaims {
        iss: "https://vendor.example".into(),
        sub: lic.into(),
        aud: AUDIENCE.into(),
        iat: at,
        nbf: at,
        exp: at + 365 * 86_400,
        jti: format!("jti-{lic}"),
        org: org.into(),
        ws: None,
        env: None,
        tier: Tier::Enterprise,
        ent: EntitlementSet::new(),
        lim: Limits::default(),
        lic: lic.into(),
        rfa: None,
        grc: None,
        bind: Some(deployment.into()),
        ps: None,
    };
    issue_offline_license(&claims, root, None).expect("signs")
}

/// The first day of the ledgers: five days before today (UTC).
pub fn first_day() -> i64 {
    (now() / 86_400 - 5) * 86_400
}

/// A site: its deployment, key and license, and the entries of its ledger.
pub struct Site {
    pub deployment: String,
    pub key: SigningKey,
    pub license: String,
    pub org: String,
    pub lic: String,
    pub entries: Vec<SignedEntry>,
}

impl Site {
    /// `days` days of ledger from [`first_day`]: day i (from 0) has 10·(i+1) checks of
    /// `policy.cedar` allowed, i refused, one gateway, `tokens` 0.
    pub fn new(root: &SigningKey, org: &str, deployment: &str, days: u64) -> Self {
        let key = SigningKey::generate().expect("rng");
        let lic = format!("lic_{org}_{deployment}");
        let license = license(root, org, &lic, deployment);
        let mut site = Site {
            deployment: deployment.into(),
            key,
            license,
            org: org.into(),
            lic,
            entries: Vec::new(),
        };
        site.entries = site.ledger(days, |_| {});
        site
    }

    /// The ledger's entries, each edited by `edit` before it is signed.
    pub fn ledger(&self, days: u64, mut edit: impl FnMut(&mut DayEntry)) -> Vec<SignedEntry> {
        let mut prev = GENESIS_HASH.to_owned();
        (0..days)
            .map(|i| {
                let mut entry = DayEntry {
                    v: ENTRY_VERSION,
                    seq: i + 1,
                    day: Day::of(first_day() + i as i64 * 86_400).to_string(),
                    deployment_id: self.deployment.clone(),
                    org: self.org.clone(),
                    license_id: self.lic.clone(),
                    gateways_active: 1,
                    tokens: 0,
                    peak_gateways: 1,
                    plugins: BTreeMap::from([(
                        "policy.cedar".to_owned(),
                        PluginCounts {
                            allowed: 10 * (i + 1),
                            refused: i,
                        },
                    )]),
                    version: "0.1.0".into(),
                    prev_hash: prev.clone(),
                };
                edit(&mut entry);
                let signed = entry.sign(&self.key);
                prev = signed.hash.clone();
                signed
            })
            .collect()
    }

    /// A bundle of `entries` (a slice of the ledger).
    pub fn bundle(&self, entries: &[SignedEntry]) -> Vec<u8> {
        Bundle {
            format: BUNDLE_FORMAT.into(),
            deployment_id: self.deployment.clone(),
            deployment_key: encode_key(self.key.public_key()),
            license: LicenseBinding {
                id: self.lic.clone(),
                org: self.org.clone(),
                sha256: license_digest(&self.license),
                token: self.license.clone(),
            },
            exported_at: "2027-01-01T00:00:00Z".into(),
            entries: entries.to_vec(),
        }
        .to_json()
        .into_bytes()
    }
}

/// Posts `bundle` to `org`'s receipts with `token`.
pub async fn import_as(
    app: &TestApp,
    token: &str,
    org: &str,
    bundle: Vec<u8>,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/v1/orgs/{org}/usage/receipts", app.address))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(bundle)
        .send()
        .await
        .expect("import sent");
    split(response).await
}

async fn import(app: &TestApp, org: &str, bundle: Vec<u8>) -> (StatusCode, Value) {
    import_as(app, &app.admin_token, org, bundle).await
}

/// `(day, gateways_active, tokens, peak, cedar allowed, cedar refused)` of the usage rows.
async fn usage_days(app: &TestApp, org: &str) -> Vec<(String, u64, u64, u64, u64, u64)> {
    let from = Day::of(first_day()).to_string();
    let to = Day::of(now()).to_string();
    let body = app
        .expect(
            Method::GET,
            &format!("/v1/orgs/{org}/usage?from={from}&to={to}"),
            None,
            StatusCode::OK,
        )
        .await;
    body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let cedar = &r["plugins"]["policy.cedar"];
            (
                r["period"].as_str().expect("period").to_owned(),
                r["gateways_active"].as_u64().expect("active"),
                r["tokens"].as_u64().expect("tokens"),
                r["peak_gateways"].as_u64().expect("peak"),
                cedar["allowed"].as_u64().unwrap_or(0),
                cedar["refused"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn expected_days(range: std::ops::Range<u64>) -> Vec<(String, u64, u64, u64, u64, u64)> {
    range
        .map(|i| {
            let day = Day::of(first_day() + i as i64 * 86_400).to_string();
            (day, 1, 0, 1, 10 * (i + 1), i)
        })
        .collect()
}

/// The details of the org's `usage.import` audit entries.
async fn import_entries(app: &TestApp, org: &str) -> Vec<Value> {
    let body = app
        .expect(
            Method::GET,
            &format!("/v1/orgs/{org}/audit?action=usage.import"),
            None,
            StatusCode::OK,
        )
        .await;
    body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| serde_json::from_str(e["details"].as_str().expect("details")).expect("JSON"))
        .collect()
}

on_both_backends!(imports_store_new_days_once_and_continue_the_chain);

async fn imports_store_new_days_once_and_continue_the_chain(backend: Backend) {
    let (app, vendor) = app_with_vendor(backend).await;
    let site = Site::new(&vendor.root, "acme", "dc1", 5);
    let day = |i: i64| Day::of(first_day() + i * 86_400).to_string();

    let (status, body) = import(&app, "acme", site.bundle(&site.entries[..3])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            &body["org"],
            &body["deployment_id"],
            &body["license"],
            &body["days_imported"],
            &body["already_imported"],
            &body["first_seq"],
            &body["last_seq"],
        ),
        (
            &json!("acme"),
            &json!("dc1"),
            &json!("lic_acme_dc1"),
            &json!(3),
            &json!(0),
            &json!(1),
            &json!(3)
        )
    );
    assert_eq!(
        (body["first_day"].clone(), body["last_day"].clone()),
        (json!(day(0)), json!(day(2)))
    );
    assert_eq!(body["chain_hash"], json!(site.entries[2].hash));
    assert_eq!(
        body["totals"],
        json!({"active_days": 3, "peak_gateways": 1, "tokens": 0,
               "plugins": {"policy.cedar": {"allowed": 60, "refused": 3}}})
    );
    assert_eq!(usage_days(&app, "acme").await, expected_days(0..3));
    assert_eq!(usage_days(&app, "globex").await, vec![]);

    // The same bundle again: replayed, nothing written.
    let (status, body) = import(&app, "acme", site.bundle(&site.entries[..3])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_error(&body, "replayed");
    assert_eq!(import_entries(&app, "acme").await.len(), 1);

    // A later bundle overlapping the imported days: only the new ones are stored.
    let (status, body) = import(&app, "acme", site.bundle(&site.entries[1..5])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            &body["days_imported"],
            &body["already_imported"],
            &body["first_seq"],
            &body["last_seq"]
        ),
        (&json!(2), &json!(2), &json!(4), &json!(5))
    );
    assert_eq!(usage_days(&app, "acme").await, expected_days(0..5));

    let entries = import_entries(&app, "acme").await;
    assert_eq!(entries.len(), 2, "one audit entry per import");
    assert_eq!(
        entries[1],
        json!({"deployment": "dc1", "deployment_key": encode_key(site.key.public_key()),
               "license": "lic_acme_dc1", "days": 2, "already_imported": 2,
               "first_day": day(3), "last_day": day(4), "first_seq": 4, "last_seq": 5,
               "chain_hash": site.entries[4].hash})
    );
}

on_both_backends!(tampered_and_foreign_bundles_are_refused_with_their_reason);

async fn tampered_and_foreign_bundles_are_refused_with_their_reason(backend: Backend) {
    let (app, vendor) = app_with_vendor(backend).await;
    let site = Site::new(&vendor.root, "acme", "dc1", 5);
    let (status, body) = import(&app, "acme", site.bundle(&site.entries[..2])).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An edited day: its counts changed after signing.
    let mut edited = site.entries[2..5].to_vec();
    edited[1].entry.plugins.insert(
        "policy.cedar".into(),
        PluginCounts {
            allowed: 1,
            refused: 0,
        },
    );
    // Another key for the same deployment id (a second ledger claiming to be dc1).
    let impostor = Site {
        key: SigningKey::generate().expect("rng"),
        ..Site::new(&vendor.root, "acme", "dc1", 0)
    };
    let impostor_entries = impostor.ledger(5, |_| {});
    // A bundle of another org's license, imported into acme.
    let globex = Site::new(&vendor.root, "globex", "dc9", 2);
    // A license signed by a root the server does not trust.
    let stranger = Site::new(&SigningKey::generate().expect("rng"), "acme", "dc2", 2);
    // A gap: day 4 and 5 without day 3.
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "edited",
            site.bundle(&edited),
            StatusCode::UNPROCESSABLE_ENTITY,
            "edited",
        ),
        (
            "gap",
            site.bundle(&site.entries[3..5]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "gap",
        ),
        (
            "another key",
            impostor.bundle(&impostor_entries),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_deployment_key",
        ),
        (
            "another org's license",
            globex.bundle(&globex.entries),
            StatusCode::UNPROCESSABLE_ENTITY,
            "license_mismatch",
        ),
        (
            "untrusted root",
            stranger.bundle(&stranger.entries),
            StatusCode::UNPROCESSABLE_ENTITY,
            "license_mismatch",
        ),
        (
            "not JSON",
            b"{\"format\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            "no entries",
            site.bundle(&[]),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
    ];
    for (what, bundle, expected, code) in cases {
        let (status, body) = import(&app, "acme", bundle).await;
        assert_eq!(status, expected, "{what}: {body}");
        assert_error(&body, code);
        let message = body["error"]["message"].as_str().expect("message");
        assert!(!message.is_empty(), "{what}");
    }
    let (_, body) = import(&app, "acme", globex.bundle(&globex.entries)).await;
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("\"globex\"") && message.contains("not for acme"),
        "{message}"
    );
    // Nothing of the refused bundles was written.
    assert_eq!(usage_days(&app, "acme").await, expected_days(0..2));
    assert_eq!(import_entries(&app, "acme").await.len(), 1);
    // The good continuation still imports.
    let (status, body) = import(&app, "acme", site.bundle(&site.entries[2..5])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(usage_days(&app, "acme").await, expected_days(0..5));
}

on_both_backends!(a_deployments_key_cannot_import_as_another_deployment);

async fn a_deployments_key_cannot_import_as_another_deployment(backend: Backend) {
    let (app, vendor) = app_with_vendor(backend).await;
    let a = Site::new(&vendor.root, "acme", "dc-a", 2);
    let (status, body) = import(&app, "acme", a.bundle(&a.entries)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Deployment B's license and ledger, signed with A's key.
    let b = Site {
        key: SigningKey::from_seed(&a.key.seed_bytes()),
        ..Site::new(&vendor.root, "acme", "dc-b", 0)
    };
    let entries = b.ledger(2, |_| {});
    let (status, body) = import(&app, "acme", b.bundle(&entries)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_error(&body, "license_mismatch");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("expected deployment dc-a"), "{message}");
    assert_eq!(import_entries(&app, "acme").await.len(), 1);
}

on_both_backends!(only_the_orgs_admins_and_the_vendor_import);

async fn only_the_orgs_admins_and_the_vendor_import(backend: Backend) {
    let (app, vendor) = app_with_vendor(backend).await;
    app.set_license("acme", json!({"tier": "enterprise", "valid_for_days": 30}))
        .await;
    let site = Site::new(&vendor.root, "acme", "dc1", 3);
    let org_key = |org: &'static str| {
        let app = &app;
        async move {
            let created = app
                .expect(
                    Method::POST,
                    "/v1/admin/tokens",
                    Some(json!({"name": format!("{org} key"), "org": org})),
                    StatusCode::CREATED,
                )
                .await;
            created["token"].as_str().expect("token").to_owned()
        }
    };
    let (acme, globex) = (org_key("acme").await, org_key("globex").await);
    // Another org's admin: the same 404 as a missing org.
    let (other, other_body) = import_as(&app, &globex, "acme", site.bundle(&site.entries)).await;
    let (missing, missing_body) =
        import_as(&app, &globex, "no-such-org", site.bundle(&site.entries)).await;
    assert_eq!(
        (other, missing),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(other_body, missing_body);
    // A viewer of the org: 403.
    let viewer = user_token(&app, "acme", "vera@acme.test").await;
    let env = json!({"workspace": "main", "environment": "prod"});
    let bound = grant(&app, "acme", "vera@acme.test", "viewer", env).await;
    assert_eq!(bound["role"], "viewer", "{bound}");
    let (status, body) = import_as(&app, &viewer, "acme", site.bundle(&site.entries)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, "forbidden");
    assert_eq!(usage_days(&app, "acme").await, vec![]);
    // Not declared as JSON: 415.
    let response = app
        .client
        .post(format!("{}/v1/orgs/acme/usage/receipts", app.address))
        .bearer_auth(&acme)
        .header("content-type", "text/plain")
        .body(site.bundle(&site.entries))
        .send()
        .await
        .expect("sent");
    let (status, body) = split(response).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    // The org's admin imports.
    let (status, body) = import_as(&app, &acme, "acme", site.bundle(&site.entries)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(usage_days(&app, "acme").await, expected_days(0..3));
}
