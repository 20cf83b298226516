//! Durability: a restart keeps data and keys; `kill -9` loses no acknowledged update.

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, TestDatabase, on_both_backends, spawn_app};

on_both_backends!(
    a_restart_keeps_data_keys_and_credentials,
    kill_9_during_license_updates_loses_no_acknowledged_update,
);

async fn a_restart_keeps_data_keys_and_credentials(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let credential = app.gateway("acme").await;
    let before = app.token_ok(&credential).await;
    let jwks_before = app.jwks().await;
    let root_before = std::fs::read_to_string(app.root_public_path()).expect("root");
    app.stop().await;
    app.start().await;
    let after = app.token_ok(&credential).await;
    assert_eq!(
        after["kid"], before["kid"],
        "same signing key after restart"
    );
    assert_eq!(after["issuer_certificate"], before["issuer_certificate"]);
    assert_eq!(app.jwks().await, jwks_before);
    assert_eq!(
        std::fs::read_to_string(app.root_public_path()).expect("root"),
        root_before
    );
    let license = app
        .expect(Method::GET, "/v1/orgs/acme/license", None, StatusCode::OK)
        .await;
    assert_eq!(license["limits"]["max_gateways"], 10);
    for secret in ["dev-root.secret.paserk", "kek", "bootstrap.token"] {
        let mode = std::fs::metadata(app.data_dir.path().join(secret))
            .expect(secret)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{secret} is private");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn spawn_binary(data_dir: &std::path::Path, port: u16, database: Option<&TestDatabase>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcpg-auth"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--ops-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--bootstrap-token-file")
        .arg(data_dir.join("bootstrap.token"))
        .args(["--org-rps", "0", "--admin-rps", "0"])
        .env("MCPG_LOG", "warn")
        .env_remove("MCPG_KEK")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(database) = database {
        command.args(["--database-url", &database.url]);
        command.args(["--migrate-database-url", &database.owner_url]);
    }
    command.spawn().expect("binary starts")
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {base} did not become ready");
}

async fn kill_9_during_license_updates_loses_no_acknowledged_update(backend: Backend) {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let database = match &backend {
        Backend::Sqlite => None,
        Backend::Postgres(url) => Some(TestDatabase::create_for_test(url).await),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_binary(data_dir.path(), port, database.as_ref());
    wait_ready(&client, &base).await;
    let token = std::fs::read_to_string(data_dir.path().join("bootstrap.token"))
        .expect("token")
        .trim()
        .to_owned();
    let created = client
        .post(format!("{base}/v1/orgs"))
        .bearer_auth(&token)
        .json(&json!({"slug": "acme", "display_name": "Acme"}))
        .send()
        .await
        .expect("org");
    assert_eq!(created.status(), StatusCode::CREATED);

    let acknowledged = Arc::new(AtomicI64::new(0));
    let writer = {
        let (client, base, token, acknowledged) = (
            client.clone(),
            base.clone(),
            token.clone(),
            acknowledged.clone(),
        );
        tokio::spawn(async move {
            for i in 1_i64.. {
                let response = client
                    .put(format!("{base}/v1/orgs/acme/license"))
                    .bearer_auth(&token)
                    .json(&json!({"tier": "team", "limits": {"max_gateways": i}, "valid_for_days": 30}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == StatusCode::OK => {
                        acknowledged.store(i, Ordering::SeqCst)
                    }
                    _ => break,
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().expect("SIGKILL delivered");
    let _ = child.wait();
    writer.await.expect("writer ends when the server dies");
    let acked = acknowledged.load(Ordering::SeqCst);
    assert!(
        acked >= 5,
        "the writer made progress before the kill ({acked})"
    );

    let mut child = spawn_binary(data_dir.path(), port, database.as_ref());
    wait_ready(&client, &base).await;
    let license: serde_json::Value = client
        .get(format!("{base}/v1/orgs/acme/license"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("license")
        .json()
        .await
        .expect("json");
    let _ = child.kill();
    let _ = child.wait();
    let stored = license["limits"]["max_gateways"].as_i64().expect("limit");
    assert!(
        stored == acked || stored == acked + 1,
        "acknowledged {acked}, found {stored}"
    );
    assert_eq!(license["revision"].as_i64(), Some(stored));
    drop(database);
}

#[tokio::test]
async fn a_changed_issuer_gets_fresh_certificates_at_restart() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let credential = app.gateway("acme").await;
    let before = app.token_ok(&credential).await;
    app.stop().await;
    app.settings.issuer = Some("https://auth.example.test".into());
    app.start().await;
    let after = app.token_ok(&credential).await;
    assert_eq!(after["kid"], before["kid"], "same key, new certificate");
    assert_ne!(after["issuer_certificate"], before["issuer_certificate"]);
    let issuer = app
        .trust_store()
        .verify_certificate(
            after["issuer_certificate"].as_str().expect("certificate"),
            crate::helpers::now(),
            mcpg_license_core::Validity::Strict,
        )
        .expect("chains to the dev root");
    assert_eq!(issuer.certificate().issuer, "https://auth.example.test");
    let claims = issuer
        .verify_jwt(
            after["token"].as_str().expect("token"),
            crate::helpers::now(),
            mcpg_license_core::Validity::Strict,
        )
        .expect("token verifies");
    assert_eq!(claims.iss, "https://auth.example.test");
}
