//! One trust anchor per cluster: replicas sharing a database share its development root
//! (stored there sealed under the KEK), whichever data directory each runs in.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcpg_auth::{Application, KekSource, Settings};
use mcpg_license_core::{PublicKey, SigningKey, TrustStore, Validity};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, now, on_both_backends, spawn_app_with};

on_both_backends!(
    replicas_sharing_a_database_share_one_root_and_one_certificate,
    a_replica_with_another_kek_refuses_to_start_with_one_line,
    a_data_dir_root_is_adopted_and_then_wins_over_other_data_dirs,
    a_kek_that_cannot_open_the_stored_keys_stores_no_root,
    replicas_with_different_issuers_each_get_a_certificate_and_stop_there,
);

/// Writes a KEK file (64 hex characters) into `dir`.
pub(crate) fn kek_file(dir: &Path, byte: u8) -> PathBuf {
    let path = dir.join("cluster.kek");
    std::fs::write(&path, hex_of(byte)).expect("kek file");
    path
}

fn hex_of(byte: u8) -> String {
    format!("{byte:02x}").repeat(32)
}

/// Writes `root` as the data directory's development root secret (0600).
fn write_root_file(dir: &Path, root: &SigningKey) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join("dev-root.secret.paserk"))
        .expect("root file");
    file.write_all(root.to_paserk().as_bytes())
        .expect("root written");
}

/// The settings of another replica of `first`: its own data directory and listeners, the
/// same database (SQLite: `first`'s file through `--database-url`).
fn replica_settings(first: &TestApp, data_dir: &Path) -> Settings {
    let mut settings = first.settings.clone();
    if settings.database_url.is_none() {
        let file = first.settings.data_dir.join("mcpg.db");
        settings.database_url = Some(format!("sqlite://{}", file.display()).into());
    }
    settings.data_dir = data_dir.to_owned();
    settings.bootstrap_token_file = Some(data_dir.join("bootstrap.token"));
    settings
}

/// Starts another replica of `first` in `data_dir`, sharing `first`'s admin token.
pub(crate) async fn spawn_replica(first: &TestApp, data_dir: tempfile::TempDir) -> TestApp {
    let mut replica = empty_replica(first, data_dir);
    replica.start().await;
    replica
}

/// A replica of `first` in `data_dir`, not started yet.
fn empty_replica(first: &TestApp, data_dir: tempfile::TempDir) -> TestApp {
    let settings = replica_settings(first, data_dir.path());
    TestApp {
        address: String::new(),
        ops_address: String::new(),
        issuer: String::new(),
        client: reqwest::Client::new(),
        admin_token: first.admin_token.clone(),
        data_dir,
        settings,
        clock: None,
        stop: None,
        server: None,
        database: None,
    }
}

async fn root_kids(app: &TestApp) -> Value {
    let response = app
        .client
        .get(format!("{}/.well-known/mcpg-federation", app.address))
        .send()
        .await
        .expect("metadata");
    assert_eq!(response.status(), StatusCode::OK);
    let meta: Value = response.json().await.expect("json");
    meta["root_kids"].clone()
}

fn root_file(app: &TestApp) -> String {
    std::fs::read_to_string(app.root_public_path()).expect("public root file")
}

/// Asserts a token `app` issues chains to the roots `trust` pins.
async fn assert_token_chains(app: &TestApp, credential: &str, trust: &TrustStore) -> Value {
    let body = app.token_ok(credential).await;
    let issuer = trust
        .verify_certificate(
            body["issuer_certificate"].as_str().expect("certificate"),
            now(),
            Validity::Strict,
        )
        .expect("the certificate chains to the pinned root");
    issuer
        .verify_jwt(
            body["token"].as_str().expect("token"),
            now(),
            Validity::Strict,
        )
        .expect("the token verifies");
    body
}

async fn replicas_sharing_a_database_share_one_root_and_one_certificate(backend: Backend) {
    let keks = tempfile::tempdir().expect("tempdir");
    let kek = kek_file(keks.path(), 0x11);
    let mut first = spawn_app_with(backend, |s| s.kek = KekSource::File(kek.clone())).await;
    let credential = first.gateway("acme").await;
    let mut second = spawn_replica(&first, tempfile::tempdir().expect("tempdir")).await;
    assert_eq!(root_kids(&first).await, root_kids(&second).await);
    assert_eq!(root_file(&first), root_file(&second));
    let from_first = assert_token_chains(&first, &credential, &first.trust_store()).await;
    let from_second = assert_token_chains(&second, &credential, &first.trust_store()).await;
    // Both reload every 100 ms: with one root the certificate is not due, so neither
    // re-certifies the shared key on reload.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = second.token_ok(&credential).await;
    assert_eq!(
        from_first["issuer_certificate"],
        from_second["issuer_certificate"]
    );
    assert_eq!(
        later["issuer_certificate"],
        from_first["issuer_certificate"]
    );
    second.stop().await;
    first.stop().await;
}

async fn a_replica_with_another_kek_refuses_to_start_with_one_line(backend: Backend) {
    let keks = tempfile::tempdir().expect("tempdir");
    let kek = kek_file(keks.path(), 0x22);
    let mut first = spawn_app_with(backend, |s| s.kek = KekSource::File(kek.clone())).await;
    let other_dir = tempfile::tempdir().expect("tempdir");
    let mut settings = replica_settings(&first, other_dir.path());
    settings.kek = KekSource::File(kek_file(other_dir.path(), 0x33));
    let error = match Application::build(settings).await {
        Ok(_) => panic!("a replica with another KEK started"),
        Err(error) => format!("{error:#}"),
    };
    assert!(!error.contains('\n'), "one line: {error}");
    assert!(error.contains("development root"), "{error}");
    assert!(error.contains("key-encryption key"), "{error}");
    assert!(error.contains("--kek-file or MCPG_KEK"), "{error}");
    assert!(
        !other_dir.path().join("dev-root.public.paserk").exists(),
        "no root file for a root it could not open"
    );
    first.stop().await;
}

