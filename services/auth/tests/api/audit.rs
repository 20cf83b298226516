//! The per-org audit chain over HTTP: every mutation appends to its org's chain, concurrent
//! writers leave no gap, roles decide who reads, token issuance is recorded in batches, and
//! checkpoints are signed periodically and on demand and verify offline. Tampering:
//! `audit_tamper.rs`.

use mcpg_license_core::audit::{AuditRecord, Checkpoint};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, on_both_backends, spawn_app, spawn_app_with};
use crate::rbac::{call, grant, user_token};

on_both_backends!(
    every_mutation_appends_to_its_own_orgs_chain,
    concurrent_mutations_leave_a_gap_free_chain_that_verifies,
    issued_tokens_are_recorded_in_batches_per_org,
    a_checkpoint_is_signed_on_demand_and_verifies_offline,
    readers_and_actors_follow_roles_and_impersonation,
    heads_are_checkpointed_periodically_and_issuance_is_flushed_at_shutdown,
);

pub(crate) async fn entries(app: &TestApp, org: &str, query: &str) -> Vec<AuditRecord> {
    let body = app
        .expect(
            Method::GET,
            &format!("/v1/orgs/{org}/audit?limit=1000{query}"),
            None,
            StatusCode::OK,
        )
        .await;
    serde_json::from_value(body["entries"].clone()).expect("audit entries")
}

pub(crate) async fn verify(app: &TestApp, org: &str) -> Value {
    app.expect(
        Method::GET,
        &format!("/v1/orgs/{org}/audit/verify"),
        None,
        StatusCode::OK,
    )
    .await
}

pub(crate) async fn org_id(app: &TestApp, org: &str) -> String {
    let body = app
        .expect(
            Method::GET,
            &format!("/v1/orgs/{org}"),
            None,
            StatusCode::OK,
        )
        .await;
    body["id"].as_str().expect("org id").to_owned()
}

async fn every_mutation_appends_to_its_own_orgs_chain(backend: Backend) {
    let app = spawn_app(backend).await;
    let credential = app.gateway("acme").await;
    app.token_ok(&credential).await;
    let response = app
        .admin(Method::POST, "/v1/orgs/acme/workspaces")
        .header("x-request-id", "req-audit-1")
        .json(&json!({"slug": "second"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    app.create_org("globex").await;

    let acme = entries(&app, "acme", "").await;
    let actions: Vec<&str> = acme.iter().map(|r| r.entry.action.as_str()).collect();
    assert_eq!(
        &actions[..6],
        [
            "org.create",
            "license.set",
            "workspace.create",
            "environment.create",
            "gateway.register",
            "workspace.create"
        ]
    );
    let seqs: Vec<i64> = acme.iter().map(|r| r.entry.seq).collect();
    assert_eq!(seqs[..6], [1, 2, 3, 4, 5, 6]);
    let acme_id = org_id(&app, "acme").await;
    assert!(acme.iter().all(|r| r.entry.org_id == acme_id));
    assert!(acme[0].entry.actor.starts_with("admin:"), "{:?}", acme[0]);
    assert_eq!(acme[5].entry.request_id, "req-audit-1");
    assert_eq!(acme[5].entry.target, "second");
    assert!(
        !acme[0].entry.request_id.is_empty(),
        "a request id is generated"
    );
    assert_eq!(acme[1].prev_hash, acme[0].hash);

    let filtered = entries(&app, "acme", "&action=workspace.create").await;
    assert_eq!(filtered.len(), 2);
    let page = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/audit?limit=2&after_seq=1",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(page["entries"][0]["seq"], 2);
    assert_eq!(page["next_cursor"], "3");

    let globex = entries(&app, "globex", "").await;
    assert_eq!(globex.len(), 1, "two orgs' chains never mix");
    assert_eq!(globex[0].entry.seq, 1);
    assert_eq!(globex[0].entry.action, "org.create");
    for org in ["acme", "globex"] {
        let report = verify(&app, org).await;
        assert_eq!(report["ok"], true, "{org}: {report}");
        assert_eq!(report["first_bad_seq"], Value::Null);
    }
    let report = verify(&app, "acme").await;
    let last = entries(&app, "acme", "").await;
    let head = last.last().expect("entries");
    assert_eq!(report["head_seq"], head.entry.seq);
    assert_eq!(report["head_hash"], head.hash.as_str());
}

async fn concurrent_mutations_leave_a_gap_free_chain_that_verifies(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_org("acme").await;
    app.set_license(
        "acme",
        json!({"tier": "team", "limits": {"max_workspaces": 100}, "valid_for_days": 30}),
    )
    .await;
    let writers = (0..50).map(|n| {
        let request = app
            .admin(Method::POST, "/v1/orgs/acme/workspaces")
            .json(&json!({"slug": format!("ws-{n}")}));
        async move { request.send().await.expect("request").status() }
    });
    let statuses = futures_join_all(writers).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );

    let mut seqs = Vec::new();
    let mut cursor = 0;
    loop {
        let page = app
            .expect(
                Method::GET,
                &format!("/v1/orgs/acme/audit?limit=20&after_seq={cursor}"),
                None,
                StatusCode::OK,
            )
            .await;
        let records: Vec<AuditRecord> =
            serde_json::from_value(page["entries"].clone()).expect("entries");
        seqs.extend(records.iter().map(|r| r.entry.seq));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.parse().expect("numeric cursor"),
            None => break,
        }
    }
    assert_eq!(
        seqs,
        (1..=52).collect::<Vec<i64>>(),
        "org, license, 50 workspaces"
    );
    let report = verify(&app, "acme").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["checked"], 52);
}

