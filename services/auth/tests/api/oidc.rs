//! Operator login through each org's own OIDC provider, against the stand-in IdP of
//! `idp.rs`: tenant isolation, refused tokens, algorithm pinning, key rotation at the IdP,
//! role mapping, and the configuration API.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, now, on_both_backends, spawn_app_with};
use crate::idp::{AUDIENCE, Idp, IdpKey};
use crate::rbac::call;

on_both_backends!(
    a_login_acts_on_its_own_org_and_cannot_act_on_another,
    bad_identity_tokens_are_refused_with_one_answer,
    each_org_pins_its_algorithms,
    a_key_rotation_at_the_idp_is_picked_up_without_a_restart,
    the_role_claim_decides_what_a_login_may_do,
    the_configuration_is_checked_discovered_and_for_admins_only,
    a_token_with_critical_header_parameters_is_refused,
);

/// How long the tests let the service wait between two refetches of one key set.
const REFETCH: Duration = Duration::from_millis(700);

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_app_with(backend, |settings| {
        settings.oidc.allow_loopback = true;
        settings.oidc.refetch_interval = REFETCH;
    })
    .await
}

/// Creates `org` (Enterprise, so its workspace and environment roles are in effect) and
/// points it at `idp` for IdP tenant `tenant` (groups: admins → admin, ops → operator,
/// readers → viewer), pinning `algorithms`.
pub async fn configure(app: &TestApp, org: &str, idp: &Idp, tenant: &str, algorithms: &[&str]) {
    app.create_org(org).await;
    app.set_license(org, json!({"tier": "enterprise", "valid_for_days": 30}))
        .await;
    let body = json!({
        "issuer": idp.issuer,
        "audience": AUDIENCE,
        "jwks_uri": idp.jwks_uri(),
        "tenant_claim": "org_id",
        "tenant_value": tenant,
        "role_claim": "groups",
        "role_map": {"admins": "admin", "ops": "operator", "readers": "viewer"},
        "algorithms": algorithms,
    });
    app.expect(
        Method::PUT,
        &format!("/v1/orgs/{org}/oidc"),
        Some(body),
        StatusCode::OK,
    )
    .await;
}

