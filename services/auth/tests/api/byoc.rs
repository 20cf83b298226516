//! BYOC mode: a customer's `mcpg-auth` signing with its own key under a vendor certificate
//! bounded to its org. Start checks, minting inside the bounds, expiry, revocation lists.

use std::path::PathBuf;
use std::sync::Arc;

use mcpg_auth::Application;
use mcpg_auth::{ExternalKey, Settings};
use mcpg_license_core::{
    Bounds, Catalog, EntitlementId, IssuerCertificate, LicenseClaims, ManualClock, RevocationList,
    SigningKey, Tier, TrustStore, Validity,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestDatabase, assert_error, now, on_both_backends, spawn_app_full,
    test_settings,
};

/// The issuer URL of the test servers.
pub const ISSUER: &str = "http://127.0.0.1:8421";
const DAY: i64 = 86_400;

/// A vendor root, a customer key and the certificate binding them, as files.
pub struct Byoc {
    pub root: SigningKey,
    pub key: SigningKey,
    pub certificate: String,
    pub cid: String,
    pub dir: tempfile::TempDir,
}

/// What the tests' BYOC issuer may sign: org `acme`, Team, the Team defaults plus
/// `policy.cedar`, 1 h tokens, 1 day of grace.
pub fn acme_bounds() -> Bounds {
    let mut entitlements = Catalog::builtin().tier_defaults(Tier::Team);
    entitlements.insert(EntitlementId::parse("plugin:policy.cedar").expect("id"));
    Bounds {
        orgs: Some(vec!["acme".into()]),
        max_tier: Tier::Team,
        entitlements: Some(entitlements),
        max_token_lifetime: 3_600,
        max_grace: DAY,
    }
}

/// A certificate for `key` signed by `root`.
pub fn certify(
    root: &SigningKey,
    key: &SigningKey,
    bounds: Bounds,
    nbf: i64,
    exp: i64,
) -> (String, String) {
    let cid = format!("cert_{}", uuid::Uuid::new_v4().simple());
    let certificate = IssuerCertificate {
        cid: cid.clone(),
        issuer: ISSUER.into(),
        key: key.public_key().clone(),
        iat: nbf,
        nbf,
        exp,
        bounds,
    }
    .sign(root)
    .expect("certificate signs");
    (certificate, cid)
}

