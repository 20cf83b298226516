//! `deploy/examples/`: the `mcpg-auth` TOML files resolve as `serve --config` resolves
//! them (unknown keys and bad values are refused), and `tenants.yaml` applies — dry run,
//! then for real — on both backends, so the examples cannot drift from the service.

use std::path::{Path, PathBuf};

use mcpg_auth::{ServeArgs, Settings};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Backend, on_both_backends, spawn_app, split};

on_both_backends!(the_example_tenants_file_applies,);

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/examples")
        .join(name)
}

fn resolve(name: &str) -> Settings {
    Settings::resolve(ServeArgs {
        config: Some(example(name)),
        ..ServeArgs::default()
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_example_service_configurations_resolve() {
    let single = resolve("auth-single-node.toml");
    assert_eq!(single.listen.port(), 8421);
    assert_eq!(single.issuer.as_deref(), Some("https://auth.example.com"));
    assert_eq!(single.subdomain_suffix.as_deref(), Some("mcpg.example.com"));
    assert!(
        single.database_url.is_none(),
        "SQLite, the embedded default"
    );
    let replica = resolve("auth-replica-postgres.toml");
    assert!(replica.database_url.is_some());
    assert!(replica.migrate_database_url.is_some());
}

async fn the_example_tenants_file_applies(backend: Backend) {
    let app = spawn_app(backend).await;
    let document = std::fs::read_to_string(example("tenants.yaml")).expect("readable");
    for query in ["?dry_run=true", ""] {
        let response = app
            .admin(Method::POST, &format!("/v1/admin/tenants/apply{query}"))
            .header("content-type", "application/yaml")
            .body(document.clone())
            .send()
            .await
            .expect("sent");
        let (status, body) = split(response).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
    }
    let org: Value = app
        .expect(Method::GET, "/v1/orgs/acme-corp", None, StatusCode::OK)
        .await;
    assert_eq!(org["namespace"], "mcpg-acme");
    let set: Value = app
        .expect(
            Method::GET,
            "/v1/orgs/acme-corp/workspaces/platform-team/plugin-set",
            None,
            StatusCode::OK,
        )
        .await;
    assert!(set.to_string().contains("policy.cedar"), "{set}");
    let trial: Value = app
        .expect(Method::GET, "/v1/orgs/team-b", None, StatusCode::OK)
        .await;
    assert_eq!(trial["status"], "trial");
}
