//! tenants.yaml: applied at start and on every change of the file (hot reload), and
//! through `POST /v1/admin/tenants/apply`; prune, dry run, and invalid documents.

use std::path::Path;
use std::time::Duration;

use mcpg_auth::Application;
use mcpg_auth::TenantsFile;
use mcpg_auth::{Credential, CredentialKind};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, assert_error, on_both_backends, spawn_app, spawn_app_with, split,
    test_settings,
};

/// A fresh API key: the token and the `sha256:` hash the file carries.
fn new_key() -> (String, String) {
    let key = Credential::generate(CredentialKind::ApiToken).expect("random");
    (
        key.expose().to_owned(),
        format!("sha256:{}", key.hash().to_hex()),
    )
}

fn team_a(hash: &str, workspaces: &str) -> String {
    let workspaces = if workspaces.is_empty() {
        " []\n".to_owned()
    } else {
        format!("\n{workspaces}")
    };
    format!(
        "tenants:\n\
         - id: team-a\n\
         \x20 display_name: Team Alpha\n\
         \x20 tier: team\n\
         \x20 entitlements:\n\
         \x20   add: [\"plugin:policy.cedar\"]\n\
         \x20 quotas:\n\
         \x20   max_workspaces: 5\n\
         \x20   max_gateways: 3\n\
         \x20 workspaces:{workspaces}\
         \x20 api_keys:\n\
         \x20 - name: production\n\
         \x20   key_hash: \"{hash}\"\n"
    )
}

const PLATFORM: &str = "  - name: platform\n    environments: [dev, prod]\n";

async fn get_as(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent");
    split(response).await
}

async fn apply(app: &TestApp, doc: &str, query: &str) -> (StatusCode, Value) {
    let response = app
        .admin(Method::POST, &format!("/v1/admin/tenants/apply{query}"))
        .header("content-type", "application/yaml")
        .body(doc.to_owned())
        .send()
        .await
        .expect("request sent");
    split(response).await
}

fn slugs(body: &Value) -> Vec<String> {
    body.as_array()
        .expect("a list")
        .iter()
        .map(|item| item["slug"].as_str().expect("slug").to_owned())
        .collect()
}

fn actions(plan: &Value) -> Vec<(String, String, String)> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["action"].as_str().expect("action").to_owned(),
                c["kind"].as_str().expect("kind").to_owned(),
                c["path"].as_str().expect("path").to_owned(),
            )
        })
        .collect()
}

fn has(plan: &Value, action: &str, kind: &str, path: &str) -> bool {
    actions(plan)
        .iter()
        .any(|(a, k, p)| a == action && k == kind && p == path)
}

/// Polls `check` every 100 ms until it holds, for at most 15 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

fn watch(path: &Path) -> TenantsFile {
    TenantsFile {
        path: path.to_owned(),
        prune: true,
        interval: Duration::from_millis(100),
    }
}

