//! Seed 001's `tenants.yaml` (issue 14 item 4): its example loads as written but for real
//! key hashes in place of its `sha256:abc123...` placeholders; `namespace` and
//! `catalog_file` are the org's gateway-side settings, `quotas.max_servers` and
//! `quotas.max_concurrent_requests` limits carried in gateway tokens; trials are declared
//! with `status: trial` and `trial_ends`.

use mcpg_auth::{Credential, CredentialKind};
use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::{LicenseClaims, Validity};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, now, on_both_backends, spawn_app, split};

on_both_backends!(
    seed_001s_example_applies_and_reaches_the_org_and_its_tokens,
    a_trial_declared_in_the_file_caps_tokens_at_its_end,
    trials_without_an_end_and_misspelled_fields_are_refused,
);

fn new_hash() -> String {
    let key = Credential::generate(CredentialKind::ApiToken).expect("random");
    format!("sha256:{}", key.hash().to_hex())
}

/// Seed 001's example, indented as YAML needs, with real key hashes.
fn seed_001_example() -> String {
    format!(
        r#"tenants:
  - id: team-a
    display_name: Team Alpha
    namespace: mcp-team-a
    catalog_file: catalogs/team-a.yaml
    api_keys:
      - key_hash: "{}"
        name: "production"
      - key_hash: "{}"
        name: "development"
    quotas:
      max_servers: 5
      max_concurrent_requests: 100
  - id: team-b
    display_name: Team Beta
    namespace: mcp-team-b
    catalog_file: catalogs/team-b.yaml
    api_keys:
      - key_hash: "{}"
    quotas:
      max_servers: 10
"#,
        new_hash(),
        new_hash(),
        new_hash()
    )
}

async fn apply(app: &TestApp, doc: &str) -> (StatusCode, Value) {
    let response = app
        .admin(Method::POST, "/v1/admin/tenants/apply")
        .header("content-type", "application/yaml")
        .body(doc.to_owned())
        .send()
        .await
        .expect("request sent");
    split(response).await
}

/// A workspace `main`, an environment `prod` and a gateway in it; the gateway's token.
async fn token_of(app: &TestApp, org: &str) -> Value {
    app.expect(
        Method::POST,
        &format!("/v1/orgs/{org}/workspaces"),
        Some(json!({"slug": "main"})),
        StatusCode::CREATED,
    )
    .await;
    app.expect(
        Method::POST,
        &format!("/v1/orgs/{org}/workspaces/main/environments"),
        Some(json!({"slug": "prod"})),
        StatusCode::CREATED,
    )
    .await;
    let (credential, _) = app.register_gateway(org, "gw-1").await;
    app.token_ok(&credential).await
}

fn verified(app: &TestApp, body: &Value) -> LicenseClaims {
    let at = now();
    app.trust_store()
        .verify_certificate(
            body["issuer_certificate"].as_str().expect("certificate"),
            at,
            Validity::Strict,
        )
        .expect("certificate valid")
        .verify_jwt(body["token"].as_str().expect("token"), at, Validity::Strict)
        .expect("token verifies")
}

async fn seed_001s_example_applies_and_reaches_the_org_and_its_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, plan) = apply(&app, &seed_001_example()).await;
    assert_eq!(status, StatusCode::OK, "{plan}");

    let org = app
        .expect(Method::GET, "/v1/orgs/team-a", None, StatusCode::OK)
        .await;
    assert_eq!(org["namespace"], "mcp-team-a");
    assert_eq!(org["catalog_file"], "catalogs/team-a.yaml");
    assert_eq!(org["status"], "active");
    let license = app
        .expect(Method::GET, "/v1/orgs/team-a/license", None, StatusCode::OK)
        .await;
    assert_eq!(license["tier"], "free", "no tier given: free");
    assert_eq!(
        license["limits"],
        json!({"max_servers": 5, "max_concurrent_requests": 100})
    );

    let claims = verified(&app, &token_of(&app, "team-a").await);
    assert_eq!(claims.lim.max_servers, Some(5));
    assert_eq!(claims.lim.max_concurrent_requests, Some(100));
    let claims = verified(&app, &token_of(&app, "team-b").await);
    assert_eq!(claims.lim.max_servers, Some(10));
    assert_eq!(
        claims.lim.max_concurrent_requests, None,
        "absent: unlimited"
    );

    // Applying it again changes nothing; leaving the settings out keeps them.
    let (status, plan) = apply(
        &app,
        &seed_001_example().replace("    namespace: mcp-team-a\n", ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let org = app
        .expect(Method::GET, "/v1/orgs/team-a", None, StatusCode::OK)
        .await;
    assert_eq!(org["namespace"], "mcp-team-a");
    // A changed setting is planned and stored.
    let moved = seed_001_example().replace("mcp-team-a", "mcp-team-a2");
    let (status, plan) = apply(&app, &moved).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert!(plan.to_string().contains("namespace"), "{plan}");
    let org = app
        .expect(Method::GET, "/v1/orgs/team-a", None, StatusCode::OK)
        .await;
    assert_eq!(org["namespace"], "mcp-team-a2");

    // The API sets them too: text sets, `null` clears, a non-namespace is refused.
    let org = app
        .expect(
            Method::PATCH,
            "/v1/orgs/team-b",
            Some(json!({"namespace": "tenant-b", "catalog_file": null})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(org["namespace"], "tenant-b");
    assert_eq!(org["catalog_file"], Value::Null);
    assert_eq!(org["display_name"], "Team Beta");
    let (status, body) = app
        .send(
            Method::PATCH,
            "/v1/orgs/team-b",
            Some(json!({"namespace": "Tenant_B"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "invalid_request");
}

async fn a_trial_declared_in_the_file_caps_tokens_at_its_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let end = now() + 3_600;
    let doc = format!(
        "tenants:\n- id: trialco\n  display_name: Trial Co\n  status: trial\n  \
         trial_ends: {}\n",
        to_rfc3339(end)
    );
    let (status, plan) = apply(&app, &doc).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let org = app
        .expect(Method::GET, "/v1/orgs/trialco", None, StatusCode::OK)
        .await;
    assert_eq!(org["status"], "trial");
    assert_eq!(org["trial_expires_at"], to_rfc3339(end));
    let claims = verified(&app, &token_of(&app, "trialco").await);
    assert_eq!(claims.exp, end, "the token ends with the trial");

    // Declaring it active ends the trial and clears its end.
    let active = "tenants:\n- id: trialco\n  display_name: Trial Co\n  status: active\n";
    let (status, plan) = apply(&app, active).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let org = app
        .expect(Method::GET, "/v1/orgs/trialco", None, StatusCode::OK)
        .await;
    assert_eq!(org["status"], "active");
    assert_eq!(org["trial_expires_at"], Value::Null);
}

async fn trials_without_an_end_and_misspelled_fields_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (
            "tenants:\n- id: a\n  display_name: A\n  status: trial\n".to_owned(),
            "status: trial needs trial_ends",
        ),
        (
            seed_001_example().replace("catalog_file:", "catalogue_file:"),
            "unknown field `catalogue_file`",
        ),
        (
            seed_001_example().replace("max_servers: 5", "max_server: 5"),
            "unknown field `max_server`",
        ),
    ];
    for (doc, needle) in cases {
        let (status, body) = apply(&app, &doc).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_error(&body, "invalid_request");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(needle), "{message}");
    }
    let (status, _) = app.send(Method::GET, "/v1/orgs/a", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was applied");
}
