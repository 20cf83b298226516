//! Audit appends per second for one org, on SQLite and (with `MCPG_BENCH_POSTGRES_URL`) on
//! PostgreSQL: one writer appending one entry per transaction, concurrent writers doing the
//! same (they serialise on the org's head), and batches of 100 entries per transaction
//! (the shape of the token-issuance flush). Every chain is verified at the end.
//!
//! `cargo bench -p mcpg-auth --bench audit_append`
//! (`MCPG_BENCH_APPENDS` sets the appends per scenario, default 3000.)

use std::time::Instant;

use mcpg_auth::bench::{Actor, AuditAction, DatabaseOptions, Event, NewOrg, Store};
use mcpg_auth::bench::{OrgStatus, Slug};
use secrecy::SecretString;
use serde_json::json;
use sqlx::Connection;

const WRITERS: usize = 8;

fn event(n: usize) -> Event {
    Event::new(
        AuditAction::WorkspaceCreate,
        format!("ws-{n}"),
        json!({"workspace_id": format!("id-{n}")}),
    )
}

async fn org(store: &Store, slug: &str) -> String {
    let new = NewOrg {
        slug: Slug::parse(slug).expect("slug"),
        display_name: slug.into(),
        status: OrgStatus::Active,
        trial_expires_at: None,
        routing_name: None,
    };
    store
        .create_org(&new, &Actor::system(), 0)
        .await
        .expect("org")
        .id
}

/// The floor: one single-row INSERT per committed transaction, on the same kind of
/// database, with no audit logic.
async fn floor_sqlite(path: &std::path::Path, appends: usize) {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("floor db");
    sqlx::query("CREATE TABLE scratch (n INTEGER NOT NULL)")
        .execute(&pool)
        .await
        .expect("scratch");
    let started = Instant::now();
    for n in 0..appends {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begin");
        sqlx::query("INSERT INTO scratch (n) VALUES ($1)")
            .bind(n as i64)
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
    }
    report(
        "sqlite",
        "floor: 1 plain INSERT per transaction",
        appends,
        started,
    );
}

async fn floor_postgres(url: &str, appends: usize) {
    let pool = sqlx::PgPool::connect(url).await.expect("floor db");
    sqlx::query("CREATE TABLE scratch (n BIGINT NOT NULL)")
        .execute(&pool)
        .await
        .expect("scratch");
    let started = Instant::now();
    for n in 0..appends {
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query("INSERT INTO scratch (n) VALUES ($1)")
            .bind(n as i64)
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
    }
    report(
        "postgres",
        "floor: 1 plain INSERT per transaction",
        appends,
        started,
    );
}

async fn run(label: &str, store: Store, appends: usize) {
    let single = org(&store, "single").await;
    let started = Instant::now();
    for n in 0..appends {
        store
            .tenant(&single)
            .append_audit(&[event(n)], 1)
            .await
            .expect("append");
    }
    report(label, "1 writer, 1 entry per transaction", appends, started);

    let shared = org(&store, "shared").await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let org = shared.clone();
            tokio::spawn(async move {
                for n in 0..appends / WRITERS {
                    store
                        .tenant(&org)
                        .append_audit(&[event(w * appends + n)], 1)
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    let done = appends / WRITERS * WRITERS;
    report(
        label,
        "8 concurrent writers, 1 entry per transaction",
        done,
        started,
    );

    let batched = org(&store, "batched").await;
    let events: Vec<Event> = (0..100).map(event).collect();
    let started = Instant::now();
    for _ in 0..appends / 100 {
        store
            .tenant(&batched)
            .append_audit(&events, 1)
            .await
            .expect("append");
    }
    let done = appends / 100 * 100;
    report(
        label,
        "1 writer, 100 entries per transaction",
        done,
        started,
    );

    for id in [&single, &shared, &batched] {
        let verified = mcpg_auth::bench::verify(&store.tenant(id))
            .await
            .expect("verify");
        assert!(verified.ok, "{label}: the chain verifies");
    }
    store.close().await;
}

fn report(backend: &str, scenario: &str, appends: usize, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{backend:<9} {scenario:<46} {appends:>6} appends in {seconds:>6.2} s = {:>7.0}/s",
        appends as f64 / seconds
    );
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[tokio::main]
async fn main() {
    let appends: usize = std::env::var("MCPG_BENCH_APPENDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Store::connect(&DatabaseOptions::default(), &dir.path().join("bench.db"))
        .await
        .expect("sqlite");
    floor_sqlite(&dir.path().join("floor.db"), appends).await;
    run("sqlite", sqlite, appends).await;

    let Ok(url) = std::env::var("MCPG_BENCH_POSTGRES_URL") else {
        println!("postgres  skipped: MCPG_BENCH_POSTGRES_URL unset");
        return;
    };
    // A fresh database served by the given role (development mode: no separate app role).
    let name = format!("mcpg_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&url).await.expect("postgres");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let secret: SecretString = with_database(&url, &name).into();
    let options = DatabaseOptions {
        url: Some(&secret),
        migrate_url: None,
        global_url: None,
        allow_owner_connection: true,
    };
    let store = Store::connect(&options, dir.path())
        .await
        .expect("postgres");
    floor_postgres(&with_database(&url, &name), appends).await;
    run("postgres", store, appends).await;
    let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
}
