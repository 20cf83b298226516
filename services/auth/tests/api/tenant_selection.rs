//! Tenant selection: org-scoped routes served without `/orgs/{org}` when the
//! `X-Tenant-ID` header, a token bound to one org or (with the entitlement) the host names
//! the tenant; conflicts are 403 `tenant_mismatch`, no source is 400 `tenant_required`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, on_both_backends, spawn_app_with, split};
use crate::rbac::{grant, user_token};

on_both_backends!(
    the_header_or_an_org_token_selects_the_tenant,
    conflicting_or_missing_tenants_are_refused,
    the_host_selects_only_with_subdomain_routing_in_the_license,
    a_foreign_tenant_named_by_header_counts_as_a_probe,
    a_routing_name_selects_its_org_by_host,
);

fn series(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|number| number.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn a_foreign_tenant_named_by_header_counts_as_a_probe(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    app.gateway("acme").await;
    app.create_org("globex").await;
    let token = org_token(&app, "acme").await;
    let before = app.scrape().await;
    for other in ["globex", "no-such-org"] {
        let (status, body) = get(&app, &token, "/v1/workspaces", &[("x-tenant-id", other)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_error(&body, "tenant_mismatch");
    }
    let after = app.scrape().await;
    let probes = "mcpg_cross_tenant_probes_total";
    let mismatches = "mcpg_denied_requests_total{reason=\"tenant_mismatch\"}";
    assert!(
        series(&after, probes) - series(&before, probes) >= 2.0,
        "{after}"
    );
    let counted = series(&after, mismatches) - series(&before, mismatches);
    assert!(counted >= 2.0, "{counted}");
}

async fn org_token(app: &TestApp, org: &str) -> String {
    let body = app
        .expect(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"name": format!("{org} admin"), "org": org})),
            StatusCode::CREATED,
        )
        .await;
    body["token"].as_str().expect("token shown once").to_owned()
}

async fn get(
    app: &TestApp,
    token: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    split(request.send().await.expect("sent")).await
}

