//! The federation contract: tokens, claims, explicit refusals, JWKS and metadata.

use mcpg_license_core::clock::parse_rfc3339;
use mcpg_license_core::{AUDIENCE, LicenseClaims, Tier, Validity};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, assert_error, now, on_both_backends, spawn_app, spawn_app_with,
};

on_both_backends!(
    token_verifies_against_the_served_jwks_and_chains_to_the_dev_root,
    token_claims_are_exact,
    token_times_are_capped_by_a_license_ending_sooner,
    revoked_license_is_refused_with_license_revoked,
    suspended_org_is_refused_with_org_suspended_until_resumed,
    revoked_gateway_credential_is_refused_with_401,
);

fn verified_claims(app: &TestApp, body: &Value) -> LicenseClaims {
    let issuer = app
        .trust_store()
        .verify_certificate(
            body["issuer_certificate"].as_str().expect("certificate"),
            now(),
            Validity::Strict,
        )
        .expect("certificate chains to the dev root");
    issuer
        .verify_jwt(
            body["token"].as_str().expect("token"),
            now(),
            Validity::Strict,
        )
        .expect("token verifies under its certificate")
}

async fn token_verifies_against_the_served_jwks_and_chains_to_the_dev_root(backend: Backend) {
    let app = spawn_app(backend).await;
    let credential = app.gateway("acme").await;
    let body = app.token_ok(&credential).await;
    assert_eq!(body["token_type"], "mcpg-ent+jwt");
    let claims = verified_claims(&app, &body);
    let from_jwks = app
        .key_set()
        .await
        .verify_jwt(
            body["token"].as_str().expect("token"),
            "http://127.0.0.1:8421",
            now(),
        )
        .expect("token verifies against the JWKS");
    assert_eq!(from_jwks, claims);
    let jwks = app.jwks().await;
    let entry = jwks
        .keys
        .iter()
        .find(|k| k.kid.as_deref() == body["kid"].as_str())
        .expect("signing key published");
    assert_eq!(
        entry.mcpg_cert.as_deref(),
        body["issuer_certificate"].as_str()
    );
    let header =
        mcpg_license_core::jwt::parse_jwt(body["token"].as_str().expect("token")).expect("parses");
    assert_eq!(Some(header.kid()), body["kid"].as_str());
}

async fn token_claims_are_exact(backend: Backend) {
    let app = spawn_app(backend).await;
    let credential = app.gateway("acme").await;
    let license = app
        .expect(Method::GET, "/v1/orgs/acme/license", None, StatusCode::OK)
        .await;
    let gateways = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/workspaces/main/environments/prod/gateways",
            None,
            StatusCode::OK,
        )
        .await;
    let body = app.token_ok(&credential).await;
    let claims = verified_claims(&app, &body);
    assert_eq!(claims.iss, "http://127.0.0.1:8421");
    assert_eq!(claims.aud, AUDIENCE);
    assert_eq!(claims.sub, gateways[0]["id"].as_str().expect("gateway id"));
    assert!((claims.iat - now()).abs() <= 5);
    assert_eq!(claims.nbf, claims.iat - 5);
    assert_eq!(claims.exp, claims.iat + 86_400);
    assert_eq!(claims.rfa, Some(claims.iat + 8 * 3_600));
    assert_eq!(claims.grc, Some(claims.exp + 7 * 86_400));
    assert_eq!(claims.org, "acme");
    assert_eq!(claims.ws.as_deref(), Some("main"));
    assert_eq!(claims.env.as_deref(), Some("prod"));
    assert_eq!(claims.tier, Tier::Team);
    assert_eq!(claims.lic, license["id"].as_str().expect("license id"));
    assert_eq!(claims.lim.max_gateways, Some(10));
    assert!(
        claims.ent.contains("plugin:policy.cedar"),
        "added entitlement present"
    );
    assert!(
        claims.ent.contains("feature:workspace.rbac"),
        "Team default present"
    );
    assert!(
        !claims.ent.contains("feature:environment.rbac"),
        "Enterprise-only entitlement absent"
    );
    let listed: Vec<&str> = claims.ent.iter().map(|e| e.as_str()).collect();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    assert_eq!(listed, sorted, "entitlements are sorted");
    assert_eq!(
        parse_rfc3339(body["expires_at"].as_str().expect("expires_at")),
        Some(claims.exp)
    );
    assert_eq!(
        parse_rfc3339(body["refresh_after"].as_str().expect("refresh_after")),
        claims.rfa
    );
    assert_eq!(
        parse_rfc3339(body["grace_until"].as_str().expect("grace_until")),
        claims.grc
    );
    let second = verified_claims(&app, &app.token_ok(&credential).await);
    assert_ne!(second.jti, claims.jti, "every token has its own jti");
}

