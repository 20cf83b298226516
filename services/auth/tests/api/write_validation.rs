//! Write-time validation of licenses: entitlement ids the plugin catalog does not know are
//! refused when the license is written (API and tenants.yaml), unless the writer opts in
//! to entitlements of plugins that ship later.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::byoc::{Byoc, acme_bounds};
use crate::helpers::{
    Backend, TestApp, assert_error, now, on_both_backends, spawn_app, spawn_app_full,
};

on_both_backends!(
    a_license_naming_an_unknown_entitlement_is_refused_with_a_suggestion,
    a_license_may_name_future_entitlements_when_it_says_so,
    a_tenants_file_naming_an_unknown_entitlement_is_refused_unless_the_tenant_opts_in,
    a_tenants_file_outside_the_signing_certificate_is_refused_when_applied,
);

const LICENSE: &str = "/v1/orgs/acme/license";

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

async fn a_license_naming_an_unknown_entitlement_is_refused_with_a_suggestion(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_org("acme").await;
    let (status, body) = app
        .send(
            Method::PUT,
            LICENSE,
            Some(json!({
                "tier": "team",
                "entitlements_add": ["plugin:policy.cedr", "plugin:billing.stripe"],
                "entitlements_remove": ["plugin:identity.oidc"],
                "valid_for_days": 30,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "unknown_entitlement");
    let text = message(&body);
    assert!(
        text.contains("plugin:policy.cedr (did you mean plugin:policy.cedar?)"),
        "{text}"
    );
    assert!(text.contains("plugin:billing.stripe"), "{text}");
    assert!(
        !text.contains("plugin:identity.oidc"),
        "known ids are not named: {text}"
    );
    assert!(text.contains("allow_future_entitlements"), "{text}");

    // A removal of an unknown id is refused alike, and nothing was written.
    let (status, body) = app
        .send(
            Method::PUT,
            LICENSE,
            Some(json!({"tier": "team", "entitlements_remove": ["feature:workspace.rbca"]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "unknown_entitlement");
    assert!(
        message(&body).contains("did you mean feature:workspace.rbac?"),
        "{body}"
    );
    let (status, _) = app.send(Method::GET, LICENSE, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no license was set");
}

async fn a_license_may_name_future_entitlements_when_it_says_so(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_org("acme").await;
    let license = app
        .set_license(
            "acme",
            json!({
                "tier": "team",
                "entitlements_add": ["plugin:billing.stripe"],
                "allow_future_entitlements": true,
                "valid_for_days": 30,
            }),
        )
        .await;
    assert_eq!(
        license["entitlements_add"],
        json!(["plugin:billing.stripe"])
    );
    let entitlements = license["entitlements"].as_array().expect("entitlements");
    assert!(
        entitlements.contains(&json!("plugin:billing.stripe")),
        "{license}"
    );
    let (status, body) = app
        .send(
            Method::PUT,
            LICENSE,
            Some(json!({"tier": "team", "allow_future_entitlements": "yes"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the flag is a boolean: {body}"
    );
    assert_error(&body, "invalid_request");
}

async fn apply(app: &TestApp, doc: String) -> (StatusCode, Value) {
    let response = app
        .admin(Method::POST, "/v1/admin/tenants/apply")
        .header("content-type", "application/yaml")
        .body(doc)
        .send()
        .await
        .expect("request sent");
    crate::helpers::split(response).await
}

fn tenants(opt_in: &str) -> String {
    format!(
        "tenants:\n\
         - id: team-a\n\
         \x20 display_name: Team Alpha\n\
         \x20 tier: team\n\
         {opt_in}\
         \x20 entitlements:\n\
         \x20   add: [\"plugin:policy.cedr\"]\n"
    )
}

async fn a_tenants_file_naming_an_unknown_entitlement_is_refused_unless_the_tenant_opts_in(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let (status, body) = apply(&app, tenants("")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "unknown_entitlement");
    let text = message(&body);
    assert!(text.contains("tenant team-a"), "{text}");
    assert!(
        text.contains("plugin:policy.cedr (did you mean plugin:policy.cedar?)"),
        "{text}"
    );
    let (status, _) = app.send(Method::GET, "/v1/orgs/team-a", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was applied");

    let (status, body) = apply(&app, tenants("\x20 allow_future_entitlements: true\n")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, license) = app.send(Method::GET, "/v1/orgs/team-a/license", None).await;
    assert_eq!(status, StatusCode::OK, "{license}");
    assert_eq!(license["entitlements_add"], json!(["plugin:policy.cedr"]));
}

async fn a_tenants_file_outside_the_signing_certificate_is_refused_when_applied(backend: Backend) {
    let t0 = now();
    let byoc = Byoc::new(acme_bounds(), t0 - 60, t0 + 90 * 86_400);
    let app = spawn_app_full(backend, |settings| byoc.apply(settings), None).await;
    let tenant =
        |id: &str, tier: &str| format!("tenants:\n- id: {id}\n  display_name: X\n  tier: {tier}\n");
    for (doc, bound) in [
        (tenant("globex", "team"), "org_not_allowed"),
        (tenant("acme", "enterprise"), "tier_above_max"),
    ] {
        let (status, body) = apply(&app, doc).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_error(&body, "outside_certificate_bounds");
        assert!(message(&body).contains(bound), "{bound} in {body}");
    }
    let (status, _) = app.send(Method::GET, "/v1/orgs/globex", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was applied");
    let (status, body) = apply(&app, tenant("acme", "team")).await;
    assert_eq!(status, StatusCode::OK, "inside the bounds: {body}");
}
