//! PostgreSQL row-level security: the catalog, raw SQL as the service's role inside one
//! org's transaction, and the refusal to run as a role that would bypass it.

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::helpers::{Backend, TestApp, TestDatabase, spawn_app, test_settings};

fn postgres_url() -> Option<String> {
    match Backend::postgres() {
        Some(Backend::Postgres(url)) => Some(url),
        _ => {
            eprintln!("skipped: MCPG_TEST_POSTGRES_URL unset");
            None
        }
    }
}

/// Tables of the schema that are not under row-level security, each with why it holds no
/// one org's data. The catalog test asserts this list is complete and exact.
const GLOBAL_TABLES: [(&str, &str); 10] = [
    (
        "mcpg_global_roles",
        "which login roles see every org (role names only; the service role may only read it)",
    ),
    (
        "mcpg_backup_roles",
        "which login roles may read every org for backups (role names only; read-only to the service)",
    ),
    (
        "_sqlx_migrations",
        "the schema's migration history (read-only for the service)",
    ),
    (
        "orgs",
        "the tenant directory: resolving a request's org happens before any org scope",
    ),
    (
        "service_meta",
        "the deployment's own settings (bootstrap state, schema facts)",
    ),
    (
        "signing_keys",
        "the service's signing keys, one set for every org",
    ),
    (
        "signing_key_certificates",
        "certificates of the service's signing keys",
    ),
    (
        "revocation_lists",
        "the vendor's signed revocation lists, the same for every org",
    ),
    (
        "development_root",
        "the deployment's development root (sealed), one for every org and replica",
    ),
    (
        "replicas",
        "the replicas' heartbeats, which divide every org's rate limit among them",
    ),
];

/// Every table of the schema that holds one org's rows: an `org_id` or `org_slug` column.
async fn per_org_tables(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT DISTINCT c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \
         AND a.attname IN ('org_id', 'org_slug') AND NOT a.attisdropped ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .expect("catalog query")
}

/// Every table of the schema without row-level security enabled and forced.
async fn tables_without_row_security(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \
         AND NOT (c.relrowsecurity AND c.relforcerowsecurity) ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .expect("catalog query")
}

/// Every table of the schema with an `org_id` column.
async fn tenant_tables(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \
         AND a.attname = 'org_id' AND NOT a.attisdropped ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .expect("catalog query")
}