impl Byoc {
    /// A fresh root and key, certified with `bounds` for `[nbf, exp)`.
    pub fn new(bounds: Bounds, nbf: i64, exp: i64) -> Self {
        let root = SigningKey::generate().expect("rng");
        let key = SigningKey::generate().expect("rng");
        let (certificate, cid) = certify(&root, &key, bounds, nbf, exp);
        let byoc = Self {
            root,
            key,
            certificate,
            cid,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        byoc.write();
        byoc
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// (Re)writes the key, certificate and root files.
    pub fn write(&self) {
        std::fs::write(self.path("signing.paserk"), self.key.to_paserk().as_bytes())
            .expect("write key");
        std::fs::write(self.path("signing.cert"), &self.certificate).expect("write cert");
        std::fs::write(
            self.path("root.public.paserk"),
            self.root.public_key().to_paserk(),
        )
        .expect("write root");
    }

    /// Points `settings` at the key, the certificate and the root.
    pub fn apply(&self, settings: &mut Settings) {
        settings.external_key = Some(ExternalKey {
            signing_key: self.path("signing.paserk"),
            passphrase_file: None,
            certificates: vec![self.path("signing.cert")],
        });
        settings.trusted_roots = vec![self.path("root.public.paserk")];
    }

    /// What a gateway configured with only this vendor root trusts.
    pub fn trust(&self) -> TrustStore {
        TrustStore::new([self.root.public_key().clone()])
    }

    /// A revocation list signed by the root.
    pub fn revocations(&self, serial: u64, certificates: &[&str]) -> String {
        RevocationList {
            serial,
            iat: now(),
            certificates: certificates.iter().map(|c| c.to_string()).collect(),
            licenses: Default::default(),
        }
        .sign(&self.root)
        .expect("list signs")
    }
}

/// Verifies a token response the way a gateway does: chain, bounds, times.
pub fn verify_at_gateway(trust: &TrustStore, body: &Value, at: i64) -> LicenseClaims {
    trust
        .verify_online_token(
            body["token"].as_str().expect("token"),
            body["issuer_certificate"].as_str().expect("certificate"),
            at,
            Validity::Strict,
        )
        .expect("the gateway accepts the token")
}

async fn spawn_byoc(backend: Backend, byoc: &Byoc, clock: Option<Arc<ManualClock>>) -> TestApp {
    spawn_app_full(backend, |settings| byoc.apply(settings), clock).await
}

on_both_backends!(
    a_byoc_issuer_signs_only_inside_its_certificate,
    a_byoc_issuer_stops_at_its_certificates_expiry,
    the_start_refuses_certificates_that_do_not_fit,
    revocation_lists_are_verified_served_and_only_move_forward,
);

async fn a_byoc_issuer_signs_only_inside_its_certificate(backend: Backend) {
    let t0 = now();
    let byoc = Byoc::new(acme_bounds(), t0 - 60, t0 + 90 * DAY);
    let app = spawn_byoc(backend, &byoc, None).await;
    let credential = app.gateway("acme").await;

    let body = app.token_ok(&credential).await;
    assert_eq!(body["issuer_certificate"], byoc.certificate.as_str());
    let jwks = app.jwks().await;
    assert_eq!(
        jwks.keys[0].mcpg_cert.as_deref(),
        Some(byoc.certificate.as_str())
    );
    let claims = verify_at_gateway(&byoc.trust(), &body, now());
    assert_eq!(claims.org, "acme");
    assert_eq!(claims.tier, Tier::Team);
    assert_eq!(
        claims.lifetime(),
        3_600,
        "capped to the certificate's lifetime"
    );
    assert_eq!(
        claims.grc.expect("grace") - claims.exp,
        DAY,
        "capped to the certificate's grace"
    );

    // Each bound broken alone by a write: refused when written, with its own reason, so
    // no license is accepted that every token request would then refuse.
    let refused = |status: StatusCode, body: Value, code: &str| {
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_error(&body, "outside_certificate_bounds");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(code), "{code} in {message}");
    };
    let license = "/v1/orgs/acme/license";
    let enterprise = json!({"tier": "enterprise", "valid_for_days": 30});
    let (status, body) = app.send(Method::PUT, license, Some(enterprise)).await;
    refused(status, body, "tier_above_max");

    let saml =
        json!({"tier": "team", "entitlements_add": ["plugin:identity.saml"], "valid_for_days": 30});
    let (status, body) = app.send(Method::PUT, license, Some(saml)).await;
    refused(status, body, "entitlement_not_allowed");

    let globex = json!({"slug": "globex", "display_name": "Globex"});
    let (status, body) = app.send(Method::POST, "/v1/orgs", Some(globex)).await;
    refused(status, body, "org_not_allowed");
    let (status, _) = app.send(Method::GET, "/v1/orgs/globex", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the org was not created");

    // The license in force was not replaced: tokens are still signed under it.
    app.token_ok(&credential).await;

    // Back inside the bounds: signed again.
    app.set_license(
        "acme",
        json!({"tier": "team", "entitlements_add": ["plugin:policy.cedar"], "valid_for_days": 30}),
    )
    .await;
    app.token_ok(&credential).await;
}

async fn a_byoc_issuer_stops_at_its_certificates_expiry(backend: Backend) {
    let t0 = now();
    let exp = t0 + 20 * DAY;
    let byoc = Byoc::new(acme_bounds(), t0 - 60, exp);
    let clock = Arc::new(ManualClock::new(t0));
    let app = spawn_byoc(backend, &byoc, Some(clock.clone())).await;
    let credential = app.gateway("acme").await;

    // Ten minutes before the certificate ends: the token ends with it.
    clock.set(exp - 600);
    let body = app.token_ok(&credential).await;
    let claims = verify_at_gateway(&byoc.trust(), &body, exp - 600);
    assert_eq!(claims.exp, exp, "capped at the certificate's expiry");
    assert!(claims.grc.expect("grace") <= exp + DAY);
    let ready = app.client.get(format!("{}/readyz", app.address)).send();
    assert_eq!(ready.await.expect("readyz").status(), StatusCode::OK);
    let metrics = app.scrape().await;
    assert!(
        metrics.contains("mcpg_certificate_expiry_seconds"),
        "{metrics}"
    );

    // Past it: nothing is signed and the service says it is not ready.
    clock.set(exp + 1);
    let (status, body) = app.token(&credential).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(&body, "unavailable");
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["certificate_valid"], false);
}

/// Builds (without serving) on `backend` with `adjust`; the error text when it fails.
async fn start_error(backend: &Backend, adjust: impl FnOnce(&mut Settings)) -> String {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(data_dir.path());
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres(url) => Some(TestDatabase::create_for_test(url).await),
    };
    if let Some(db) = &database {
        settings.database_url = Some(db.url.clone().into());
        settings.migrate_database_url = Some(db.owner_url.clone().into());
    }
    adjust(&mut settings);
    match Application::build(settings).await {
        Ok(_) => "started".into(),
        Err(error) => format!("{error:#}"),
    }
}

