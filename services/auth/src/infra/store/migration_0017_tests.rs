//! Migration 0017 on a database that already holds gateways of one name: the oldest
//! unrevoked one keeps it, later unrevoked ones get their id's first 8 characters
//! appended, revoked ones are left alone, and the unique index then holds. On PostgreSQL
//! the migration runs as a schema owner that is not a superuser, so row-level security
//! (forced on owners too) applies to it as it does in production.

use sqlx::Executor;

use super::SQLITE_MIGRATOR;
use super::postgres::MIGRATOR;

const SEED: &str = "\
    INSERT INTO orgs (id, slug, display_name, status, created_at, updated_at) \
        VALUES ('o1', 'acme', 'Acme', 'active', 0, 0); \
    INSERT INTO workspaces (id, org_id, slug, created_at) VALUES ('w1', 'o1', 'main', 0); \
    INSERT INTO environments (id, org_id, workspace_id, slug, created_at) \
        VALUES ('e1', 'o1', 'w1', 'prod', 0), ('e2', 'o1', 'w1', 'staging', 0); \
    INSERT INTO gateways (id, org_id, workspace_id, environment_id, name, credential_hash, \
        credential_prefix, created_at, revoked_at) VALUES \
        ('aaaaaaaa-0001', 'o1', 'w1', 'e1', 'edge', 'h1', 'p', 10, NULL), \
        ('bbbbbbbb-0002', 'o1', 'w1', 'e1', 'edge', 'h2', 'p', 20, NULL), \
        ('cccccccc-0003', 'o1', 'w1', 'e1', 'edge', 'h3', 'p', 5, 7), \
        ('dddddddd-0004', 'o1', 'w1', 'e2', 'edge', 'h4', 'p', 30, NULL);";

const NAMES: &str = "SELECT id, name FROM gateways ORDER BY id";

fn expected() -> Vec<(String, String)> {
    [
        ("aaaaaaaa-0001", "edge"),
        ("bbbbbbbb-0002", "edge-bbbbbbbb"),
        ("cccccccc-0003", "edge"),
        ("dddddddd-0004", "edge"),
    ]
    .into_iter()
    .map(|(id, name)| (id.to_owned(), name.to_owned()))
    .collect()
}

const DUPLICATE: &str = "INSERT INTO gateways (id, org_id, workspace_id, environment_id, \
    name, credential_hash, credential_prefix, created_at) \
    VALUES ('eeeeeeee-0005', 'o1', 'w1', 'e1', 'edge', 'h5', 'p', 40)";

#[tokio::test]
async fn sqlite_renames_existing_duplicates_then_refuses_new_ones() {
    let pool = sqlx::SqlitePool::connect("sqlite::memory:")
        .await
        .expect("in-memory database");
    for migration in SQLITE_MIGRATOR.iter().filter(|m| m.version < 17) {
        pool.execute(sqlx::raw_sql(&migration.sql))
            .await
            .expect("an earlier migration");
    }
    pool.execute(sqlx::raw_sql(SEED)).await.expect("seed");
    let upgrade = SQLITE_MIGRATOR
        .iter()
        .find(|m| m.version == 17)
        .expect("migration 0017");
    pool.execute(sqlx::raw_sql(&upgrade.sql))
        .await
        .expect("migration 0017 applies");
    let names: Vec<(String, String)> = sqlx::query_as(NAMES).fetch_all(&pool).await.expect("rows");
    assert_eq!(names, expected());
    let refused = pool.execute(DUPLICATE).await.expect_err("a duplicate");
    assert!(
        refused
            .as_database_error()
            .is_some_and(|e| e.is_unique_violation()),
        "{refused}"
    );
}

#[tokio::test]
async fn postgres_renames_existing_duplicates_as_a_non_superuser_owner() {
    let Ok(admin_url) = std::env::var("MCPG_TEST_POSTGRES_URL") else {
        eprintln!("SKIPPED: MCPG_TEST_POSTGRES_URL is not set");
        return;
    };
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("postgres");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (database, owner) = (
        format!("mcpg_m17_{suffix}"),
        format!("mcpg_m17_owner_{suffix}"),
    );
    admin
        .execute(format!("CREATE ROLE {owner} LOGIN NOSUPERUSER NOBYPASSRLS").as_str())
        .await
        .expect("owner role");
    admin
        .execute(format!("CREATE DATABASE {database} OWNER {owner}").as_str())
        .await
        .expect("database");
    let mut url = url_for(&admin_url, &database);
    url = with_user(&url, &owner);
    let pool = sqlx::PgPool::connect(&url).await.expect("owner connection");
    for migration in MIGRATOR.iter().filter(|m| m.version < 17) {
        pool.execute(sqlx::raw_sql(&migration.sql))
            .await
            .expect("an earlier migration");
    }
    // The seed itself must pass the forced policies: one transaction in the global scope.
    let mut tx = pool.begin().await.expect("tx");
    tx.execute("SELECT set_config('mcpg.global', 'on', true)")
        .await
        .expect("global scope");
    tx.execute(sqlx::raw_sql(SEED)).await.expect("seed");
    tx.commit().await.expect("commit");
    let upgrade = MIGRATOR
        .iter()
        .find(|m| m.version == 17)
        .expect("migration 0017");
    pool.execute(sqlx::raw_sql(&upgrade.sql))
        .await
        .expect("migration 0017 applies as the owner");
    let mut tx = pool.begin().await.expect("tx");
    tx.execute("SELECT set_config('mcpg.global', 'on', true)")
        .await
        .expect("global scope");
    let names: Vec<(String, String)> = sqlx::query_as(NAMES)
        .fetch_all(&mut *tx)
        .await
        .expect("rows");
    assert_eq!(names, expected());
    let refused = tx.execute(DUPLICATE).await.expect_err("a duplicate");
    assert!(
        refused
            .as_database_error()
            .is_some_and(|e| e.is_unique_violation()),
        "{refused}"
    );
    drop(tx);
    pool.close().await;
    admin
        .execute(format!("DROP DATABASE {database} WITH (FORCE)").as_str())
        .await
        .expect("drop database");
    admin
        .execute(format!("DROP ROLE {owner}").as_str())
        .await
        .expect("drop role");
}

/// `url` with its database replaced by `database`.
fn url_for(url: &str, database: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => format!("{}/{database}", &base[..slash]),
        _ => format!("{base}/{database}"),
    }
}

/// `url` connecting as `user` (no password: the test server trusts loopback).
fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}