async fn a_tenants_file_is_applied_at_start_and_reloaded_when_it_changes(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tenants.yaml");
    let (key, hash) = new_key();
    std::fs::write(&file, team_a(&hash, PLATFORM)).expect("write");
    let app = spawn_app_with(backend, |s| s.tenants = Some(watch(&file))).await;

    // Everything the file declares exists, and its key authenticates as the org's admin.
    let (status, org) = get_as(&app, &key, "/v1/orgs/team-a").await;
    assert_eq!(status, StatusCode::OK, "{org}");
    assert_eq!(org["display_name"], "Team Alpha");
    let (_, workspaces) = get_as(&app, &key, "/v1/orgs/team-a/workspaces").await;
    assert_eq!(slugs(&workspaces), ["platform"]);
    let (_, envs) = get_as(
        &app,
        &key,
        "/v1/orgs/team-a/workspaces/platform/environments",
    )
    .await;
    assert_eq!(slugs(&envs), ["dev", "prod"]);
    let (_, license) = get_as(&app, &key, "/v1/orgs/team-a/license").await;
    assert_eq!(license["tier"], "team");
    assert_eq!(license["limits"]["max_gateways"], 3);
    assert_eq!(license["entitlements_add"], json!(["plugin:policy.cedar"]));
    let (status, _) = get_as(&app, &key, "/v1/admin/keys").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a tenant key is not a global admin"
    );
    let status_view = app
        .expect(
            Method::GET,
            "/v1/admin/tenants/status",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(status_view["generation"], 1);

    // An edit is applied while the server runs.
    let more = format!("{PLATFORM}  - name: data\n    environments: [staging]\n");
    std::fs::write(&file, team_a(&hash, &more)).expect("write");
    eventually("the new workspace exists", || async {
        let (_, workspaces) = get_as(&app, &key, "/v1/orgs/team-a/workspaces").await;
        slugs(&workspaces) == ["data", "platform"]
    })
    .await;

    // An invalid edit is refused with its line; the previous state stays.
    let broken = team_a(&hash, &more).replace("  tier: team\n", "  tier: team\n  colour: red\n");
    std::fs::write(&file, broken).expect("write");
    eventually("the reloader reports the error", || async {
        let view = app
            .expect(
                Method::GET,
                "/v1/admin/tenants/status",
                None,
                StatusCode::OK,
            )
            .await;
        view["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("line 5") && e.contains("colour"))
    })
    .await;
    let view = app
        .expect(
            Method::GET,
            "/v1/admin/tenants/status",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        view["generation"], 2,
        "the invalid file is not a generation"
    );
    let (status, workspaces) = get_as(&app, &key, "/v1/orgs/team-a/workspaces").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slugs(&workspaces), ["data", "platform"]);

    // Removing the key from the file revokes it; removing a workspace prunes it (prune on).
    let (new_token, new_hash) = new_key();
    std::fs::write(&file, team_a(&new_hash, PLATFORM)).expect("write");
    eventually("the old key stops working", || async {
        get_as(&app, &key, "/v1/orgs/team-a").await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    let (status, workspaces) = get_as(&app, &new_token, "/v1/orgs/team-a/workspaces").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slugs(&workspaces), ["platform"]);
}

async fn prune_deletes_only_what_the_file_manages_and_dry_runs_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, hash_a) = new_key();
    let (_, hash_b) = new_key();
    let team_b = format!(
        "- id: team-b\n  display_name: Team Beta\n  tier: free\n  workspaces:\n  - name: main\n  api_keys:\n  - key_hash: \"{hash_b}\"\n"
    );
    let both = format!("{}{team_b}", team_a(&hash_a, PLATFORM));
    let (status, plan) = apply(&app, &both, "").await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert!(has(&plan, "create", "org", "team-b"), "{plan}");
    assert!(
        has(&plan, "create", "environment", "team-a/platform/prod"),
        "{plan}"
    );
    // Applying the same document again changes nothing.
    let (_, again) = apply(&app, &both, "").await;
    assert_eq!(again["changes"], json!([]), "{again}");
    assert!(again["unchanged"].as_u64().unwrap_or(0) > 5, "{again}");

    // An org made through the API is never pruned; an API workspace keeps a managed org.
    app.create_org("api-made").await;
    let only_a = team_a(&hash_a, PLATFORM);
    let (_, plan) = apply(&app, &only_a, "").await;
    assert!(has(&plan, "keep", "org", "team-b"), "without prune: {plan}");
    app.expect(Method::GET, "/v1/orgs/team-b", None, StatusCode::OK)
        .await;

    let (_, plan) = apply(&app, &only_a, "?prune=true&dry_run=true").await;
    assert!(has(&plan, "delete", "org", "team-b"), "{plan}");
    assert_eq!(plan["dry_run"], true);
    app.expect(Method::GET, "/v1/orgs/team-b", None, StatusCode::OK)
        .await;

    let (status, plan) = apply(&app, &only_a, "?prune=true").await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert!(has(&plan, "delete", "org", "team-b"), "{plan}");
    assert!(
        !actions(&plan).iter().any(|(_, _, p)| p == "api-made"),
        "{plan}"
    );
    let (status, _) = app.send(Method::GET, "/v1/orgs/team-b", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.expect(Method::GET, "/v1/orgs/api-made", None, StatusCode::OK)
        .await;

    // A workspace made through the API in a managed org survives a prune.
    app.expect(
        Method::POST,
        "/v1/orgs/team-a/workspaces",
        Some(json!({"slug": "by-hand"})),
        StatusCode::CREATED,
    )
    .await;
    let (_, plan) = apply(&app, &team_a(&hash_a, ""), "?prune=true").await;
    assert!(
        has(&plan, "delete", "workspace", "team-a/platform"),
        "{plan}"
    );
    let workspaces = app
        .expect(
            Method::GET,
            "/v1/orgs/team-a/workspaces",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(slugs(&workspaces), ["by-hand"]);
}

async fn invalid_or_inapplicable_documents_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, hash) = new_key();
    let bad = team_a(&hash, "  - name: Not A Slug\n");
    let (status, body) = apply(&app, &bad, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_request");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("line 11") && message.contains("invalid slug"),
        "{message}"
    );

    let response = app
        .admin(Method::POST, "/v1/admin/tenants/apply")
        .body(team_a(&hash, PLATFORM))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A quota that the API-made objects already exceed: nothing is applied.
    app.create_org("team-a").await;
    for ws in ["w1", "w2", "w3", "w4", "w5"] {
        app.expect(
            Method::POST,
            "/v1/orgs/team-a/workspaces",
            Some(json!({"slug": ws})),
            StatusCode::CREATED,
        )
        .await;
    }
    let (status, body) = apply(&app, &team_a(&hash, PLATFORM), "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_workspaces"))
    );
    let (status, _) = app.send(Method::GET, "/v1/orgs/team-a/license", None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the license was not set either"
    );

    // Only a global admin may apply.
    let org_token = app
        .expect(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"name": "ops", "org": "team-a"})),
            StatusCode::CREATED,
        )
        .await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let response = app
        .client
        .post(format!("{}/v1/admin/tenants/apply", app.address))
        .bearer_auth(&org_token)
        .header("content-type", "application/yaml")
        .body("tenants: []\n")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