async fn token_times_are_capped_by_a_license_ending_sooner(backend: Backend) {
    let app = spawn_app(backend).await;
    let credential = app.gateway("acme").await;
    let in_three_hours = now() + 3 * 3_600;
    app.set_license("acme", json!({"tier": "team", "valid_until": mcpg_license_core::clock::to_rfc3339(in_three_hours)})).await;
    let claims = verified_claims(&app, &app.token_ok(&credential).await);
    assert_eq!(claims.exp, in_three_hours);
    assert_eq!(claims.rfa, Some(in_three_hours));
    assert_eq!(claims.grc, Some(in_three_hours));

    let in_three_days = now() + 3 * 86_400;
    app.set_license(
        "acme",
        json!({"tier": "team", "valid_until": mcpg_license_core::clock::to_rfc3339(in_three_days)}),
    )
    .await;
    let claims = verified_claims(&app, &app.token_ok(&credential).await);
    assert_eq!(claims.exp, claims.iat + 86_400);
    assert_eq!(claims.rfa, Some(claims.iat + 8 * 3_600));
    assert_eq!(
        claims.grc,
        Some(in_three_days),
        "grace ends with the license"
    );
}

async fn revoked_license_is_refused_with_license_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let credential = app.gateway("acme").await;
    app.token_ok(&credential).await;
    let license = app
        .expect(
            Method::POST,
            "/v1/orgs/acme/license/revoke",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(license["status"], "revoked");
    let (status, body) = app.token(&credential).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "license_revoked");
}

async fn suspended_org_is_refused_with_org_suspended_until_resumed(backend: Backend) {
    let app = spawn_app(backend).await;
    let credential = app.gateway("acme").await;
    app.expect(
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"status": "suspended"})),
        StatusCode::OK,
    )
    .await;
    let (status, body) = app.token(&credential).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "org_suspended");
    app.expect(
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"status": "active"})),
        StatusCode::OK,
    )
    .await;
    app.token_ok(&credential).await;
}

async fn revoked_gateway_credential_is_refused_with_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let credential = app.gateway("acme").await;
    let (other, other_id) = app.register_gateway("acme", "gw-2").await;
    app.token_ok(&other).await;
    let revoked = app
        .expect(
            Method::DELETE,
            &format!("/v1/orgs/acme/workspaces/main/environments/prod/gateways/{other_id}"),
            None,
            StatusCode::OK,
        )
        .await;
    assert!(revoked["revoked_at"].is_string());
    let (status, body) = app.token(&other).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "invalid_credential");
    app.token_ok(&credential).await;
}

