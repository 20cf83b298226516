//! `mcpg-auth backup` and `restore`, run as real processes: a database filled through the
//! API, backed up, restored into a fresh database and served again shows the same orgs,
//! licenses, gateways, bindings and audit chains, and old credentials still work. The
//! refusals are in `backup_refusals.rs`.

use std::path::Path;
use std::process::Command;

use mcpg_auth::KekSource;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::audit::verify;
use crate::helpers::{Backend, TestApp, TestDatabase, on_both_backends, spawn_app, test_settings};
use crate::rbac::{call, grant, user_token};

on_both_backends!(a_restored_backup_serves_the_same_data_and_old_credentials);

/// The orgs every test fills.
pub(crate) const ORGS: [&str; 3] = ["acme", "globex", "initech"];

/// Runs `mcpg-auth` with `args` and no database variables from the environment; returns
/// whether it succeeded and its stderr, which never shows a panic.
pub(crate) fn mcpg_auth(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mcpg-auth"))
        .args(args)
        .env_remove("MCPG_DATABASE_URL")
        .env_remove("MCPG_MIGRATE_DATABASE_URL")
        .env_remove("MCPG_DATA_DIR")
        .env_remove("MCPG_CONFIG")
        .output()
        .expect("mcpg-auth runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // Shown when a test fails (the harness captures it otherwise).
    eprintln!("mcpg-auth {}:\n{stderr}", args.first().unwrap_or(&""));
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    if !output.status.success() {
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "one error line: {stderr}");
    }
    (output.status.success(), stderr)
}

/// Fills `app` through the API: three orgs with licenses, workspaces, environments,
/// plugin sets and gateways, an org API token, an RBAC binding with a user token, tokens issued and a
/// signed checkpoint. Returns each org's gateway credential and its API token.
pub(crate) async fn populate(app: &TestApp) -> Vec<(String, String)> {
    let mut credentials = Vec::new();
    for org in ORGS {
        let credential = app.gateway(org).await;
        app.register_gateway(org, "gw-2").await;
        app.expect(
            Method::PUT,
            &format!("/v1/orgs/{org}/workspaces/main/plugin-set"),
            Some(json!({"plugins": [{"id": "policy.cedar", "config": {"org": org}}]})),
            StatusCode::OK,
        )
        .await;
        app.token_ok(&credential).await;
        let token = app
            .expect(
                Method::POST,
                "/v1/admin/tokens",
                Some(json!({"name": "ci", "org": org})),
                StatusCode::CREATED,
            )
            .await;
        let token = token["token"].as_str().expect("token").to_owned();
        credentials.push((credential, token));
    }
    grant(app, "acme", "alice@acme.com", "admin", json!({})).await;
    user_token(app, "acme", "alice@acme.com").await;
    app.expect(
        Method::POST,
        "/v1/orgs/acme/audit/checkpoints",
        None,
        StatusCode::CREATED,
    )
    .await;
    credentials
}

/// Signs a revocation list (serial 1, revoking a license id that is not in use) with the
/// development root whose secret is in `app`'s data dir, uploads it, and returns its text.
async fn upload_revocation_list(app: &TestApp) -> String {
    let secret = std::fs::read_to_string(app.data_dir.path().join("dev-root.secret.paserk"))
        .expect("development root secret");
    let root = mcpg_license_core::SigningKey::from_paserk(secret.trim()).expect("root");
    let list = mcpg_license_core::RevocationList {
        serial: 1,
        iat: crate::helpers::now(),
        certificates: Default::default(),
        licenses: ["lic_revoked_before_the_backup".to_owned()]
            .into_iter()
            .collect(),
    }
    .sign(&root)
    .expect("list signs");
    let response = app
        .admin(Method::PUT, "/v1/admin/revocations")
        .body(list.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{:?}",
        response.text().await
    );
    assert_eq!(published_revocations(app).await, list);
    list
}

/// The revocation list `app` publishes to gateways.
async fn published_revocations(app: &TestApp) -> String {
    let response = app
        .client
        .get(format!("{}/.well-known/mcpg-revocations", app.address))
        .send()
        .await
        .expect("revocations");
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.expect("text")
}

/// What the API shows of every org: the org, its license, gateways, bindings, audit chain
/// verification and latest checkpoint.
pub(crate) async fn snapshot(app: &TestApp) -> Value {
    let get =
        |path: String| async move { app.expect(Method::GET, &path, None, StatusCode::OK).await };
    let mut orgs = serde_json::Map::new();
    for org in ORGS {
        let report = verify(app, org).await;
        assert_eq!(report["ok"], true, "{org}: {report}");
        orgs.insert(
            org.to_owned(),
            json!({
                "org": get(format!("/v1/orgs/{org}")).await,
                "license": get(format!("/v1/orgs/{org}/license")).await,
                "gateways": get(format!("/v1/orgs/{org}/workspaces/main/environments/prod/gateways")).await,
                "bindings": get(format!("/v1/orgs/{org}/rbac/bindings")).await,
                "plugin_set": get(format!("/v1/orgs/{org}/workspaces/main/plugin-set")).await,
                "audit": report,
            }),
        );
    }
    let latest = get("/v1/orgs/acme/audit/checkpoints/latest".into()).await;
    json!({"list": get("/v1/orgs".into()).await, "orgs": orgs, "checkpoint": latest})
}

