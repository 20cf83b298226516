//! Plugin sets: who may write and read them (route × principal table), what is refused
//! (unknown plugins, plugins the license does not entitle, invalid sets) and license
//! changes that would strip them. Tokens and exports: `plugin_sets_tokens`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, on_both_backends, spawn_app};
use crate::rbac::{call, grant, user_token};

on_both_backends!(
    every_route_and_principal_follows_the_table,
    unknown_unentitled_and_invalid_sets_are_refused_and_environments_inherit,
    a_license_change_that_strips_a_plugin_set_needs_force,
);

pub(crate) const WS: &str = "/v1/orgs/acme/workspaces";

/// Org `acme` (Enterprise) with workspaces platform (prod, dev) and data (prod).
pub(crate) async fn acme(app: &TestApp) {
    app.create_org("acme").await;
    app.set_license("acme", json!({"tier": "enterprise", "valid_for_days": 30}))
        .await;
    for (ws, envs) in [("platform", &["prod", "dev"][..]), ("data", &["prod"][..])] {
        app.expect(
            Method::POST,
            WS,
            Some(json!({"slug": ws})),
            StatusCode::CREATED,
        )
        .await;
        for env in envs {
            app.expect(
                Method::POST,
                &format!("{WS}/{ws}/environments"),
                Some(json!({"slug": env})),
                StatusCode::CREATED,
            )
            .await;
        }
    }
}

pub(crate) fn cedar(bundle: &str) -> Value {
    json!({"plugins": [
        {"id": "identity.oidc"},
        {"id": "policy.cedar", "config": {"bundle": bundle}},
    ]})
}

async fn every_route_and_principal_follows_the_table(backend: Backend) {
    let app = spawn_app(backend).await;
    acme(&app).await;
    grant(&app, "acme", "admin@acme.com", "admin", json!({})).await;
    grant(
        &app,
        "acme",
        "op@acme.com",
        "operator",
        json!({"workspace": "platform"}),
    )
    .await;
    grant(
        &app,
        "acme",
        "dataop@acme.com",
        "operator",
        json!({"workspace": "data"}),
    )
    .await;
    let viewer_scope = json!({"workspace": "platform", "environment": "prod"});
    grant(&app, "acme", "viewer@acme.com", "viewer", viewer_scope).await;
    app.create_org("other").await;
    grant(&app, "other", "boss@other.com", "admin", json!({})).await;
    let principals = [
        ("global", Some(app.admin_token.clone())),
        (
            "org admin",
            Some(user_token(&app, "acme", "admin@acme.com").await),
        ),
        (
            "operator",
            Some(user_token(&app, "acme", "op@acme.com").await),
        ),
        (
            "other operator",
            Some(user_token(&app, "acme", "dataop@acme.com").await),
        ),
        (
            "env viewer",
            Some(user_token(&app, "acme", "viewer@acme.com").await),
        ),
        (
            "other org admin",
            Some(user_token(&app, "other", "boss@other.com").await),
        ),
        ("anonymous", None),
    ];
    use StatusCode as S;
    const OK: S = S::OK;
    const NO: S = S::FORBIDDEN;
    const HIDDEN: S = S::NOT_FOUND;
    const ANON: S = S::UNAUTHORIZED;
    let ws = format!("{WS}/platform/plugin-set");
    let env = format!("{WS}/platform/environments/prod/plugin-set");
    // Columns in the order of `principals`.
    let table: [(Method, &str, [S; 7]); 6] = [
        (Method::PUT, &ws, [OK, OK, OK, NO, NO, HIDDEN, ANON]),
        (Method::GET, &ws, [OK, OK, OK, NO, OK, HIDDEN, ANON]),
        (Method::DELETE, &ws, [OK, OK, OK, NO, NO, HIDDEN, ANON]),
        (Method::PUT, &env, [OK, OK, OK, NO, NO, HIDDEN, ANON]),
        (Method::GET, &env, [OK, OK, OK, NO, OK, HIDDEN, ANON]),
        (Method::DELETE, &env, [OK, OK, OK, NO, NO, HIDDEN, ANON]),
    ];
    for (method, path, wants) in &table {
        for ((who, token), want) in principals.iter().zip(wants) {
            // Every request meets both sets in place, so a refusal is the caller's.
            for place in [&ws, &env] {
                app.expect(Method::PUT, place, Some(cedar("b:1")), OK).await;
            }
            let body = (*method == Method::PUT).then(|| cedar("b:2"));
            let (status, answer) = match token {
                Some(token) => call(&app, token, method.clone(), path, body).await,
                None => {
                    let mut request = app
                        .client
                        .request(method.clone(), format!("{}{path}", app.address));
                    if let Some(body) = body {
                        request = request.json(&body);
                    }
                    crate::helpers::split(request.send().await.expect("sent")).await
                }
            };
            assert_eq!(status, *want, "{who} {method} {path}: {answer}");
            if *want == HIDDEN {
                assert_error(&answer, "not_found");
            }
        }
    }
}