async fn a_data_dir_root_is_adopted_and_then_wins_over_other_data_dirs(backend: Backend) {
    let keks = tempfile::tempdir().expect("tempdir");
    let kek = kek_file(keks.path(), 0x44);
    let old_dir = tempfile::tempdir().expect("tempdir");
    let old_root = SigningKey::generate().expect("rng");
    write_root_file(old_dir.path(), &old_root);
    let dir = old_dir.path().to_owned();
    let mut first = spawn_app_with(backend, |s| {
        s.kek = KekSource::File(kek.clone());
        s.data_dir = dir;
    })
    .await;
    assert_eq!(
        root_kids(&first).await,
        serde_json::json!([old_root.kid().as_str()])
    );
    let credential = first.gateway("acme").await;
    let pinned = TrustStore::new([old_root.public_key().clone()]);
    assert_token_chains(&first, &credential, &pinned).await;
    // A replica whose data dir holds another root from before: the database's root wins.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other_root = SigningKey::generate().expect("rng");
    write_root_file(other_dir.path(), &other_root);
    let mut second = spawn_replica(&first, other_dir).await;
    assert_eq!(root_kids(&second).await, root_kids(&first).await);
    let public = PublicKey::from_paserk(root_file(&second).trim()).expect("public root");
    assert_eq!(&public, old_root.public_key());
    assert_token_chains(&second, &credential, &pinned).await;
    second.stop().await;
    first.stop().await;
}

/// Runs `sql` on `app`'s database as its owner (SQLite: the file); returns rows affected.
pub(crate) async fn run_sql(app: &TestApp, sql: &str) -> u64 {
    use sqlx::Connection;
    match &app.database {
        Some(db) => {
            let mut conn = sqlx::PgConnection::connect(&db.superuser_url)
                .await
                .expect("superuser connection");
            sqlx::query(sql)
                .execute(&mut conn)
                .await
                .expect("sql")
                .rows_affected()
        }
        None => {
            let url = format!(
                "sqlite://{}",
                app.settings.data_dir.join("mcpg.db").display()
            );
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("sqlite connection");
            sqlx::query(sql)
                .execute(&mut conn)
                .await
                .expect("sql")
                .rows_affected()
        }
    }
}

async fn a_kek_that_cannot_open_the_stored_keys_stores_no_root(backend: Backend) {
    let keks = tempfile::tempdir().expect("tempdir");
    let kek = kek_file(keks.path(), 0x55);
    let mut first = spawn_app_with(backend, |s| s.kek = KekSource::File(kek.clone())).await;
    first.stop().await;
    // A database from before roots were stored: keys, no root.
    assert_eq!(run_sql(&first, "DELETE FROM development_root").await, 1);
    let other_dir = tempfile::tempdir().expect("tempdir");
    let mut settings = replica_settings(&first, other_dir.path());
    settings.kek = KekSource::File(kek_file(other_dir.path(), 0x66));
    let error = match Application::build(settings).await {
        Ok(_) => panic!("a replica with another KEK started"),
        Err(error) => format!("{error:#}"),
    };
    assert!(!error.contains('\n'), "one line: {error}");
    assert!(error.contains("signing key"), "{error}");
    assert!(error.contains("key-encryption key"), "{error}");
    assert_eq!(
        run_sql(&first, "DELETE FROM development_root").await,
        0,
        "no root sealed under the wrong KEK"
    );
}

/// Replicas sharing a database should run with one `--issuer`; while they do not (an
/// operator changing it replica by replica), each gets a certificate of the shared key for
/// its own issuer, beside the other's, instead of taking the primary back at every reload.
async fn replicas_with_different_issuers_each_get_a_certificate_and_stop_there(backend: Backend) {
    let keks = tempfile::tempdir().expect("tempdir");
    let kek = kek_file(keks.path(), 0x33);
    let mut first = spawn_app_with(backend, |s| s.kek = KekSource::File(kek.clone())).await;
    let credential = first.gateway("acme").await;
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut settings = replica_settings(&first, data_dir.path());
    settings.issuer = Some("http://replica-b.test".to_owned());
    let mut second = TestApp {
        settings,
        ..empty_replica(&first, data_dir)
    };
    second.start().await;
    let trust = first.trust_store();
    let from_first = assert_token_chains(&first, &credential, &trust).await;
    let from_second = assert_token_chains(&second, &credential, &trust).await;
    assert_ne!(
        from_first["issuer_certificate"],
        from_second["issuer_certificate"]
    );
    let kid = from_first["kid"].as_str().expect("kid").to_owned();
    let count = || async { crate::rollover::listed(&first, &kid).await.len() };
    assert_eq!(count().await, 2, "the primary and the second issuer's");
    // Both reload every 100 ms: neither certifies again.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(count().await, 2);
    assert_eq!(
        first.token_ok(&credential).await["issuer_certificate"],
        from_first["issuer_certificate"]
    );
    assert_eq!(
        second.token_ok(&credential).await["issuer_certificate"],
        from_second["issuer_certificate"]
    );
    second.stop().await;
    first.stop().await;
}