/// The database flags of a test app: its data dir, or a PostgreSQL URL and owner URL.
pub(crate) fn database_flags(
    data_dir: &Path,
    url: Option<&str>,
    owner_url: Option<&str>,
) -> Vec<String> {
    let mut flags = vec!["--data-dir".to_owned(), data_dir.display().to_string()];
    for (flag, value) in [
        ("--database-url", url),
        ("--migrate-database-url", owner_url),
    ] {
        if let Some(value) = value {
            flags.extend([flag.to_owned(), value.to_owned()]);
        }
    }
    flags
}

/// A login role made a backup role of `database` by its owner; returns its name and URL.
pub(crate) async fn backup_role(database: &TestDatabase) -> (String, String) {
    let role = format!("mcpg_backup_{}", uuid::Uuid::new_v4().simple());
    let mut superuser = PgConnection::connect(&database.superuser_url)
        .await
        .expect("superuser");
    sqlx::query(&format!("CREATE ROLE {role} LOGIN PASSWORD 'backup-pw'"))
        .execute(&mut superuser)
        .await
        .expect("create role");
    let mut owner = PgConnection::connect(&database.owner_url)
        .await
        .expect("owner");
    sqlx::query("SELECT mcpg_grant_backup_role($1)")
        .bind(&role)
        .execute(&mut owner)
        .await
        .expect("the owner grants the backup role");
    let mut url = reqwest::Url::parse(&database.owner_url).expect("URL");
    url.set_username(&role).expect("user");
    url.set_password(Some("backup-pw")).expect("password");
    (role, url.to_string())
}

/// Drops a role made by [`backup_role`] (its grants live in `database`).
pub(crate) async fn drop_role(database: &TestDatabase, role: &str) {
    let mut superuser = PgConnection::connect(&database.superuser_url)
        .await
        .expect("superuser");
    for statement in [format!("DROP OWNED BY {role}"), format!("DROP ROLE {role}")] {
        let _ = sqlx::query(&statement).execute(&mut superuser).await;
    }
}

/// Starts the service on a restored database with the KEK of `kek_dir`.
async fn serve_restored(
    source: &TestApp,
    data_dir: tempfile::TempDir,
    database: Option<TestDatabase>,
) -> TestApp {
    let mut settings = test_settings(data_dir.path());
    settings.kek = KekSource::File(source.data_dir.path().join("kek"));
    if let Some(db) = &database {
        settings.database_url = Some(db.url.clone().into());
        settings.migrate_database_url = Some(db.owner_url.clone().into());
    }
    let mut app = TestApp {
        address: String::new(),
        ops_address: String::new(),
        issuer: String::new(),
        client: reqwest::Client::new(),
        admin_token: source.admin_token.clone(),
        data_dir,
        settings,
        clock: None,
        stop: None,
        server: None,
        database,
    };
    app.start().await;
    app
}

async fn a_restored_backup_serves_the_same_data_and_old_credentials(backend: Backend) {
    let mut source = spawn_app(backend.clone()).await;
    let credentials = populate(&source).await;
    // A restart flushes token activity, so the snapshot is what the database holds.
    source.stop().await;
    source.start().await;
    let before = snapshot(&source).await;
    let revocations = upload_revocation_list(&source).await;
    source.stop().await;

    let files = tempfile::tempdir().expect("tempdir");
    let file = files.path().join("mcpg.backup");
    let file_arg = file.display().to_string();
    let restored_dir = tempfile::tempdir().expect("tempdir");
    let (target, role) = match (&backend, &source.database) {
        (Backend::Postgres(url), Some(db)) => {
            let (role, role_url) = backup_role(db).await;
            let flags = database_flags(source.data_dir.path(), Some(&role_url), None);
            let (ok, stderr) =
                mcpg_auth(&[&["backup", "--out", &file_arg], &strs(&flags)[..]].concat());
            assert!(ok, "backup as the backup role: {stderr}");
            (Some(TestDatabase::create_for_test(url).await), Some(role))
        }
        _ => {
            let flags = database_flags(source.data_dir.path(), None, None);
            let (ok, stderr) =
                mcpg_auth(&[&["backup", "--out", &file_arg], &strs(&flags)[..]].concat());
            assert!(ok, "backup: {stderr}");
            (None, None)
        }
    };
    assert!(
        std::fs::read_dir(files.path()).expect("dir").count() == 1,
        "no temporary file is left beside the backup"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file)
        .expect("backup")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the backup is private");

    // As documented: the owner's URL alone names a PostgreSQL target.
    let flags = database_flags(
        restored_dir.path(),
        None,
        target.as_ref().map(|db| db.owner_url.as_str()),
    );
    let (ok, stderr) = mcpg_auth(&[&["restore", "--from", &file_arg], &strs(&flags)[..]].concat());
    assert!(ok, "restore: {stderr}");
    assert!(stderr.contains("restored"), "a summary: {stderr}");

    let mut restored = serve_restored(&source, restored_dir, target).await;
    assert_eq!(snapshot(&restored).await, before);
    assert_eq!(
        published_revocations(&restored).await,
        revocations,
        "the revocation list in force is restored"
    );
    for (org, (credential, token)) in ORGS.iter().zip(&credentials) {
        restored.token_ok(credential).await;
        let (status, body) = call(
            &restored,
            token,
            Method::GET,
            &format!("/v1/orgs/{org}"),
            None,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{org}'s API token still works: {body}"
        );
    }
    restored.stop().await;
    if let (Some(role), Some(db)) = (role, &source.database) {
        drop_role(db, &role).await;
    }
}

/// `&str`s of owned flags.
pub(crate) fn strs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}
