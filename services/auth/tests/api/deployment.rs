//! Deployment modes: an externally certified key, replicas sharing one database, SIGTERM,
//! per-org rate limits.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcpg_auth::Application;
use mcpg_auth::ExternalKey;
use mcpg_license_core::{Bounds, IssuerCertificate, SigningKey, TrustStore, Validity};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, assert_error, now, on_both_backends, spawn_app, spawn_app_with};

on_both_backends!(replicas_sharing_a_database_sign_with_the_same_rotated_key);

#[tokio::test]
async fn an_externally_certified_key_signs_and_cannot_be_rotated_in_place() {
    let root = SigningKey::generate().expect("rng");
    let key = SigningKey::generate().expect("rng");
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let certificate = IssuerCertificate {
        cid: "cert-1".into(),
        issuer: "http://127.0.0.1:8421".into(),
        key: key.public_key().clone(),
        iat: now(),
        nbf: now() - 60,
        exp: now() + 30 * 86_400,
        bounds: Bounds::unbounded(),
    }
    .sign(&root)
    .expect("certificate");
    let key_path = keys_dir.path().join("signing.paserk");
    let cert_path = keys_dir.path().join("signing.cert");
    std::fs::write(&key_path, key.to_paserk().as_bytes()).expect("write key");
    std::fs::write(&cert_path, &certificate).expect("write cert");
    let root_path = keys_dir.path().join("root.public.paserk");
    std::fs::write(&root_path, root.public_key().to_paserk()).expect("write root");
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.external_key = Some(ExternalKey {
            signing_key: key_path,
            passphrase_file: None,
            certificates: vec![cert_path],
        });
        settings.trusted_roots = vec![root_path];
    })
    .await;
    assert!(
        !app.root_public_path().exists(),
        "no development root with an external key"
    );
    let credential = app.gateway("acme").await;
    let body = app.token_ok(&credential).await;
    assert_eq!(body["kid"], key.kid().as_str());
    assert_eq!(body["issuer_certificate"], certificate.as_str());
    let trust = TrustStore::new([root.public_key().clone()]);
    let issuer = trust
        .verify_certificate(&certificate, now(), Validity::Strict)
        .expect("certificate chains to the offline root");
    issuer
        .verify_jwt(
            body["token"].as_str().expect("token"),
            now(),
            Validity::Strict,
        )
        .expect("token verifies");
    let (status, error) = app.send(Method::POST, "/v1/admin/keys/rotate", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&error, "conflict");
    // The refusal says what to do instead.
    assert!(
        error.to_string().contains("mcpg-ctl keys import"),
        "{error}"
    );
    let meta: serde_json::Value = app
        .client
        .get(format!("{}/.well-known/mcpg-federation", app.address))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    assert_eq!(meta["root_kids"], json!([root.kid().as_str()]));
}

async fn replicas_sharing_a_database_sign_with_the_same_rotated_key(backend: Backend) {
    let first = spawn_app(backend).await;
    let credential = first.gateway("acme").await;
    let second = Application::build(first.settings.clone())
        .await
        .expect("second replica builds");
    let second_address = format!("http://127.0.0.1:{}", second.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(second.run_until(async move {
        let _ = stopped.await;
    }));
    let token_from_second = || async {
        let response = first
            .client
            .post(format!("{second_address}/v1/federation/token"))
            .bearer_auth(&credential)
            .send()
            .await
            .expect("second replica answers");
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<serde_json::Value>().await.expect("json")
    };
    let before = token_from_second().await;
    assert_eq!(before["kid"], first.token_ok(&credential).await["kid"]);
    let pending = first
        .expect(
            Method::POST,
            "/v1/admin/keys/rotate",
            None,
            StatusCode::ACCEPTED,
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = token_from_second().await;
        if body["kid"] == pending["kid"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "second replica never switched to the rotated key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    server
        .await
        .expect("task")
        .expect("second replica stops cleanly");
}

#[tokio::test]
async fn an_org_over_its_request_rate_gets_429_with_retry_after() {
    let app = spawn_app(Backend::Sqlite).await;
    let credential = app.gateway("acme").await;
    app.set_license("acme", json!({"tier": "team", "limits": {"rps": 2}}))
        .await;
    let mut limited = None;
    for _ in 0..20 {
        let response = app
            .client
            .post(format!("{}/v1/federation/token", app.address))
            .bearer_auth(&credential)
            .send()
            .await
            .expect("sent");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = limited.expect("the limit was reached");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_error(&body, "rate_limited");
}

#[tokio::test]
async fn sigterm_stops_the_binary_cleanly() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpg-auth"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--ops-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("MCPG_LOG", "warn")
        .env_remove("MCPG_KEK")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "binary did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "binary did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "clean exit after SIGTERM: {exit}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut stdout)
        .expect("read");
    assert!(
        stdout.contains("mcpg_pat_"),
        "the bootstrap token is printed once on stdout"
    );
}

/// A bootstrap token file that cannot be written fails the first start *before* the one-time
/// token is issued: the next start with a good path still gets it.
#[tokio::test]
async fn an_unwritable_bootstrap_token_file_does_not_burn_the_token() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut settings = crate::helpers::test_settings(data_dir.path());
    settings.bootstrap_token_file = Some(data_dir.path().join("missing-dir").join("token"));
    let error = match Application::build(settings.clone()).await {
        Ok(_) => panic!("the start must fail when the token file cannot be written"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("bootstrap token file"), "{error}");
    assert!(
        std::fs::read_dir(data_dir.path())
            .expect("data dir")
            .filter_map(Result::ok)
            .all(|entry| !entry.file_name().to_string_lossy().contains(".tmp")),
        "no staged token file is left behind"
    );

    let good = data_dir.path().join("token");
    settings.bootstrap_token_file = Some(good.clone());
    let application = Application::build(settings.clone())
        .await
        .expect("the second start succeeds");
    drop(application);
    let token = std::fs::read_to_string(&good).expect("the token was written on the second start");
    assert!(token.trim().starts_with("mcpg_pat_"), "{token}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&good).expect("metadata").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // A third start neither rewrites nor needs the file.
    std::fs::remove_file(&good).expect("remove");
    settings.bootstrap_token_file = Some(data_dir.path().join("missing-dir").join("token"));
    Application::build(settings)
        .await
        .expect("later starts do not touch the token file");
}
