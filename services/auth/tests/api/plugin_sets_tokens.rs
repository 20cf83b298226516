//! Plugin sets in tokens and exports: the effective set in a gateway's token (`ps` claim
//! and the response's `plugin_set` member), dropped from the grant cache on change, and
//! the sets a workspace delete exports.

use mcpg_license_core::{LicenseClaims, PluginSet, PluginSetEntry, Validity};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, now, on_both_backends, spawn_app};
use crate::plugin_sets::{WS, acme, cedar};

on_both_backends!(
    tokens_carry_the_effective_plugin_set_and_follow_its_changes,
    deleting_a_workspace_exports_and_removes_its_plugin_sets,
);

/// Registers a gateway in `ws/env` of acme; returns its credential.
async fn gateway_in(app: &TestApp, ws: &str, env: &str) -> String {
    let body = app
        .expect(
            Method::POST,
            &format!("{WS}/{ws}/environments/{env}/gateways"),
            Some(json!({"name": format!("gw-{ws}-{env}")})),
            StatusCode::CREATED,
        )
        .await;
    body["credential"].as_str().expect("credential").to_owned()
}

/// The token's verified claims and its `plugin_set` member.
async fn token(app: &TestApp, credential: &str) -> (LicenseClaims, Value) {
    let body = app.token_ok(credential).await;
    let issuer = app
        .trust_store()
        .verify_certificate(
            body["issuer_certificate"].as_str().expect("certificate"),
            now(),
            Validity::Strict,
        )
        .expect("certificate verifies");
    let claims = issuer
        .verify_jwt(
            body["token"].as_str().expect("token"),
            now(),
            Validity::Strict,
        )
        .expect("token verifies");
    (
        claims,
        body.get("plugin_set").cloned().unwrap_or(Value::Null),
    )
}

/// Checks the member against the claim the way a gateway does; returns the digest.
fn digest_of(claims: &LicenseClaims, member: &Value) -> String {
    let ps = claims.ps.as_ref().expect("a ps claim");
    let plugins: Vec<PluginSetEntry> =
        serde_json::from_value(member["plugins"].clone()).expect("plugins");
    let set = PluginSet::new(plugins).expect("a valid set");
    assert_eq!(
        set.digest(),
        ps.cfg,
        "the configs hash to the signed digest"
    );
    assert_eq!(member["digest"], ps.cfg.as_str());
    assert_eq!(set.ids().collect::<Vec<_>>(), ps.ids);
    ps.cfg.clone()
}

async fn tokens_carry_the_effective_plugin_set_and_follow_its_changes(backend: Backend) {
    let app = spawn_app(backend).await;
    acme(&app).await;
    let prod = gateway_in(&app, "platform", "prod").await;
    let dev = gateway_in(&app, "platform", "dev").await;
    let data = gateway_in(&app, "data", "prod").await;
    // No set anywhere: tokens are as before.
    let (claims, member) = token(&app, &prod).await;
    assert!(claims.ps.is_none() && member.is_null());

    let ws_set = app
        .expect(
            Method::PUT,
            &format!("{WS}/platform/plugin-set"),
            Some(cedar("b:1")),
            StatusCode::OK,
        )
        .await;
    let env_path = format!("{WS}/platform/environments/prod/plugin-set");
    let audit_only = json!({"plugins": [{"id": "observability.audit", "config": {"sink": "s3"}}]});
    let env_set = app
        .expect(Method::PUT, &env_path, Some(audit_only), StatusCode::OK)
        .await;

    let (claims, member) = token(&app, &prod).await;
    assert_eq!(
        digest_of(&claims, &member),
        env_set["digest"].as_str().expect("digest")
    );
    assert_eq!(
        claims.ps.as_ref().map(|p| p.ids.clone()),
        Some(vec!["observability.audit".into()])
    );
    let (claims, member) = token(&app, &dev).await;
    assert_eq!(
        digest_of(&claims, &member),
        ws_set["digest"].as_str().expect("digest")
    );
    let (claims, member) = token(&app, &data).await;
    assert!(
        claims.ps.is_none() && member.is_null(),
        "another workspace has no set: {member}"
    );

    // Changes reach cached grants: a new workspace set, then the environment's removed.
    let ws_v2 = app
        .expect(
            Method::PUT,
            &format!("{WS}/platform/plugin-set"),
            Some(cedar("b:2")),
            StatusCode::OK,
        )
        .await;
    let (claims, member) = token(&app, &dev).await;
    assert_eq!(
        digest_of(&claims, &member),
        ws_v2["digest"].as_str().expect("digest")
    );
    assert_eq!(member["plugins"][1]["config"]["bundle"], "b:2");
    app.expect(Method::DELETE, &env_path, None, StatusCode::OK)
        .await;
    let (claims, member) = token(&app, &prod).await;
    assert_eq!(
        digest_of(&claims, &member),
        ws_v2["digest"].as_str().expect("digest")
    );
    let data_set = json!({"plugins": [{"id": "reliability.retry"}]});
    let data_set = app
        .expect(
            Method::PUT,
            &format!("{WS}/data/plugin-set"),
            Some(data_set),
            StatusCode::OK,
        )
        .await;
    let (claims, member) = token(&app, &data).await;
    assert_eq!(
        digest_of(&claims, &member),
        data_set["digest"].as_str().expect("digest")
    );
    app.expect(
        Method::DELETE,
        &format!("{WS}/platform/plugin-set"),
        None,
        StatusCode::OK,
    )
    .await;
    let (claims, member) = token(&app, &dev).await;
    assert!(
        claims.ps.is_none() && member.is_null(),
        "set removed: {member}"
    );
}

async fn deleting_a_workspace_exports_and_removes_its_plugin_sets(backend: Backend) {
    let app = spawn_app(backend).await;
    acme(&app).await;
    let env_path = format!("{WS}/data/environments/prod/plugin-set");
    app.expect(Method::PUT, &env_path, Some(cedar("b")), StatusCode::OK)
        .await;
    app.expect(
        Method::PUT,
        &format!("{WS}/data/plugin-set"),
        Some(cedar("w")),
        StatusCode::OK,
    )
    .await;
    let export = app
        .expect(
            Method::DELETE,
            &format!("{WS}/data?cascade=true"),
            None,
            StatusCode::OK,
        )
        .await;
    let sets = export["plugin_sets"]
        .as_array()
        .expect("plugin_sets exported");
    assert_eq!(sets.len(), 2, "{export}");
    assert_eq!(sets[0]["environment"], Value::Null);
    assert_eq!(sets[1]["environment"], "prod");
    assert_eq!(sets[1]["plugins"][1]["config"]["bundle"], "b");
    app.expect(
        Method::POST,
        WS,
        Some(json!({"slug": "data"})),
        StatusCode::CREATED,
    )
    .await;
    let missing = app
        .expect(
            Method::GET,
            &format!("{WS}/data/plugin-set"),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    assert_error(&missing, "plugin_set_not_found");
}