#[tokio::test]
async fn unknown_and_malformed_credentials_are_refused_with_401() {
    let app = spawn_app(Backend::Sqlite).await;
    let known = app.gateway("acme").await;
    let unknown = mcpg_auth::Credential::generate(mcpg_auth::CredentialKind::Gateway)
        .expect("random")
        .expose()
        .to_owned();
    let mut typo = known.clone();
    typo.pop();
    typo.push(if known.ends_with('a') { 'b' } else { 'a' });
    let pat = app.admin_token.clone();
    for credential in [
        unknown.as_str(),
        typo.as_str(),
        "mcpg_gw_",
        "garbage",
        pat.as_str(),
        &"a".repeat(5000),
    ] {
        let (status, body) = app.token(credential).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{credential:.20}");
        assert_error(&body, "invalid_credential");
    }
    let response = app
        .client
        .post(format!("{}/v1/federation/token", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn orgs_without_license_or_past_their_trial_are_refused_explicitly() {
    let app = spawn_app(Backend::Sqlite).await;
    let credential = app.gateway("acme").await;
    app.expect(
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({"status": "trial", "trial_expires_at": "2020-01-01T00:00:00Z"})),
        StatusCode::OK,
    )
    .await;
    let (status, body) = app.token(&credential).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "trial_expired");

    app.create_org("bare").await;
    app.expect(
        Method::POST,
        "/v1/orgs/bare/workspaces",
        Some(json!({"slug": "main"})),
        StatusCode::CREATED,
    )
    .await;
    app.expect(
        Method::POST,
        "/v1/orgs/bare/workspaces/main/environments",
        Some(json!({"slug": "prod"})),
        StatusCode::CREATED,
    )
    .await;
    let (bare, _) = app.register_gateway("bare", "gw").await;
    let (status, body) = app.token(&bare).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "no_license");
}

/// The federation metadata document.
async fn metadata(app: &TestApp) -> Value {
    app.client
        .get(format!("{}/.well-known/mcpg-federation", app.address))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn without_an_issuer_the_bound_address_is_the_issuer() {
    let app = spawn_app_with(Backend::Sqlite, |settings| settings.issuer = None).await;
    assert_eq!(
        app.issuer, app.address,
        "http:// and the port 0 actually bound"
    );
    let meta = metadata(&app).await;
    assert_eq!(meta["issuer"], app.address.as_str());
    // The URLs it names are the service's own: following them works.
    let jwks_uri = meta["jwks_uri"].as_str().expect("jwks_uri");
    assert_eq!(jwks_uri, format!("{}/.well-known/jwks.json", app.address));
    let jwks = app.client.get(jwks_uri).send().await.expect("jwks");
    assert_eq!(jwks.status(), StatusCode::OK);
    let token_endpoint = meta["token_endpoint"].as_str().expect("token_endpoint");
    assert_eq!(
        token_endpoint,
        format!("{}/v1/federation/token", app.address)
    );
    let credential = app.gateway("acme").await;
    let body = app.token_ok(&credential).await;
    let claims = app
        .key_set()
        .await
        .verify_jwt(body["token"].as_str().expect("token"), &app.address, now())
        .expect("the token's iss is the bound address");
    assert_eq!(claims.iss, app.address);
    let certificate = app
        .trust_store()
        .verify_certificate(
            body["issuer_certificate"].as_str().expect("certificate"),
            now(),
            Validity::Strict,
        )
        .expect("chains to the dev root");
    assert_eq!(certificate.certificate().issuer, app.address);
}

#[tokio::test]
async fn metadata_and_jwks_follow_the_contract() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.address))
        .send()
        .await
        .expect("jwks");
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let jwks: Value = response.json().await.expect("json");
    let key = &jwks["keys"][0];
    for (field, value) in [
        ("kty", "OKP"),
        ("crv", "Ed25519"),
        ("alg", "EdDSA"),
        ("use", "sig"),
    ] {
        assert_eq!(key[field], value);
    }
    assert!(
        key["mcpg_cert"]
            .as_str()
            .expect("cert")
            .starts_with("v4.public.")
    );
    let meta = metadata(&app).await;
    assert_eq!(meta["issuer"], "http://127.0.0.1:8421");
    assert_eq!(
        meta["jwks_uri"],
        "http://127.0.0.1:8421/.well-known/jwks.json"
    );
    assert_eq!(
        meta["token_endpoint"],
        "http://127.0.0.1:8421/v1/federation/token"
    );
    assert_eq!(meta["token_lifetime_seconds"], 86_400);
    assert_eq!(meta["refresh_interval_seconds"], 28_800);
    assert_eq!(meta["grace_seconds"], 604_800);
    assert_eq!(meta["token_type"], "mcpg-ent+jwt");
    let root = app
        .trust_store()
        .roots()
        .next()
        .expect("root")
        .kid()
        .to_string();
    assert_eq!(meta["root_kids"], json!([root]));
}