async fn the_start_refuses_certificates_that_do_not_fit(backend: Backend) {
    let t0 = now();
    let good = Byoc::new(acme_bounds(), t0 - 60, t0 + 90 * DAY);
    assert_eq!(start_error(&backend, |s| good.apply(s)).await, "started");

    let expired = Byoc::new(acme_bounds(), t0 - 90 * DAY, t0 - DAY);
    let error = start_error(&backend, |s| expired.apply(s)).await;
    assert!(error.contains("certificate_expired"), "{error}");

    let mismatched = Byoc::new(acme_bounds(), t0 - 60, t0 + 90 * DAY);
    let other = SigningKey::generate().expect("rng");
    std::fs::write(
        mismatched.dir.path().join("signing.paserk"),
        other.to_paserk().as_bytes(),
    )
    .expect("write");
    let error = start_error(&backend, |s| mismatched.apply(s)).await;
    assert!(
        error.contains(&format!("but the signing key is {}", other.kid())),
        "{error}"
    );

    let untrusted = Byoc::new(acme_bounds(), t0 - 60, t0 + 90 * DAY);
    let error = start_error(&backend, |s| {
        untrusted.apply(s);
        s.trusted_roots.clear();
    })
    .await;
    assert!(error.contains("untrusted_root"), "{error}");

    let wrong_issuer = Byoc::new(acme_bounds(), t0 - 60, t0 + 90 * DAY);
    let error = start_error(&backend, |s| {
        wrong_issuer.apply(s);
        s.issuer = Some("https://elsewhere.example".into());
    })
    .await;
    assert!(error.contains("is for issuer"), "{error}");
}

async fn revocation_lists_are_verified_served_and_only_move_forward(backend: Backend) {
    let t0 = now();
    let byoc = Byoc::new(acme_bounds(), t0 - 60, t0 + 90 * DAY);
    let mut app = spawn_byoc(backend, &byoc, None).await;
    let credential = app.gateway("acme").await;
    let well_known = format!("{}/.well-known/mcpg-revocations", app.address);
    let fetch = app.client.get(&well_known).send().await.expect("get");
    assert_eq!(
        fetch.status(),
        StatusCode::NOT_FOUND,
        "nothing uploaded yet"
    );

    let upload = |list: String| {
        app.admin(Method::PUT, "/v1/admin/revocations")
            .header("content-type", "text/plain")
            .body(list)
            .send()
    };
    let first = byoc.revocations(2, &["cert_someone_else"]);
    let response = upload(first.clone()).await.expect("put");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["serial"], 2);
    assert_eq!(body["certificates"], json!(["cert_someone_else"]));

    let fetch = app.client.get(&well_known).send().await.expect("get");
    assert_eq!(fetch.status(), StatusCode::OK);
    assert!(
        fetch
            .headers()
            .get("cache-control")
            .is_some_and(|v| v.to_str().unwrap_or_default().contains("max-age"))
    );
    assert_eq!(fetch.text().await.expect("text"), first);
    app.token_ok(&credential).await;

    for replay in [
        byoc.revocations(1, &[&byoc.cid]),
        byoc.revocations(2, &[&byoc.cid]),
    ] {
        let response = upload(replay).await.expect("put");
        assert_eq!(response.status(), StatusCode::CONFLICT);
    }
    let stranger = Byoc::new(acme_bounds(), t0 - 60, t0 + DAY);
    let response = upload(stranger.revocations(9, &[&byoc.cid]))
        .await
        .expect("put");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let unauthenticated = app
        .client
        .put(format!("{}/v1/admin/revocations", app.address))
        .body(byoc.revocations(10, &[]))
        .send()
        .await
        .expect("put");
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    app.token_ok(&credential).await;

    // The list names this issuer's own certificate: it stops signing at once.
    let response = upload(byoc.revocations(3, &[&byoc.cid]))
        .await
        .expect("put");
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = app.token(&credential).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let ready = app.client.get(format!("{}/readyz", app.address)).send();
    assert_eq!(
        ready.await.expect("readyz").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let shown = app
        .expect(Method::GET, "/v1/admin/revocations", None, StatusCode::OK)
        .await;
    assert_eq!(shown["serial"], 3);

    // And a restart with the revoked certificate is refused.
    app.stop().await;
    let settings = app.settings.clone();
    let error = Application::build(settings)
        .await
        .err()
        .map(|e| format!("{e:#}"));
    assert!(
        error.as_deref().is_some_and(|e| e.contains("revoked")),
        "{error:?}"
    );
}
