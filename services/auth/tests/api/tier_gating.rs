//! Tier gating at use (issue 14 item 3): a workspace or environment binding, stored or
//! mapped from the org's IdP, takes effect only while the org's license includes its
//! level's feature. One table of license changes × (org, workspace, environment) bindings:
//! after each change every role's token is tried on what its role may do and on the binding
//! list, and `rbac/bindings` reports each binding active or `entitlement_required` — across
//! downgrades, upgrades, a revocation and a reinstatement, without any re-grant.

use std::sync::Arc;

use jsonwebtoken::Algorithm;
use mcpg_license_core::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, assert_error, now, on_both_backends, spawn_app, spawn_app_on_clock,
};
use crate::idp::{Idp, IdpKey};
use crate::oidc;
use crate::rbac::{call, grant, user_token};

on_both_backends!(
    stored_bindings_follow_the_license_at_every_request,
    idp_mapped_roles_follow_the_same_rule,
    an_inert_binding_names_its_feature_and_an_ended_license_entitles_nothing,
);

const GATEWAYS: &str = "/v1/orgs/acme/workspaces/ws/environments/prod/gateways";
const BINDINGS: &str = "/v1/orgs/acme/rbac/bindings";
const WS_RBAC: &str = "feature:workspace.rbac";
const ENV_RBAC: &str = "feature:environment.rbac";

/// A license change and which bindings it leaves in effect: (workspace, environment).
struct Step {
    what: &'static str,
    change: Change,
    workspace: bool,
    environment: bool,
}

enum Change {
    Set(Value),
    Revoke,
}

/// Downgrades, upgrades (by tier and by adding a feature), a revocation and a
/// reinstatement; org bindings are in effect throughout.
fn steps() -> Vec<Step> {
    let set = |tier: &str, add: &[&str], remove: &[&str]| {
        Change::Set(json!({"tier": tier, "valid_for_days": 30,
                           "entitlements_add": add, "entitlements_remove": remove}))
    };
    let step = |what, change, workspace, environment| Step {
        what,
        change,
        workspace,
        environment,
    };
    vec![
        step("enterprise", set("enterprise", &[], &[]), true, true),
        step("downgrade to team", set("team", &[], &[]), true, false),
        step(
            "team without workspace.rbac",
            set("team", &[], &[WS_RBAC]),
            false,
            false,
        ),
        step("downgrade to free", set("free", &[], &[]), false, false),
        step(
            "upgrade to team + environment.rbac",
            set("team", &[ENV_RBAC], &[]),
            true,
            true,
        ),
        step("revoked", Change::Revoke, false, false),
        step(
            "reinstated as enterprise",
            set("enterprise", &[], &[]),
            true,
            true,
        ),
    ]
}

async fn apply(app: &TestApp, change: &Change) {
    match change {
        Change::Set(license) => {
            app.set_license("acme", license.clone()).await;
        }
        Change::Revoke => {
            app.expect(
                Method::POST,
                "/v1/orgs/acme/license/revoke",
                None,
                StatusCode::OK,
            )
            .await;
        }
    }
}

/// Workspace `ws` of org `acme` and its environment `prod`.
async fn structure(app: &TestApp, ws: &str) {
    for (path, slug) in [
        ("/v1/orgs/acme/workspaces".to_owned(), ws),
        (
            format!("/v1/orgs/acme/workspaces/{ws}/environments"),
            "prod",
        ),
    ] {
        app.expect(
            Method::POST,
            &path,
            Some(json!({"slug": slug})),
            StatusCode::CREATED,
        )
        .await;
    }
}

/// Asserts an answer: `ok` when `active`, else 403 `entitlement_required` naming `needed`.
fn assert_gated(
    what: &str,
    status: StatusCode,
    body: &Value,
    active: bool,
    ok: StatusCode,
    needed: &str,
) {
    if active {
        assert_eq!(status, ok, "{what}: {body}");
    } else {
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
        assert_error(body, "entitlement_required");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needed), "{what}: {message}");
    }
}

/// Each role's token, after `step` (the `n`th), on what its role may do: the org admin
/// (never gated) creates a workspace, the operator registers a gateway in its workspace,
/// the viewer reads its environment's gateways.
async fn each_role_acts(app: &TestApp, n: usize, step: &Step, tokens: [&str; 3]) {
    let probes = [
        (
            "admin",
            Method::POST,
            "/v1/orgs/acme/workspaces",
            Some(json!({"slug": format!("more-{n}")})),
            true,
            StatusCode::CREATED,
            "",
        ),
        (
            "operator",
            Method::POST,
            GATEWAYS,
            Some(json!({"name": format!("gw-{n}")})),
            step.workspace,
            StatusCode::CREATED,
            WS_RBAC,
        ),
        (
            "viewer",
            Method::GET,
            GATEWAYS,
            None,
            step.environment,
            StatusCode::OK,
            ENV_RBAC,
        ),
    ];
    for ((role, method, path, body, active, ok, needed), token) in probes.into_iter().zip(tokens) {
        let (status, answer) = call(app, token, method, path, body).await;
        let what = format!("{}: {role}", step.what);
        assert_gated(&what, status, &answer, active, ok, needed);
    }
}

