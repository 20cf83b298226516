//! PostgreSQL: cross-tenant access is not something the service's role can grant itself.
//! Policies used to let through every row when the transaction set `mcpg.global = 'on'`,
//! which any SQL on the service's connection could do; now only sessions logged in as a
//! role registered in `mcpg_global_roles` (the migration owner, or the role of
//! `--global-database-url`) see every org's rows.

use reqwest::{Method, StatusCode};
use sqlx::{Connection, PgConnection};

use crate::helpers::{Backend, TestApp, TestDatabase, spawn_app};

const INJECTED: &str = "SELECT count(*) FROM gateways \
     WHERE (SELECT set_config('mcpg.global', 'on', true)) IS NOT NULL";

fn postgres_url() -> Option<String> {
    match Backend::postgres() {
        Some(Backend::Postgres(url)) => Some(url),
        _ => {
            eprintln!("skipped: MCPG_TEST_POSTGRES_URL unset");
            None
        }
    }
}

fn database(app: &TestApp) -> &TestDatabase {
    app.database.as_ref().expect("a PostgreSQL test app")
}

async fn org_id(app: &TestApp, slug: &str) -> String {
    let body = app
        .expect(
            Method::GET,
            &format!("/v1/orgs/{slug}"),
            None,
            StatusCode::OK,
        )
        .await;
    body["id"].as_str().expect("org id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_role_cannot_switch_isolation_off_with_set_config() {
    let Some(url) = postgres_url() else { return };
    let app = spawn_app(Backend::Postgres(url)).await;
    let gateway_a = app.gateway("org-a").await;
    let gateway_b = app.gateway("org-b").await;
    let b = org_id(&app, "org-b").await;
    let mut conn = PgConnection::connect(&database(&app).url)
        .await
        .expect("connect as the service's role");

    let outside: i64 = sqlx::query_scalar(INJECTED)
        .fetch_one(&mut conn)
        .await
        .expect("injected query outside a tenant transaction");
    assert_eq!(outside, 0, "no org's rows without an org scope");

    let mut tx = conn.begin().await.expect("begin");
    sqlx::query("SELECT set_config('mcpg.org_id', $1, true)")
        .bind(&b)
        .execute(&mut *tx)
        .await
        .expect("set org");
    let inside: i64 = sqlx::query_scalar(INJECTED)
        .fetch_one(&mut *tx)
        .await
        .expect("injected query in org B's transaction");
    assert_eq!(inside, 1, "only org B's gateway");
    tx.rollback().await.expect("rollback");

    // Nor for the session, nor by registering itself as a global role.
    sqlx::query("SELECT set_config('mcpg.global', 'on', false)")
        .execute(&mut conn)
        .await
        .expect("session setting");
    let session: i64 = sqlx::query_scalar("SELECT count(*) FROM gateways")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(session, 0);
    let register = sqlx::query("INSERT INTO mcpg_global_roles (role_name) VALUES (session_user)")
        .execute(&mut conn)
        .await;
    assert!(register.is_err(), "the service's role registered itself");

    // The cross-tenant paths still work: token issuance by credential hash, the org list.
    app.token_ok(&gateway_a).await;
    app.token_ok(&gateway_b).await;
    let orgs = app
        .expect(Method::GET, "/v1/orgs", None, StatusCode::OK)
        .await;
    assert!(orgs.to_string().contains("org-a") && orgs.to_string().contains("org-b"));
}

/// Creates a login role on the test's server; returns its name and a URL of the test's
/// database as that role.
async fn create_role(db: &TestDatabase, name_prefix: &str) -> (String, String) {
    let role = format!("{name_prefix}_{}", uuid::Uuid::new_v4().simple());
    let password = uuid::Uuid::new_v4().simple().to_string();
    let mut admin = PgConnection::connect(&db.superuser_url)
        .await
        .expect("superuser");
    sqlx::query(&format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
        .execute(&mut admin)
        .await
        .expect("create role");
    let mut url = reqwest::Url::parse(&db.url).expect("URL");
    url.set_username(&role).expect("username");
    url.set_password(Some(&password)).expect("password");
    (role, url.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_of_its_own_serves_the_cross_tenant_paths_and_replicas_need_one() {
    let Some(url) = postgres_url() else { return };
    let db = TestDatabase::create_for_test(&url).await;
    let (role, global_url) = create_role(&db, "mcpg_global").await;
    let data_dir = tempfile::tempdir().expect("tempdir");
    let settings = |migrate: bool, global: bool| {
        let mut settings = crate::helpers::test_settings(data_dir.path());
        settings.database_url = Some(db.url.clone().into());
        if migrate {
            settings.migrate_database_url = Some(db.owner_url.clone().into());
        }
        if global {
            settings.global_database_url = Some(global_url.clone().into());
        }
        settings
    };
    // A replica with only the service's role has no way across orgs: it says so.
    match mcpg_auth::Application::build(settings(true, false)).await {
        Ok(app) => drop(app),
        Err(error) => panic!("the owner serves the cross-tenant paths: {error:#}"),
    }
    let error = match mcpg_auth::Application::build(settings(false, false)).await {
        Ok(_) => panic!("a replica without a cross-tenant role started"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("--global-database-url"), "{error}");
    // Not registered yet: refused.
    let error = match mcpg_auth::Application::build(settings(false, true)).await {
        Ok(_) => panic!("an unregistered global role was accepted"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("not a global role"), "{error}");
    // A start with the owner registers it; later replicas need no owner URL, and serve
    // the cross-tenant paths (credential lookups) through it.
    match mcpg_auth::Application::build(settings(true, true)).await {
        Ok(app) => drop(app),
        Err(error) => panic!("{error:#}"),
    }
    let replica = mcpg_auth::Application::build(settings(false, true))
        .await
        .expect("a replica with the service's role and the global role starts");
    let mut app = TestApp {
        address: format!("http://127.0.0.1:{}", replica.port()),
        ops_address: format!("http://127.0.0.1:{}", replica.ops_port()),
        issuer: replica.issuer().to_owned(),
        client: reqwest::Client::new(),
        admin_token: std::fs::read_to_string(data_dir.path().join("bootstrap.token"))
            .expect("bootstrap token")
            .trim()
            .to_owned(),
        data_dir: tempfile::tempdir().expect("tempdir"),
        settings: settings(false, true),
        clock: None,
        stop: None,
        server: None,
        database: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(replica.run_until(async move {
        let _ = stopped.await;
    }));
    let gateway = app.gateway("org-a").await;
    app.token_ok(&gateway).await;
    let _ = stop.send(());
    server.await.expect("server task").expect("stops");
    app.stop().await;
    let mut superuser = PgConnection::connect(&db.superuser_url)
        .await
        .expect("superuser");
    let listed: Vec<String> = sqlx::query_scalar("SELECT role_name FROM mcpg_global_roles")
        .fetch_all(&mut superuser)
        .await
        .expect("global roles");
    assert!(listed.contains(&role), "{listed:?}");
    assert!(
        !listed.iter().any(|r| r.starts_with("mcpg_app_")),
        "{listed:?}"
    );
    drop(superuser);
    drop(db);
    drop_role_after(role, url).await;
}

/// The role owns grants in the test database, dropped with it: drop the role after.
async fn drop_role_after(role: String, admin_url: String) {
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
        let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
            .execute(&mut admin)
            .await;
    }
}