/// Runs the futures concurrently and collects their outputs in order.
async fn futures_join_all<
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
>(
    futures: impl Iterator<Item = F>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

async fn issued_tokens_are_recorded_in_batches_per_org(backend: Backend) {
    let app = spawn_app(backend).await;
    let credential = app.gateway("acme").await;
    let mut jtis = Vec::new();
    for _ in 0..5 {
        let token = app.token_ok(&credential).await;
        let claims = app
            .key_set()
            .await
            .verify_jwt(
                token["token"].as_str().expect("token"),
                &app.issuer,
                crate::helpers::now(),
            )
            .ok();
        jtis.extend(claims.map(|c| c.jti));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let issued = loop {
        let issued = entries(&app, "acme", "&action=token.issued").await;
        let counted: i64 = issued
            .iter()
            .map(|r| {
                let details: Value = serde_json::from_str(&r.details).expect("details JSON");
                details["count"].as_i64().expect("count")
            })
            .sum();
        if counted == 5 {
            break issued;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {counted} of 5 recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        issued.len() <= 3,
        "batched, not one entry per token: {}",
        issued.len()
    );
    let details: Value = serde_json::from_str(&issued[0].details).expect("details");
    assert_eq!(details["gateways"].as_array().map(Vec::len), Some(1));
    assert_eq!(issued[0].entry.actor, "system");
    if issued.len() == 1 && jtis.len() == 5 {
        assert_eq!(details["jti_sha256"], mcpg_auth::jti_digest(&jtis).as_str());
    }
    assert_eq!(verify(&app, "acme").await["ok"], true);
}

async fn a_checkpoint_is_signed_on_demand_and_verifies_offline(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    let (status, body) = app
        .send(Method::GET, "/v1/orgs/acme/audit/checkpoints/latest", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let signed = app
        .expect(
            Method::POST,
            "/v1/orgs/acme/audit/checkpoints",
            None,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(signed["seq"], 5);
    let latest = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/audit/checkpoints/latest",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(latest["note"], signed["note"]);
    let note = latest["note"].as_str().expect("note");
    let kid = latest["key_id"].as_str().expect("key id");
    let jwks = app.jwks().await;
    let key = jwks
        .keys
        .iter()
        .map(|jwk| jwk.public_key().expect("key"))
        .find(|key| key.kid().as_str() == kid)
        .expect("the checkpoint's key is published");
    let checkpoint = Checkpoint::verify(note, &key).expect("signature verifies");
    assert_eq!(checkpoint.seq, 5);

    // More history after the checkpoint: the export still matches it.
    app.expect(
        Method::POST,
        "/v1/orgs/acme/workspaces",
        Some(json!({"slug": "later"})),
        StatusCode::CREATED,
    )
    .await;
    let response = app
        .admin(Method::GET, "/v1/orgs/acme/audit/export")
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.expect("body");
    let records: Vec<AuditRecord> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("NDJSON line"))
        .collect();
    assert_eq!(records.len(), 6);
    let acme = org_id(&app, "acme").await;
    assert_eq!(checkpoint.check_export(&acme, &records), Ok(6));
}

async fn readers_and_actors_follow_roles_and_impersonation(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    let enterprise =
        json!({"tier": "enterprise", "limits": {"max_gateways": 10}, "valid_for_days": 30});
    app.set_license("acme", enterprise).await;
    let viewer = user_token(&app, "acme", "vera@acme.test").await;
    let operator = user_token(&app, "acme", "otto@acme.test").await;
    let nobody = user_token(&app, "acme", "nina@acme.test").await;
    let env = json!({"workspace": "main", "environment": "prod"});
    let bound = grant(&app, "acme", "vera@acme.test", "viewer", env).await;
    assert_eq!(bound["role"], "viewer", "{bound}");
    let ws = json!({"workspace": "main"});
    let bound = grant(&app, "acme", "otto@acme.test", "operator", ws).await;
    assert_eq!(bound["role"], "operator", "{bound}");

    let read = |token: String, path: &'static str| {
        let app = &app;
        async move { call(app, &token, Method::GET, path, None).await.0 }
    };
    assert_eq!(
        read(viewer.clone(), "/v1/orgs/acme/audit").await,
        StatusCode::OK
    );
    assert_eq!(
        read(viewer.clone(), "/v1/orgs/acme/audit/verify").await,
        StatusCode::OK
    );
    assert_eq!(
        read(operator.clone(), "/v1/orgs/acme/audit").await,
        StatusCode::OK
    );
    assert_eq!(
        read(nobody, "/v1/orgs/acme/audit").await,
        StatusCode::NOT_FOUND,
        "a user with no role does not see the org"
    );
    let path = "/v1/orgs/acme/audit/checkpoints";
    let (status, _) = call(&app, &viewer, Method::POST, path, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only an org admin signs checkpoints"
    );

    // The operator's change names the user; the impersonating admin's names both tokens.
    let (status, body) = call(
        &app,
        &operator,
        Method::POST,
        "/v1/orgs/acme/workspaces/main/environments/prod/gateways",
        Some(json!({"name": "by-operator"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let session = app
        .expect(
            Method::POST,
            "/v1/admin/impersonations",
            Some(json!({"org": "acme", "minutes": 10, "reason": "ticket 42"})),
            StatusCode::CREATED,
        )
        .await;
    let impersonation = session["token"].as_str().expect("token");
    let body = json!({"slug": "support"});
    let path = "/v1/orgs/acme/workspaces";
    let (status, _) = call(&app, impersonation, Method::POST, path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);

    let chain = entries(&app, "acme", "").await;
    let by_action = |action: &str| -> Vec<AuditRecord> {
        chain
            .iter()
            .filter(|r| r.entry.action == action)
            .cloned()
            .collect()
    };
    let registered = by_action("gateway.register");
    assert!(
        registered[1].entry.actor.starts_with("user:"),
        "{:?}",
        registered[1]
    );
    let started = by_action("impersonation.start");
    assert_eq!(started.len(), 1);
    assert!(started[0].entry.actor.starts_with("admin:"));
    assert!(started[0].details.contains("ticket 42"));
    let support = chain
        .iter()
        .find(|r| r.entry.target == "support")
        .expect("the impersonated change");
    let session_id = session["id"].as_str().expect("impersonation id");
    let suffix = format!(" as impersonation:{session_id}");
    assert!(
        support.entry.actor.ends_with(&suffix),
        "{}",
        support.entry.actor
    );
    assert_eq!(by_action("rbac.grant").len(), 2);
    assert_eq!(by_action("user_token.create").len(), 3);
    assert_eq!(by_action("license.set").len(), 2);
    assert_eq!(verify(&app, "acme").await["ok"], true);
}

async fn heads_are_checkpointed_periodically_and_issuance_is_flushed_at_shutdown(backend: Backend) {
    let mut app = spawn_app_with(backend, |settings| {
        settings.audit_checkpoint_interval = std::time::Duration::from_secs(1);
    })
    .await;
    let credential = app.gateway("acme").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let checkpoint = loop {
        let (status, body) = app
            .send(Method::GET, "/v1/orgs/acme/audit/checkpoints/latest", None)
            .await;
        if status == StatusCode::OK && body["seq"] == 5 {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no periodic checkpoint: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        checkpoint["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("mcpg-audit/"))
    );

    for _ in 0..3 {
        app.token_ok(&credential).await;
    }
    app.stop().await;
    app.start().await;
    let issued: i64 = entries(&app, "acme", "&action=token.issued")
        .await
        .iter()
        .map(|r| {
            let details: Value = serde_json::from_str(&r.details).expect("details");
            details["count"].as_i64().expect("count")
        })
        .sum();
    assert_eq!(
        issued, 3,
        "every issued token is recorded by the time the server stopped"
    );
    assert_eq!(verify(&app, "acme").await["ok"], true);
}