async fn a_login_acts_on_its_own_org_and_cannot_act_on_another(backend: Backend) {
    let app = spawn(backend).await;
    let key = IdpKey::generate(Algorithm::EdDSA);
    let idp = Idp::start(&[&key]).await;
    configure(&app, "org-a", &idp, "tenant-a", &["EdDSA"]).await;
    configure(&app, "org-b", &idp, "tenant-b", &["EdDSA"]).await;
    let for_a = key.sign(&idp.claims("tenant-a", &["admins"]));

    let ws = Some(json!({"slug": "platform"}));
    let (status, body) = call(
        &app,
        &for_a,
        Method::POST,
        "/v1/orgs/org-a/workspaces",
        ws.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(&app, &for_a, Method::GET, "/v1/orgs/org-a/workspaces", None).await;
    assert_eq!(
        (status, body[0]["slug"].clone()),
        (StatusCode::OK, json!("platform"))
    );

    // Org B looks exactly like an org that does not exist.
    for path in [
        "/v1/orgs/org-b",
        "/v1/orgs/org-b/workspaces",
        "/v1/orgs/no-such-org",
    ] {
        let (status, body) = call(&app, &for_a, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_error(&body, "not_found");
    }
    let (status, _) = call(&app, &for_a, Method::POST, "/v1/orgs/org-b/workspaces", ws).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, orgs) = call(&app, &for_a, Method::GET, "/v1/orgs", None).await;
    let slugs: Vec<&str> = orgs
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|o| o["slug"].as_str())
        .collect();
    assert_eq!(slugs, ["org-a"]);
    let (status, _) = call(&app, &for_a, Method::GET, "/v1/admin/keys", None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an org login is never a global admin"
    );

    // A token of B's IdP tenant acts on B, not on A; a tenant nobody configured is nobody.
    let for_b = key.sign(&idp.claims("tenant-b", &["admins"]));
    let (status, _) = call(&app, &for_b, Method::GET, "/v1/orgs/org-b/workspaces", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, &for_b, Method::GET, "/v1/orgs/org-a/workspaces", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let stranger = key.sign(&idp.claims("tenant-c", &["admins"]));
    let (status, body) = call(&app, &stranger, Method::GET, "/v1/orgs/org-a", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthenticated");

    // Deleting an org deletes its configuration: its IdP's tokens are nobody's.
    app.expect(Method::DELETE, "/v1/orgs/org-b", None, StatusCode::OK)
        .await;
    let (status, _) = call(&app, &for_b, Method::GET, "/v1/orgs/org-a", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn bad_identity_tokens_are_refused_with_one_answer(backend: Backend) {
    let app = spawn(backend).await;
    let key = IdpKey::generate(Algorithm::EdDSA);
    let idp = Idp::start(&[&key]).await;
    configure(&app, "org-a", &idp, "tenant-a", &["EdDSA"]).await;
    let good = idp.claims("tenant-a", &["admins"]);
    let (status, _) = call(&app, &key.sign(&good), Method::GET, "/v1/orgs/org-a", None).await;
    assert_eq!(status, StatusCode::OK, "the untampered token is accepted");

    let with = |field: &str, value: Value| {
        let mut claims = good.clone();
        claims[field] = value;
        claims
    };
    let without = |field: &str| {
        let mut claims = good.clone();
        claims.as_object_mut().expect("object").remove(field);
        claims
    };
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &good, &EncodingKey::from_secret(&key.public_bytes))
            .expect("HS256")
    };
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": key.kid})),
        b64(&good)
    );
    // Another key claiming the published kid: the signature does not verify.
    let impostor = IdpKey::generate(Algorithm::EdDSA).sign_as(&key.kid, &good);
    let tampered = {
        let genuine: Vec<String> = key.sign(&good).split('.').map(str::to_owned).collect();
        let elevated = with("groups", json!(["admins", "root"]));
        format!("{}.{}.{}", genuine[0], b64(&elevated), genuine[2])
    };
    let now = now();
    let cases = [
        ("expired", key.sign(&with("exp", json!(now - 120)))),
        ("not yet valid", key.sign(&with("nbf", json!(now + 600)))),
        (
            "wrong audience",
            key.sign(&with("aud", json!("someone-else"))),
        ),
        (
            "wrong issuer",
            key.sign(&with("iss", json!("https://evil.example"))),
        ),
        (
            "issuer with a trailing slash",
            key.sign(&with("iss", json!(format!("{}/", idp.issuer)))),
        ),
        ("no exp", key.sign(&without("exp"))),
        ("no sub", key.sign(&without("sub"))),
        (
            "string exp",
            key.sign(&with("exp", json!((now + 300).to_string()))),
        ),
        ("alg none", alg_none),
        ("HS256 keyed with the public key", hs256),
        ("signature of another key", impostor),
        ("tampered claims", tampered),
        ("garbage", "a.b.c".to_owned()),
    ];
    for (case, token) in cases {
        let (status, body) = call(&app, &token, Method::GET, "/v1/orgs/org-a", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        assert_eq!(
            body,
            json!({"error": {"code": "unauthenticated", "message": "missing or invalid API token"}}),
            "{case}: one answer for every bad token"
        );
    }
}

async fn each_org_pins_its_algorithms(backend: Backend) {
    let app = spawn(backend).await;
    let (ed, es, rs) = (
        IdpKey::generate(Algorithm::EdDSA),
        IdpKey::generate(Algorithm::ES256),
        IdpKey::generate(Algorithm::RS256),
    );
    let idp = Idp::start(&[&ed, &es, &rs]).await;
    configure(&app, "org-rsa", &idp, "tenant-rsa", &["RS256"]).await;
    configure(&app, "org-ec", &idp, "tenant-ec", &["ES256", "EdDSA"]).await;
    let claims_rsa = idp.claims("tenant-rsa", &["readers"]);
    let claims_ec = idp.claims("tenant-ec", &["readers"]);
    for (org, token, expected) in [
        ("org-rsa", rs.sign(&claims_rsa), StatusCode::OK),
        ("org-rsa", es.sign(&claims_rsa), StatusCode::UNAUTHORIZED),
        ("org-rsa", ed.sign(&claims_rsa), StatusCode::UNAUTHORIZED),
        ("org-ec", es.sign(&claims_ec), StatusCode::OK),
        ("org-ec", ed.sign(&claims_ec), StatusCode::OK),
        ("org-ec", rs.sign(&claims_ec), StatusCode::UNAUTHORIZED),
    ] {
        let (status, body) =
            call(&app, &token, Method::GET, &format!("/v1/orgs/{org}"), None).await;
        assert_eq!(status, expected, "{org}: {body}");
    }
}

async fn a_key_rotation_at_the_idp_is_picked_up_without_a_restart(backend: Backend) {
    let app = spawn(backend).await;
    let old = IdpKey::generate(Algorithm::ES256);
    let idp = Idp::start(&[&old]).await;
    configure(&app, "org-a", &idp, "tenant-a", &["ES256"]).await;
    let claims = idp.claims("tenant-a", &["readers"]);
    let (status, _) = call(
        &app,
        &old.sign(&claims),
        Method::GET,
        "/v1/orgs/org-a",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &app,
        &old.sign(&claims),
        Method::GET,
        "/v1/orgs/org-a",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(idp.jwks_fetches(), 1, "the key set is cached");

    let new = IdpKey::generate(Algorithm::ES256);
    idp.publish(&[&new]);
    tokio::time::sleep(REFETCH + Duration::from_millis(100)).await;
    let (status, body) = call(
        &app,
        &new.sign(&claims),
        Method::GET,
        "/v1/orgs/org-a",
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the new key is fetched on its first use: {body}"
    );
    assert_eq!(idp.jwks_fetches(), 2);

    // A stampede of unknown key ids right after a fetch does not reach the IdP.
    let tokens: Vec<String> = (0..20)
        .map(|_| IdpKey::generate(Algorithm::ES256).sign(&claims))
        .collect();
    let answers = futures_join(&app, &tokens).await;
    assert!(
        answers.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{answers:?}"
    );
    assert!(
        idp.jwks_fetches() <= 3,
        "fetched {} times",
        idp.jwks_fetches()
    );
    // The retired key is gone from the refreshed set.
    let (status, _) = call(
        &app,
        &old.sign(&claims),
        Method::GET,
        "/v1/orgs/org-a",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Sends every token at once; returns the statuses.
async fn futures_join(app: &TestApp, tokens: &[String]) -> Vec<StatusCode> {
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens {
        let request = app
            .client
            .get(format!("{}/v1/orgs/org-a", app.address))
            .bearer_auth(token);
        tasks.spawn(async move { request.send().await.expect("request sent").status() });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.expect("task"));
    }
    statuses
}

async fn the_role_claim_decides_what_a_login_may_do(backend: Backend) {
    let app = spawn(backend).await;
    let key = IdpKey::generate(Algorithm::EdDSA);
    let idp = Idp::start(&[&key]).await;
    configure(&app, "org-a", &idp, "tenant-a", &["EdDSA"]).await;
    app.expect(
        Method::POST,
        "/v1/orgs/org-a/workspaces",
        Some(json!({"slug": "main"})),
        StatusCode::CREATED,
    )
    .await;
    app.expect(
        Method::POST,
        "/v1/orgs/org-a/workspaces/main/environments",
        Some(json!({"slug": "prod"})),
        StatusCode::CREATED,
    )
    .await;
    let as_role = |groups: &[&str]| key.sign(&idp.claims("tenant-a", groups));
    let gateways = "/v1/orgs/org-a/workspaces/main/environments/prod/gateways";
    let new_ws = Some(json!({"slug": "other"}));

    let viewer = as_role(&["readers", "unmapped"]);
    let (status, _) = call(&app, &viewer, Method::GET, gateways, None).await;
    assert_eq!(status, StatusCode::OK, "a viewer reads");
    let (status, body) = call(
        &app,
        &viewer,
        Method::POST,
        gateways,
        Some(json!({"name": "gw"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a viewer cannot register gateways: {body}"
    );
    let (status, _) = call(
        &app,
        &viewer,
        Method::POST,
        "/v1/orgs/org-a/workspaces",
        new_ws.clone(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a viewer cannot create workspaces"
    );

    let operator = as_role(&["ops"]);
    let (status, body) = call(
        &app,
        &operator,
        Method::POST,
        gateways,
        Some(json!({"name": "gw"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "an operator registers gateways: {body}"
    );
    let (status, _) = call(
        &app,
        &operator,
        Method::POST,
        "/v1/orgs/org-a/workspaces",
        new_ws.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&app, &operator, Method::GET, "/v1/orgs/org-a/oidc", None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only admins see the identity configuration"
    );

    let admin = as_role(&["readers", "admins"]);
    let (status, _) = call(
        &app,
        &admin,
        Method::POST,
        "/v1/orgs/org-a/workspaces",
        new_ws,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "the highest mapped group wins");

    let (status, body) = call(
        &app,
        &as_role(&["unmapped"]),
        Method::GET,
        "/v1/orgs/org-a",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, "forbidden");
}

async fn the_configuration_is_checked_discovered_and_for_admins_only(backend: Backend) {
    let app = spawn(backend).await;
    let key = IdpKey::generate(Algorithm::RS256);
    let idp = Idp::start(&[&key]).await;
    app.create_org("org-a").await;
    let path = "/v1/orgs/org-a/oidc";
    let (status, _) = app.send(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Without jwks_uri it is discovered; without algorithms RS256 is pinned; without
    // tenant_value the org's slug is expected.
    let body = json!({
        "issuer": idp.issuer, "audience": AUDIENCE, "tenant_claim": "org_id",
        "role_claim": "groups", "role_map": {"admins": "admin"},
    });
    let saved = app
        .expect(Method::PUT, path, Some(body.clone()), StatusCode::OK)
        .await;
    assert_eq!(saved["jwks_uri"], json!(idp.jwks_uri()));
    assert_eq!(saved["algorithms"], json!(["RS256"]));
    assert_eq!(saved["tenant_value"], json!("org-a"));
    let shown = app.expect(Method::GET, path, None, StatusCode::OK).await;
    assert_eq!(shown["issuer"], json!(idp.issuer));
    assert_eq!(shown["role_map"], json!({"admins": "admin"}));
    let login = key.sign(&idp.claims("org-a", &["admins"]));
    let (status, _) = call(&app, &login, Method::GET, "/v1/orgs/org-a", None).await;
    assert_eq!(status, StatusCode::OK);
    // An admin login may read and change the configuration.
    let (status, _) = call(&app, &login, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK);

    let mut bad = Vec::new();
    for (field, value) in [
        ("issuer", json!("http://idp.example")),
        ("jwks_uri", json!("ftp://127.0.0.1/jwks")),
        ("algorithms", json!(["HS256"])),
        ("algorithms", json!([])),
        ("role_map", json!({"x": "root"})),
        ("tenant_claim", json!("")),
    ] {
        let mut body = body.clone();
        body[field] = value.clone();
        let (status, answer) = app.send(Method::PUT, path, Some(body)).await;
        if status != StatusCode::BAD_REQUEST {
            bad.push(format!("{field}={value}: {status} {answer}"));
        }
    }
    assert!(bad.is_empty(), "accepted: {bad:?}");

    // An IdP whose keys cannot be fetched: 503, not a panic nor a 401.
    let unreachable = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        format!("http://127.0.0.1:{port}/jwks")
    };
    let mut moved = body.clone();
    moved["jwks_uri"] = json!(unreachable);
    app.expect(Method::PUT, path, Some(moved), StatusCode::OK)
        .await;
    let (status, answer) = call(&app, &login, Method::GET, "/v1/orgs/org-a", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_error(&answer, "unavailable");

    app.expect(Method::DELETE, path, None, StatusCode::OK).await;
    let (status, _) = call(&app, &login, Method::GET, "/v1/orgs/org-a", None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no configuration, no login"
    );
    let (status, _) = app.send(Method::DELETE, path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// RFC 7515 §4.1.11: a `crit` the verifier does not understand must be refused, and this
/// verifier understands none (an empty list is not allowed either).
async fn a_token_with_critical_header_parameters_is_refused(backend: Backend) {
    let app = spawn(backend).await;
    let key = IdpKey::generate(Algorithm::EdDSA);
    let idp = Idp::start(&[&key]).await;
    configure(&app, "org-a", &idp, "tenant-a", &["EdDSA"]).await;
    let claims = idp.claims("tenant-a", &["admins"]);
    let (status, _) = call(
        &app,
        &key.sign(&claims),
        Method::GET,
        "/v1/orgs/org-a",
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same token without crit is accepted"
    );

    for crit in [vec!["x-unknown"], vec!["exp"], vec![]] {
        let token = key.sign_with(
            |header| {
                header.crit = Some(crit.iter().map(|c| (*c).to_owned()).collect());
                header.extras.insert("x-unknown", true);
            },
            &claims,
        );
        let (status, body) = call(&app, &token, Method::GET, "/v1/orgs/org-a", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "crit {crit:?}: {body}");
        assert_error(&body, "unauthenticated");
    }
}