on_both_backends!(
    reconciliations_and_key_revocations_are_audited_in_the_orgs_chain,
    a_tenants_file_is_applied_at_start_and_reloaded_when_it_changes,
    prune_deletes_only_what_the_file_manages_and_dry_runs_change_nothing,
    invalid_or_inapplicable_documents_change_nothing,
);

#[tokio::test]
async fn an_invalid_tenants_file_stops_the_start_naming_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tenants.yaml");
    std::fs::write(
        &file,
        "tenants:\n- id: a\n  display_name: A\n  tier: platinum\n",
    )
    .expect("write");
    let mut settings = test_settings(dir.path());
    settings.tenants = Some(watch(&file));
    let error = match Application::build(settings).await {
        Ok(_) => panic!("an invalid tenants file must stop the start"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("line 4") && error.contains("platinum"),
        "{error}"
    );
}

async fn reconciliations_and_key_revocations_are_audited_in_the_orgs_chain(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, hash) = new_key();
    let (status, plan) = apply(&app, &team_a(&hash, PLATFORM), "").await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let entries = crate::audit::entries(&app, "team-a", "&action=tenants.apply").await;
    assert_eq!(entries.len(), 1, "one entry for the org's changes");
    let entry = &entries[0];
    assert!(
        entry.entry.actor.starts_with("admin:"),
        "{}",
        entry.entry.actor
    );
    let details: Value = serde_json::from_str(&entry.details).expect("details");
    let paths: Vec<&str> = details["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["path"].as_str())
        .collect();
    assert!(paths.contains(&"team-a/platform/prod"), "{paths:?}");
    // Applying the same document again changes nothing and records nothing.
    apply(&app, &team_a(&hash, PLATFORM), "").await;
    let again = crate::audit::entries(&app, "team-a", "&action=tenants.apply").await;
    assert_eq!(again.len(), 1);

    // An org key revoked through the admin API lands in the org's chain.
    let key = app
        .expect(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"name": "automation", "org": "team-a"})),
            StatusCode::CREATED,
        )
        .await;
    let id = key["id"].as_str().expect("id");
    app.expect(
        Method::DELETE,
        &format!("/v1/admin/tokens/{id}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let revoked = crate::audit::entries(&app, "team-a", "&action=api_token.revoke").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].entry.target, format!("token:{id}"));
    assert_eq!(crate::audit::verify(&app, "team-a").await["ok"], true);
}
