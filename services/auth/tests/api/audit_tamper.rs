//! Tampering with the stored audit chain behind the service's back (changed fields, deleted,
//! reordered and spliced rows) is found at the right seq; the append-only guards; an org's
//! deletion keeps its chain.

use mcpg_license_core::audit::AuditRecord;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::audit::{entries, org_id, verify};
use crate::helpers::{Backend, TestApp, on_both_backends, spawn_app};

on_both_backends!(
    tampering_is_found_at_the_first_bad_seq,
    deleting_an_org_keeps_its_chain_with_the_delete_recorded,
);

/// Raw access to the database behind the service's back, with the append-only triggers
/// out of the way: what an attacker with database access could do.
pub(crate) enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Raw {
    pub(crate) async fn open(app: &TestApp) -> Self {
        match &app.database {
            Some(db) => {
                let mut conn = sqlx::PgConnection::connect(&db.superuser_url)
                    .await
                    .expect("superuser connection");
                sqlx::query("SET session_replication_role = replica")
                    .execute(&mut conn)
                    .await
                    .expect("triggers off");
                Raw::Postgres(conn)
            }
            None => {
                let path = app.data_dir.path().join("mcpg.db");
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .expect("sqlite connection");
                sqlx::query("PRAGMA busy_timeout = 10000")
                    .execute(&mut conn)
                    .await
                    .expect("busy timeout");
                Raw::Sqlite(conn)
            }
        }
    }

    pub(crate) async fn exec(&mut self, sql: &str) -> Result<u64, sqlx::Error> {
        match self {
            Raw::Sqlite(conn) => Ok(sqlx::query(sql).execute(conn).await?.rows_affected()),
            Raw::Postgres(conn) => Ok(sqlx::query(sql).execute(conn).await?.rows_affected()),
        }
    }

    pub(crate) async fn ok(&mut self, sql: &str) {
        self.exec(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub(crate) async fn count(&mut self, sql: &str) -> i64 {
        match self {
            Raw::Sqlite(conn) => sqlx::query_scalar(sql).fetch_one(conn).await,
            Raw::Postgres(conn) => sqlx::query_scalar(sql).fetch_one(conn).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn insert_sql(record: &AuditRecord) -> String {
    let e = &record.entry;
    format!(
        "INSERT INTO audit_entries (org_id, seq, at, actor, action, target, request_id, \
         details, details_sha256, prev_hash, hash) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
        quote(&e.org_id),
        e.seq,
        quote(&e.time),
        quote(&e.actor),
        quote(&e.action),
        quote(&e.target),
        quote(&e.request_id),
        quote(&record.details),
        quote(&e.details_sha256),
        quote(&record.prev_hash),
        quote(&record.hash)
    )
}

async fn tampering_is_found_at_the_first_bad_seq(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    app.expect(
        Method::POST,
        "/v1/orgs/acme/workspaces",
        Some(json!({"slug": "second"})),
        StatusCode::CREATED,
    )
    .await;
    app.gateway("globex").await;
    let original = entries(&app, "acme", "").await;
    assert_eq!(original.len(), 6);
    let acme = quote(&org_id(&app, "acme").await);
    let globex = quote(&org_id(&app, "globex").await);
    let first_bad = |report: Value| report["first_bad_seq"].as_i64();
    let mut raw = Raw::open(&app).await;

    // The append-only guard holds for anyone going through the triggers.
    if let Raw::Sqlite(_) = raw {
        let refused = raw
            .exec(&format!(
                "UPDATE audit_entries SET actor = 'x' WHERE org_id = {acme}"
            ))
            .await
            .expect_err("the trigger refuses UPDATE");
        assert!(refused.to_string().contains("append-only"), "{refused}");
        let refused = raw
            .exec(&format!("DELETE FROM audit_entries WHERE org_id = {acme}"))
            .await
            .expect_err("the trigger refuses DELETE");
        assert!(refused.to_string().contains("append-only"), "{refused}");
        raw.ok("DROP TRIGGER audit_entries_no_update").await;
        raw.ok("DROP TRIGGER audit_entries_no_delete").await;
    }

    // Any field of any row.
    for (column, seq) in [
        ("actor", 3),
        ("action", 1),
        ("target", 6),
        ("at", 2),
        ("request_id", 4),
        ("details", 5),
        ("details_sha256", 2),
        ("prev_hash", 4),
        ("hash", 6),
    ] {
        let index = usize::try_from(seq - 1).expect("seq");
        raw.ok(&format!(
            "UPDATE audit_entries SET {column} = 'tampered' WHERE org_id = {acme} AND seq = {seq}"
        ))
        .await;
        assert_eq!(first_bad(verify(&app, "acme").await), Some(seq), "{column}");
        raw.ok(&format!(
            "DELETE FROM audit_entries WHERE org_id = {acme} AND seq = {seq}"
        ))
        .await;
        raw.ok(&insert_sql(&original[index])).await;
        assert_eq!(verify(&app, "acme").await["ok"], true, "restored {column}");
    }

    // A deleted row.
    raw.ok(&format!(
        "DELETE FROM audit_entries WHERE org_id = {acme} AND seq = 2"
    ))
    .await;
    assert_eq!(first_bad(verify(&app, "acme").await), Some(2));
    raw.ok(&insert_sql(&original[1])).await;

    // Two rows swapped.
    for sql in [
        format!("UPDATE audit_entries SET seq = -1 WHERE org_id = {acme} AND seq = 4"),
        format!("UPDATE audit_entries SET seq = 4 WHERE org_id = {acme} AND seq = 5"),
        format!("UPDATE audit_entries SET seq = 5 WHERE org_id = {acme} AND seq = -1"),
    ] {
        raw.ok(&sql).await;
    }
    assert_eq!(first_bad(verify(&app, "acme").await), Some(4));
    for sql in [
        format!("UPDATE audit_entries SET seq = -1 WHERE org_id = {acme} AND seq = 4"),
        format!("UPDATE audit_entries SET seq = 4 WHERE org_id = {acme} AND seq = 5"),
        format!("UPDATE audit_entries SET seq = 5 WHERE org_id = {acme} AND seq = -1"),
    ] {
        raw.ok(&sql).await;
    }
    assert_eq!(verify(&app, "acme").await["ok"], true);

    // Another org's entry spliced in (its org id rewritten to fit).
    raw.ok(&format!(
        "DELETE FROM audit_entries WHERE org_id = {acme} AND seq = 3"
    ))
    .await;
    raw.ok(&format!(
        "UPDATE audit_entries SET org_id = {acme} WHERE org_id = {globex} AND seq = 3"
    ))
    .await;
    let report = verify(&app, "acme").await;
    assert_eq!(report["ok"], false);
    assert_eq!(first_bad(report.clone()), Some(3));
    assert_eq!(report["checked"], 2);
    assert_eq!(report["head_seq"], 2);
    assert_eq!(report["head_hash"], original[1].hash.as_str());
    // globex lost its entry 3: its own chain breaks there too.
    assert_eq!(first_bad(verify(&app, "globex").await), Some(3));
}

async fn deleting_an_org_keeps_its_chain_with_the_delete_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    let acme = org_id(&app, "acme").await;
    app.expect(
        Method::DELETE,
        "/v1/orgs/acme?cascade=true",
        None,
        StatusCode::OK,
    )
    .await;
    let mut raw = Raw::open(&app).await;
    let quoted = quote(&acme);
    let kept = raw
        .count(&format!(
            "SELECT COUNT(*) FROM audit_entries WHERE org_id = {quoted}"
        ))
        .await;
    assert_eq!(kept, 7, "five changes, the suspension and the deletion");
    let deleted = raw
        .count(&format!(
            "SELECT COUNT(*) FROM audit_entries WHERE org_id = {quoted} AND seq = 7 \
             AND action = 'org.delete'"
        ))
        .await;
    assert_eq!(deleted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_the_service_role_may_only_insert_and_select_audit_rows() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("skipped: MCPG_TEST_POSTGRES_URL unset");
        return;
    };
    let app = spawn_app(backend).await;
    app.create_org("acme").await;
    let acme = quote(&org_id(&app, "acme").await);
    let db = app.database.as_ref().expect("PostgreSQL app");
    let mut service = sqlx::PgConnection::connect(&db.url)
        .await
        .expect("service role");
    let mut tx = service.begin().await.expect("begin");
    sqlx::query(&format!("SELECT set_config('mcpg.org_id', {acme}, true)"))
        .execute(&mut *tx)
        .await
        .expect("bind the org");
    let visible: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries")
        .fetch_one(&mut *tx)
        .await
        .expect("the service role reads its org's entries");
    assert_eq!(visible, 1);
    for sql in [
        "UPDATE audit_entries SET actor = 'x'",
        "DELETE FROM audit_entries",
        "UPDATE audit_checkpoints SET note = 'x'",
        "TRUNCATE audit_entries",
    ] {
        let mut savepoint = tx.begin().await.expect("savepoint");
        let error = sqlx::query(sql)
            .execute(&mut *savepoint)
            .await
            .expect_err("refused to the service role");
        assert_eq!(
            error.as_database_error().and_then(|e| e.code()).as_deref(),
            Some("42501"),
            "{sql}: {error}"
        );
        savepoint.rollback().await.expect("rollback");
    }
    tx.rollback().await.expect("rollback");

    // Even the owner, who may UPDATE, is stopped by the trigger.
    let mut owner = sqlx::PgConnection::connect(&db.owner_url)
        .await
        .expect("owner role");
    let mut tx = owner.begin().await.expect("begin");
    sqlx::query("SELECT set_config('mcpg.global', 'on', true)")
        .execute(&mut *tx)
        .await
        .expect("global scope");
    let error = sqlx::query("DELETE FROM audit_entries")
        .execute(&mut *tx)
        .await
        .expect_err("the trigger refuses DELETE");
    assert!(error.to_string().contains("append-only"), "{error}");
}