async fn stored_bindings_follow_the_license_at_every_request(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_org("acme").await;
    apply(&app, &steps()[0].change).await;
    structure(&app, "ws").await;
    // (email, role, scope, the entitlement it needs or "")
    let table = [
        ("admin@acme.com", "admin", json!({}), ""),
        (
            "op@acme.com",
            "operator",
            json!({"workspace": "ws"}),
            WS_RBAC,
        ),
        (
            "view@acme.com",
            "viewer",
            json!({"workspace": "ws", "environment": "prod"}),
            ENV_RBAC,
        ),
    ];
    let mut tokens = Vec::new();
    for (email, role, scope, _) in &table {
        let made = grant(&app, "acme", email, role, scope.clone()).await;
        assert_eq!(made["active"], true, "{made}");
        tokens.push(user_token(&app, "acme", email).await);
    }
    let [admin, op, viewer] = [&tokens[0], &tokens[1], &tokens[2]].map(String::as_str);

    for (n, step) in steps().iter().enumerate() {
        apply(&app, &step.change).await;
        let what = step.what;
        let active = [true, step.workspace, step.environment];

        each_role_acts(&app, n, step, [admin, op, viewer]).await;

        // Neither may list bindings: a plain 403 while active, the entitlement while inert.
        for (token, entitled, needed) in [
            (op, step.workspace, WS_RBAC),
            (viewer, step.environment, ENV_RBAC),
        ] {
            let (status, body) = call(&app, token, Method::GET, BINDINGS, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
            if entitled {
                assert_error(&body, "forbidden");
            } else {
                assert_gated(
                    &format!("{what}: list"),
                    status,
                    &body,
                    false,
                    StatusCode::OK,
                    needed,
                );
            }
        }

        // The list says which bindings are in effect and what the inert ones wait for.
        let (status, listed) = call(&app, admin, Method::GET, BINDINGS, None).await;
        assert_eq!(status, StatusCode::OK, "{what}: {listed}");
        for ((email, _, _, needed), active) in table.iter().zip(active) {
            let row = listed
                .as_array()
                .and_then(|rows| rows.iter().find(|r| r["email"] == *email))
                .unwrap_or_else(|| panic!("{what}: {email} listed: {listed}"));
            assert_eq!(row["active"], active, "{what}: {row}");
            if active {
                assert!(row.get("inactive").is_none(), "{what}: {row}");
            } else {
                assert_eq!(row["inactive"], "entitlement_required", "{what}: {row}");
                assert_eq!(row["required_entitlement"], *needed, "{what}: {row}");
            }
        }
    }
}

async fn idp_mapped_roles_follow_the_same_rule(backend: Backend) {
    let app = oidc::spawn(backend).await;
    let key = IdpKey::generate(Algorithm::EdDSA);
    let idp = Idp::start(&[&key]).await;
    oidc::configure(&app, "acme", &idp, "tenant-a", &["EdDSA"]).await;
    structure(&app, "ws").await;
    let admin = key.sign(&idp.claims("tenant-a", &["admins"]));
    let operator = key.sign(&idp.claims("tenant-a", &["ops"]));
    let viewer = key.sign(&idp.claims("tenant-a", &["readers"]));

    for (n, step) in steps().iter().enumerate() {
        apply(&app, &step.change).await;
        each_role_acts(&app, n, step, [&admin, &operator, &viewer]).await;
    }
}

async fn an_inert_binding_names_its_feature_and_an_ended_license_entitles_nothing(
    backend: Backend,
) {
    let clock = Arc::new(ManualClock::new(now()));
    let app = spawn_app_on_clock(backend, clock.clone()).await;
    app.create_org("acme").await;
    apply(&app, &steps()[0].change).await;
    structure(&app, "ws").await;
    structure(&app, "other").await;
    // One user, an operator on `ws` and a viewer on `other/prod`.
    grant(
        &app,
        "acme",
        "mixed@acme.com",
        "operator",
        json!({"workspace": "ws"}),
    )
    .await;
    let viewer_scope = json!({"workspace": "other", "environment": "prod"});
    grant(&app, "acme", "mixed@acme.com", "viewer", viewer_scope).await;
    let token = user_token(&app, "acme", "mixed@acme.com").await;
    let other = "/v1/orgs/acme/workspaces/other/environments/prod/gateways";

    // On Team the operator binding acts; what only the viewer binding allowed is refused
    // naming its feature, and an action no binding allows stays a plain 403.
    apply(&app, &steps()[1].change).await;
    let (status, body) = call(&app, &token, Method::GET, GATEWAYS, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&app, &token, Method::GET, other, None).await;
    assert_gated(
        "team: the viewer part",
        status,
        &body,
        false,
        StatusCode::OK,
        ENV_RBAC,
    );
    let (status, body) = call(&app, &token, Method::GET, BINDINGS, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, "forbidden");

    // Once the license has ended nothing below the org is entitled: every request is
    // refused naming both features, while the org still lists (its user knows it).
    clock.advance(31 * 86_400);
    let (status, body) = call(&app, &token, Method::GET, GATEWAYS, None).await;
    assert_gated("ended", status, &body, false, StatusCode::OK, WS_RBAC);
    assert_gated("ended", status, &body, false, StatusCode::OK, ENV_RBAC);
    let (status, orgs) = call(&app, &token, Method::GET, "/v1/orgs", None).await;
    assert_eq!(status, StatusCode::OK, "{orgs}");
    assert_eq!(orgs[0]["slug"], "acme", "{orgs}");
    let (_, listed) = app.send(Method::GET, BINDINGS, None).await;
    let states: Vec<&Value> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| &r["inactive"])
        .collect();
    assert_eq!(states, [&json!("entitlement_required"); 2], "{listed}");

    // A new license brings both back without a re-grant.
    apply(&app, &steps()[0].change).await;
    let (status, body) = call(&app, &token, Method::GET, other, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