async fn unknown_unentitled_and_invalid_sets_are_refused_and_environments_inherit(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.gateway("team").await; // Team + plugin:policy.cedar, workspace main, env prod
    let ws = "/v1/orgs/team/workspaces/main/plugin-set";
    let env = "/v1/orgs/team/workspaces/main/environments/prod/plugin-set";
    let body = json!({"plugins": [{"id": "identity.saml"}, {"id": "policy.cedar"},
        {"id": "observability.audit"}]});
    let refused = app
        .expect(Method::PUT, ws, Some(body), StatusCode::FORBIDDEN)
        .await;
    assert_error(&refused, "not_entitled");
    assert_eq!(
        refused["error"]["plugins"],
        json!([{"id": "identity.saml", "entitlement": "plugin:identity.saml"}])
    );
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("identity.saml (needs plugin:identity.saml)"),
        "{message}"
    );
    let body = json!({"plugins": [{"id": "policy.cedr"}]});
    let unknown = app
        .expect(Method::PUT, ws, Some(body), StatusCode::BAD_REQUEST)
        .await;
    assert_error(&unknown, "unknown_plugin");
    let message = unknown["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("policy.cedr (did you mean policy.cedar?)"),
        "{message}"
    );
    let twice = json!({"plugins": [{"id": "policy.cedar"}, {"id": "policy.cedar"}]});
    let invalid = app
        .expect(Method::PUT, ws, Some(twice), StatusCode::BAD_REQUEST)
        .await;
    assert_error(&invalid, "invalid_request");
    let missing = app
        .expect(Method::GET, env, None, StatusCode::NOT_FOUND)
        .await;
    assert_error(&missing, "plugin_set_not_found");
    let gone = app
        .expect(Method::DELETE, ws, None, StatusCode::NOT_FOUND)
        .await;
    assert_error(&gone, "plugin_set_not_found");
    let absent_ws = "/v1/orgs/team/workspaces/nope/plugin-set";
    let body = Some(cedar("b"));
    assert_error(
        &app.expect(Method::PUT, absent_ws, body, StatusCode::NOT_FOUND)
            .await,
        "not_found",
    );

    let put = app
        .expect(Method::PUT, ws, Some(cedar("oci://b:1")), StatusCode::OK)
        .await;
    assert_eq!(put["workspace"], "main");
    assert_eq!(put["revision"], 1);
    assert_eq!(
        put["plugins"][1],
        json!({"id": "policy.cedar", "config": {"bundle": "oci://b:1"}})
    );
    assert!(
        put["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    let inherited = app.expect(Method::GET, env, None, StatusCode::OK).await;
    assert_eq!(inherited["inherited_from"], "workspace");
    assert_eq!(inherited["environment"], "prod");
    assert_eq!(inherited["digest"], put["digest"]);
    let again = app
        .expect(Method::PUT, ws, Some(cedar("oci://b:2")), StatusCode::OK)
        .await;
    assert_eq!(again["revision"], 2);
    assert_ne!(again["digest"], put["digest"]);
    let own = app
        .expect(
            Method::PUT,
            env,
            Some(json!({"plugins": []})),
            StatusCode::OK,
        )
        .await;
    let shown = app.expect(Method::GET, env, None, StatusCode::OK).await;
    assert_eq!(shown["digest"], own["digest"]);
    assert!(shown.get("inherited_from").is_none(), "{shown}");
    let audit = app
        .expect(Method::GET, "/v1/orgs/team/audit", None, StatusCode::OK)
        .await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("plugin_set."))
        .collect();
    assert_eq!(actions.len(), 3, "{audit}");
}

async fn a_license_change_that_strips_a_plugin_set_needs_force(backend: Backend) {
    let app = spawn_app(backend).await;
    acme(&app).await;
    let saml = json!({"plugins": [{"id": "identity.saml"}, {"id": "identity.oidc"}]});
    app.expect(
        Method::PUT,
        &format!("{WS}/platform/plugin-set"),
        Some(cedar("b")),
        StatusCode::OK,
    )
    .await;
    let env_set = format!("{WS}/data/environments/prod/plugin-set");
    app.expect(Method::PUT, &env_set, Some(saml), StatusCode::OK)
        .await;
    let oidc_only = json!({"plugins": [{"id": "identity.oidc"}]});
    app.expect(
        Method::PUT,
        &format!("{WS}/data/plugin-set"),
        Some(oidc_only),
        StatusCode::OK,
    )
    .await;
    let team = json!({"tier": "team", "valid_for_days": 30});
    let refused = app
        .expect(
            Method::PUT,
            "/v1/orgs/acme/license",
            Some(team.clone()),
            StatusCode::CONFLICT,
        )
        .await;
    assert_error(&refused, "plugin_set_conflict");
    let expected = json!([
        {"workspace": "data", "environment": "prod",
         "plugins": [{"id": "identity.saml", "entitlement": "plugin:identity.saml"}]},
        {"workspace": "platform",
         "plugins": [{"id": "policy.cedar", "entitlement": "plugin:policy.cedar"}]},
    ]);
    assert_eq!(refused["error"]["plugin_sets"], expected);
    let license = app
        .expect(Method::GET, "/v1/orgs/acme/license", None, StatusCode::OK)
        .await;
    assert_eq!(
        license["tier"], "enterprise",
        "the refused change was not applied"
    );
    let forced = app
        .expect(
            Method::PUT,
            "/v1/orgs/acme/license?force=true",
            Some(team.clone()),
            StatusCode::OK,
        )
        .await;
    assert_eq!(forced["tier"], "team");
    assert_eq!(forced["plugin_sets_affected"], expected);
    let audit = app
        .expect(Method::GET, "/v1/orgs/acme/audit", None, StatusCode::OK)
        .await;
    let last_set = audit["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .rfind(|e| e["action"] == "license.set")
        .and_then(|e| e["details"].as_str())
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .unwrap_or_default();
    assert_eq!(
        last_set["plugin_sets_affected"], expected,
        "the forced change is audited"
    );
    // Nothing more to lose: the same license again is not a conflict and reports nothing.
    let same = app
        .expect(
            Method::PUT,
            "/v1/orgs/acme/license",
            Some(team),
            StatusCode::OK,
        )
        .await;
    assert!(same.get("plugin_sets_affected").is_none(), "{same}");
    let bad = app
        .send(
            Method::PUT,
            "/v1/orgs/acme/license?force=maybe",
            Some(json!({"tier": "team"})),
        )
        .await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST, "{}", bad.1);
}