fn database(app: &TestApp) -> &TestDatabase {
    app.database.as_ref().expect("a PostgreSQL test app")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_table_has_row_level_security_enabled_and_forced() {
    let Some(url) = postgres_url() else { return };
    let app = spawn_app(Backend::Postgres(url)).await;
    let mut conn = PgConnection::connect(&database(&app).superuser_url)
        .await
        .expect("connect as superuser");
    // Found by what they hold, not only by an org_id column: deleted_exports is keyed by
    // org_slug. Each must have an org_id policy (checked below).
    let holding = per_org_tables(&mut conn).await;
    let tables = tenant_tables(&mut conn).await;
    for table in &holding {
        assert!(
            tables.contains(table),
            "{table} holds per-org rows, so it must have an org_id under row-level security \
             (tables with org_id: {tables:?})"
        );
    }
    // Every other table is global on purpose, with a reason, and the list is exact.
    let unprotected = tables_without_row_security(&mut conn).await;
    let mut listed: Vec<String> = GLOBAL_TABLES.iter().map(|(t, _)| (*t).to_owned()).collect();
    listed.sort();
    assert_eq!(
        unprotected, listed,
        "tables without row-level security must be exactly GLOBAL_TABLES (add a reason, or \
         put the table under row-level security)"
    );
    for expected in [
        "deleted_exports",
        "api_tokens",
        "environments",
        "gateways",
        "licenses",
        "workspaces",
        "plugin_sets",
    ] {
        assert!(
            tables.iter().any(|t| t == expected),
            "{expected} in {tables:?}"
        );
    }
    for table in &tables {
        let (enabled, forced): (bool, bool) = sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class \
             WHERE relname = $1 AND relnamespace = 'public'::regnamespace",
        )
        .bind(table)
        .fetch_one(&mut conn)
        .await
        .expect("pg_class row");
        assert!(
            enabled && forced,
            "{table}: enabled={enabled} forced={forced}"
        );
        let policy: (String, String) = sqlx::query_as(
            "SELECT qual, with_check FROM pg_policies \
             WHERE schemaname = 'public' AND tablename = $1 AND policyname = 'mcpg_tenant'",
        )
        .bind(table)
        .fetch_one(&mut conn)
        .await
        .expect("tenant policy");
        for clause in [&policy.0, &policy.1] {
            assert!(
                clause.contains("org_id")
                    && clause.contains("NULLIF(current_setting('mcpg.org_id'"),
                "{table}: {clause}"
            );
        }
    }
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
async fn inside_one_orgs_transaction_raw_sql_sees_and_writes_only_that_org() {
    let Some(url) = postgres_url() else { return };
    let app = spawn_app(Backend::Postgres(url)).await;
    for org in ["org-a", "org-b"] {
        app.gateway(org).await;
        app.expect(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"name": "ci", "org": org})),
            StatusCode::CREATED,
        )
        .await;
        app.expect(
            Method::PUT,
            &format!("/v1/orgs/{org}/workspaces/main/plugin-set"),
            Some(json!({"plugins": [{"id": "policy.cedar"}]})),
            StatusCode::OK,
        )
        .await;
    }
    let (a, b) = (org_id(&app, "org-a").await, org_id(&app, "org-b").await);
    let mut conn = PgConnection::connect(&database(&app).url)
        .await
        .expect("connect as the service's role");
    let tables = tenant_tables(&mut conn).await;
    for table in &tables {
        let outside: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .expect("select outside a tenant transaction");
        assert_eq!(outside, 0, "{table} without a tenant shows no rows");

        let mut tx = conn.begin().await.expect("begin");
        sqlx::query("SELECT set_config('mcpg.org_id', $1, true)")
            .bind(&b)
            .execute(&mut *tx)
            .await
            .expect("set org");
        let owners: Vec<Option<String>> =
            sqlx::query_scalar(&format!("SELECT org_id FROM {table}"))
                .fetch_all(&mut *tx)
                .await
                .expect("select *");
        assert!(
            owners
                .iter()
                .all(|owner| owner.as_deref() == Some(b.as_str())),
            "{table} shows only org B's rows: {owners:?}"
        );
        if [
            "licenses",
            "workspaces",
            "environments",
            "gateways",
            "api_tokens",
            "plugin_sets",
        ]
        .contains(&table.as_str())
        {
            assert!(!owners.is_empty(), "{table} shows org B's rows");
            let moved = sqlx::query(&format!("UPDATE {table} SET org_id = $1"))
                .bind(&a)
                .execute(&mut *tx)
                .await
                .expect_err("moving B's rows to A is refused");
            assert_eq!(
                moved.as_database_error().and_then(|e| e.code()).as_deref(),
                Some("42501"),
                "{table}: {moved}"
            );
        }
        tx.rollback().await.expect("rollback");
    }
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query("SELECT set_config('mcpg.org_id', $1, true)")
        .bind(&b)
        .execute(&mut *tx)
        .await
        .expect("set org");
    let refused = sqlx::query(
        "INSERT INTO workspaces (id, org_id, slug, created_at) VALUES ('x', $1, 'sneaky', 0)",
    )
    .bind(&a)
    .execute(&mut *tx)
    .await
    .expect_err("an INSERT with org A's id is refused in org B's transaction");
    assert_eq!(
        refused
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("42501")
    );
    tx.rollback().await.expect("rollback");

    // A committed tenant transaction leaves nothing behind on its (pooled) connection.
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query("SELECT set_config('mcpg.org_id', $1, true)")
        .bind(&b)
        .execute(&mut *tx)
        .await
        .expect("set org");
    tx.commit().await.expect("commit");
    let (setting, visible): (Option<String>, i64) = sqlx::query_as(
        "SELECT current_setting('mcpg.org_id', true), (SELECT count(*) FROM workspaces)",
    )
    .fetch_one(&mut conn)
    .await
    .expect("after the transaction");
    assert_eq!(
        setting.as_deref(),
        Some(""),
        "the setting ends with the transaction"
    );
    assert_eq!(visible, 0, "no tenant rows once the transaction ended");

    let truncate = sqlx::query("TRUNCATE workspaces CASCADE")
        .execute(&mut conn)
        .await
        .expect_err("the service's role may not TRUNCATE (it ignores RLS)");
    assert!(
        truncate.to_string().contains("permission denied"),
        "{truncate}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_refuses_to_start_as_a_role_that_bypasses_row_level_security() {
    let Some(url) = postgres_url() else { return };
    let database = TestDatabase::create_for_test(&url).await;
    let data_dir = tempfile::tempdir().expect("tempdir");
    let attempt = |database_url: &str, migrate_url: Option<&str>| {
        let mut settings = test_settings(data_dir.path());
        settings.database_url = Some(database_url.to_owned().into());
        settings.migrate_database_url = migrate_url.map(|u| u.to_owned().into());
        mcpg_auth::Application::build(settings)
    };
    let cases = [
        (&database.superuser_url, None, "is a superuser"),
        (&database.url, None, "lacks migrations"),
        (&database.owner_url, None, "owns the schema"),
        (
            &database.superuser_url,
            Some(&database.owner_url),
            "is a superuser",
        ),
    ];
    for (service_url, migrate_url, reason) in cases {
        let error = match attempt(service_url, migrate_url.map(String::as_str)).await {
            Ok(_) => panic!("started with {service_url}; expected: {reason}"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains(reason), "{reason:?} not in {error:?}");
    }
    let started = attempt(&database.url, Some(&database.owner_url)).await;
    assert!(
        started.is_ok(),
        "an unprivileged role with an owner for migrations starts"
    );
}
