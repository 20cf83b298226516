//! Plugin sets in `tenants.yaml`: a workspace's `plugins:` is planned, applied, left alone
//! when unchanged and removed when dropped (only if the file wrote it); unentitled plugins
//! and licenses that would strip a plugin set are refused.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, on_both_backends, spawn_app, split};

on_both_backends!(
    a_workspaces_plugins_are_applied_diffed_and_removed_when_dropped,
    tenants_files_cannot_name_unentitled_plugins_or_strip_plugin_sets,
);

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

fn document(tier: &str, plugins: &str) -> String {
    format!(
        "tenants:\n\
         - id: acme\n\
         \x20 display_name: Acme\n\
         \x20 tier: {tier}\n\
         \x20 workspaces:\n\
         \x20 - name: platform\n\
         \x20   environments: [prod]\n{plugins}"
    )
}

const CEDAR: &str = "    plugins:\n\
     \x20   - id: identity.oidc\n\
     \x20   - id: policy.cedar\n\
     \x20     config:\n\
     \x20       bundle: oci://policies.acme.com/platform-team:1.0\n";

fn plugin_set_changes(plan: &Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["kind"] == "plugin_set")
        .map(|c| {
            let action = c["action"].as_str().unwrap_or_default().to_owned();
            (action, c["path"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

async fn a_workspaces_plugins_are_applied_diffed_and_removed_when_dropped(backend: Backend) {
    let app = spawn_app(backend).await;
    let ws = "/v1/orgs/acme/workspaces/platform/plugin-set";
    let doc = document("enterprise", CEDAR);
    let (status, dry) = apply(&app, &doc, "?dry_run=true").await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    let create = vec![("create".to_owned(), "acme/platform".to_owned())];
    assert_eq!(plugin_set_changes(&dry), create);
    let (status, plan) = apply(&app, &doc, "").await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let set = app.expect(Method::GET, ws, None, StatusCode::OK).await;
    assert_eq!(
        set["plugins"][1]["config"]["bundle"],
        "oci://policies.acme.com/platform-team:1.0"
    );
    let (_, again) = apply(&app, &doc, "").await;
    assert!(plugin_set_changes(&again).is_empty(), "unchanged: {again}");

    // Dropped from the file: the set the file wrote goes.
    let (_, dropped) = apply(&app, &document("enterprise", ""), "").await;
    let delete = vec![("delete".to_owned(), "acme/platform".to_owned())];
    assert_eq!(plugin_set_changes(&dropped), delete);
    let gone = app
        .expect(Method::GET, ws, None, StatusCode::NOT_FOUND)
        .await;
    assert_error(&gone, "plugin_set_not_found");

    // A set written through the API is not the file's to remove, but the file takes it
    // over when it declares one.
    let api_set = json!({"plugins": [{"id": "identity.oidc"}]});
    app.expect(Method::PUT, ws, Some(api_set), StatusCode::OK)
        .await;
    let (_, kept) = apply(&app, &document("enterprise", ""), "").await;
    assert!(plugin_set_changes(&kept).is_empty(), "{kept}");
    app.expect(Method::GET, ws, None, StatusCode::OK).await;
    let (_, taken) = apply(&app, &doc, "").await;
    let update = vec![("update".to_owned(), "acme/platform".to_owned())];
    assert_eq!(plugin_set_changes(&taken), update);
    let shown = app.expect(Method::GET, ws, None, StatusCode::OK).await;
    assert_eq!(shown["digest"], set["digest"]);
}

async fn tenants_files_cannot_name_unentitled_plugins_or_strip_plugin_sets(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = apply(&app, &document("team", CEDAR), "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("workspace platform: plugins:"),
        "{message}"
    );
    assert!(
        message.contains("policy.cedar (needs plugin:policy.cedar)"),
        "{message}"
    );
    app.expect(Method::GET, "/v1/orgs/acme", None, StatusCode::NOT_FOUND)
        .await;

    let (status, body) = apply(&app, &document("enterprise", ""), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let env = "/v1/orgs/acme/workspaces/platform/environments/prod/plugin-set";
    let saml = json!({"plugins": [{"id": "identity.saml"}]});
    app.expect(Method::PUT, env, Some(saml), StatusCode::OK)
        .await;
    let (status, body) = apply(&app, &document("team", ""), "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("platform/prod: identity.saml (needs plugin:identity.saml)"),
        "{message}"
    );
    let license = app
        .expect(Method::GET, "/v1/orgs/acme/license", None, StatusCode::OK)
        .await;
    assert_eq!(license["tier"], "enterprise", "nothing was applied");
}