async fn the_header_or_an_org_token_selects_the_tenant(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    app.gateway("acme").await;
    app.gateway("globex").await;
    let admin = app.admin_token.clone();
    let prefixed = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/workspaces",
            None,
            StatusCode::OK,
        )
        .await;
    let (status, body) = get(&app, &admin, "/v1/workspaces", &[("x-tenant-id", "acme")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, prefixed);
    let (status, body) = get(
        &app,
        &admin,
        "/v1/workspaces/main/environments",
        &[("x-tenant-id", "globex")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        app.expect(
            Method::GET,
            "/v1/orgs/globex/workspaces/main/environments",
            None,
            StatusCode::OK
        )
        .await
    );

    let token = org_token(&app, "acme").await;
    let (status, body) = get(&app, &token, "/v1/workspaces", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, prefixed);
    let (status, body) = get(&app, &token, "/v1/workspaces", &[("x-tenant-id", "acme")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, prefixed);

    grant(&app, "acme", "a@acme.com", "admin", json!({})).await;
    let personal = user_token(&app, "acme", "a@acme.com").await;
    let (status, body) = get(&app, &personal, "/v1/workspaces", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, prefixed);

    // Writes go through the same rewrite.
    let created = app
        .admin(Method::POST, "/v1/workspaces?ignored=1")
        .header("x-tenant-id", "acme")
        .json(&json!({"slug": "second"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), StatusCode::CREATED);
    let (status, body) = get(
        &app,
        &admin,
        "/v1/orgs/acme/workspaces/second/environments",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A missing org by header is the uniform 404.
    let (status, body) = get(&app, &admin, "/v1/workspaces", &[("x-tenant-id", "nope")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
}

async fn conflicting_or_missing_tenants_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    app.gateway("acme").await;
    app.create_org("globex").await;
    let admin = app.admin_token.clone();
    let token = org_token(&app, "acme").await;

    // Header and token name different orgs (existing or not: nothing is revealed).
    for other in ["globex", "nope"] {
        let (status, body) = get(&app, &token, "/v1/workspaces", &[("x-tenant-id", other)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_error(&body, "tenant_mismatch");
    }
    // Another org in the path with the token's own org in the header: as before.
    let (status, body) = get(
        &app,
        &token,
        "/v1/orgs/globex/workspaces",
        &[("x-tenant-id", "acme")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "tenant_mismatch");

    // The global admin names no tenant.
    let (status, body) = get(&app, &admin, "/v1/workspaces", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "tenant_required");
    assert!(
        body.to_string().contains("X-Tenant-ID"),
        "the message says how: {body}"
    );

    // A header that is no slug cannot reach another route.
    let (status, body) = get(
        &app,
        &admin,
        "/v1/workspaces",
        &[("x-tenant-id", "acme/workspaces/main")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_request");

    // No credential: 401 as on the prefixed form.
    let anonymous = app
        .client
        .get(format!("{}/v1/workspaces", app.address))
        .header("x-tenant-id", "acme")
        .send()
        .await
        .expect("sent");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Unknown paths are still 404.
    for path in ["/v1/nothing", "/v1/workspacesx", "/v1/orgs/acme/nothing"] {
        let (status, body) = get(&app, &admin, path, &[("x-tenant-id", "acme")]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, _) = get(&app, &admin, "/v1/nothing", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn the_host_selects_only_with_subdomain_routing_in_the_license(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.subdomain_suffix = Some("mcpg.test".into());
    })
    .await;
    app.gateway("acme").await;
    app.create_org("initech").await;
    app.set_license(
        "initech",
        json!({"tier": "enterprise", "valid_for_days": 30}),
    )
    .await;
    let admin = app.admin_token.clone();

    let prefixed = app
        .expect(
            Method::GET,
            "/v1/orgs/initech/workspaces",
            None,
            StatusCode::OK,
        )
        .await;
    let (status, body) = get(
        &app,
        &admin,
        "/v1/workspaces",
        &[("host", "initech.mcpg.test:8421")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, prefixed);

    // Team tier: the host selects nothing, and the refusal names the entitlement.
    let (status, body) = get(
        &app,
        &admin,
        "/v1/workspaces",
        &[("host", "acme.mcpg.test")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "entitlement_required");
    assert!(
        body.to_string()
            .contains("feature:tenancy.subdomain-routing"),
        "{body}"
    );
    // ...but it still only has to agree when the header or the token names the tenant.
    let (status, body) = get(
        &app,
        &admin,
        "/v1/workspaces",
        &[("host", "acme.mcpg.test"), ("x-tenant-id", "acme")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = org_token(&app, "acme").await;
    let (status, body) = get(
        &app,
        &token,
        "/v1/workspaces",
        &[("host", "acme.mcpg.test")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Host and header, or host and token, disagree.
    let (status, body) = get(
        &app,
        &admin,
        "/v1/workspaces",
        &[("host", "initech.mcpg.test"), ("x-tenant-id", "acme")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "tenant_mismatch");
    let (status, body) = get(
        &app,
        &token,
        "/v1/workspaces",
        &[("host", "initech.mcpg.test")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "tenant_mismatch");

    // An unknown org by host is the uniform 404, before any license is read.
    let (status, body) = get(
        &app,
        &admin,
        "/v1/workspaces",
        &[("host", "nope.mcpg.test")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    // Other hosts name nothing.
    let (status, body) = get(&app, &admin, "/v1/workspaces", &[("host", "localhost")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "tenant_required");
}

async fn a_routing_name_selects_its_org_by_host(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.subdomain_suffix = Some("mcpg.test".into());
    })
    .await;
    let body = app
        .expect(
            Method::POST,
            "/v1/orgs",
            Some(json!({"slug": "acme-corp", "display_name": "Acme", "routing_name": "acme"})),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(body["routing_name"], "acme");
    app.create_org("globex").await;
    for org in ["acme-corp", "globex"] {
        app.set_license(org, json!({"tier": "enterprise", "valid_for_days": 30}))
            .await;
        app.expect(
            Method::POST,
            &format!("/v1/orgs/{org}/workspaces"),
            Some(json!({"slug": format!("{org}-team")})),
            StatusCode::CREATED,
        )
        .await;
    }
    let admin = app.admin_token.clone();
    let slugs = |body: &Value| -> Vec<String> {
        body.as_array()
            .expect("a list")
            .iter()
            .map(|w| w["slug"].as_str().expect("slug").to_owned())
            .collect()
    };

    // The routing name and the slug both select acme-corp; the prefixed route agrees.
    for host in ["acme.mcpg.test", "acme-corp.mcpg.test:443"] {
        let (status, body) = get(&app, &admin, "/v1/workspaces", &[("host", host)]).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
        assert_eq!(slugs(&body), ["acme-corp-team"], "{host}");
        let (status, body) = get(
            &app,
            &admin,
            "/v1/orgs/acme-corp/workspaces",
            &[("host", host)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
    let (status, body) = get(
        &app,
        &admin,
        "/v1/orgs/globex/workspaces",
        &[("host", "acme.mcpg.test")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, "tenant_mismatch");
    let (status, body) = get(
        &app,
        &admin,
        "/v1/workspaces",
        &[("host", "acme.mcpg.test"), ("x-tenant-id", "acme-corp")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A caller of another org learns nothing from a public routing name: with the host
    // `acme`, acme-corp (hidden from them) and an org that does not exist get the same
    // answer — the uniform 404 by path, and by header the same 403 `tenant_mismatch` (their
    // token names their own org, decided before any lookup) — whatever label the host names.
    grant(&app, "globex", "admin@globex.com", "admin", json!({})).await;
    let outsider = user_token(&app, "globex", "admin@globex.com").await;
    for (path, headers, expected) in [
        (
            "/v1/orgs/acme-corp/workspaces",
            vec![("host", "acme.mcpg.test")],
            StatusCode::NOT_FOUND,
        ),
        (
            "/v1/orgs/no-such-org/workspaces",
            vec![("host", "acme.mcpg.test")],
            StatusCode::NOT_FOUND,
        ),
        (
            "/v1/orgs/acme-corp/workspaces",
            vec![("host", "nobody.mcpg.test")],
            StatusCode::NOT_FOUND,
        ),
        (
            "/v1/workspaces",
            vec![("host", "acme.mcpg.test"), ("x-tenant-id", "acme-corp")],
            StatusCode::FORBIDDEN,
        ),
        (
            "/v1/workspaces",
            vec![("host", "nobody.mcpg.test"), ("x-tenant-id", "acme-corp")],
            StatusCode::FORBIDDEN,
        ),
        (
            "/v1/workspaces",
            vec![("host", "acme.mcpg.test"), ("x-tenant-id", "no-such-org")],
            StatusCode::FORBIDDEN,
        ),
    ] {
        let (status, body) = get(&app, &outsider, path, &headers).await;
        assert_eq!(status, expected, "{path} {headers:?}: {body}");
    }
    // The global admin sees every org, so for them the host must agree with the header.
    let (status, body) = get(
        &app,
        &admin,
        "/v1/workspaces",
        &[("host", "nobody.mcpg.test"), ("x-tenant-id", "acme-corp")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, "tenant_mismatch");

    // One label names one org: a routing name that is another org's slug or routing
    // name, and a slug that is another org's routing name, are conflicts.
    app.expect(
        Method::PATCH,
        "/v1/orgs/globex",
        Some(json!({"routing_name": "acme"})),
        StatusCode::CONFLICT,
    )
    .await;
    app.expect(
        Method::PATCH,
        "/v1/orgs/globex",
        Some(json!({"routing_name": "acme-corp"})),
        StatusCode::CONFLICT,
    )
    .await;
    app.expect(
        Method::POST,
        "/v1/orgs",
        Some(json!({"slug": "acme", "display_name": "Another Acme"})),
        StatusCode::CONFLICT,
    )
    .await;
    app.expect(
        Method::PATCH,
        "/v1/orgs/globex",
        Some(json!({"routing_name": "Not A Label"})),
        StatusCode::BAD_REQUEST,
    )
    .await;

    // Renamed: the old label selects nothing (the uniform 404), the new one works; cleared:
    // only the slug is left.
    let body = app
        .expect(
            Method::PATCH,
            "/v1/orgs/acme-corp",
            Some(json!({"routing_name": "acme-eu"})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(body["routing_name"], "acme-eu");
    let (status, body) = get(
        &app,
        &admin,
        "/v1/workspaces",
        &[("host", "acme.mcpg.test")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = get(
        &app,
        &admin,
        "/v1/workspaces",
        &[("host", "acme-eu.mcpg.test")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(slugs(&body), ["acme-corp-team"]);
    let body = app
        .expect(
            Method::PATCH,
            "/v1/orgs/acme-corp",
            Some(json!({"routing_name": null})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(body["routing_name"], Value::Null);
    let (status, _) = get(
        &app,
        &admin,
        "/v1/workspaces",
        &[("host", "acme-eu.mcpg.test")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The freed label can now be another org's.
    app.expect(
        Method::PATCH,
        "/v1/orgs/globex",
        Some(json!({"routing_name": "acme"})),
        StatusCode::OK,
    )
    .await;
    let (status, body) = get(
        &app,
        &admin,
        "/v1/workspaces",
        &[("host", "acme.mcpg.test")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(slugs(&body), ["globex-team"]);

    // Nor can a tenants file or an archive restore create an org whose slug is `acme`.
    let response = app
        .admin(Method::POST, "/v1/admin/tenants/apply")
        .header("content-type", "application/yaml")
        .body("tenants:\n  - id: acme\n    display_name: Another Acme\n")
        .send()
        .await
        .expect("sent");
    let (status, body) = split(response).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("routing name"), "{body}");
    app.expect(Method::GET, "/v1/orgs/acme", None, StatusCode::NOT_FOUND)
        .await;
}
