//! What `mcpg-auth backup` and `restore` refuse, each with one error line and nothing
//! changed: damaged files, another schema version, a database that has data, the other
//! backend's file, and (PostgreSQL) a backup role that row-level security would starve.
//! Also why a plain `pg_dump` is no backup of this schema.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, SqliteConnection};

use crate::backup::{backup_role, database_flags, drop_role, mcpg_auth, strs};
use crate::helpers::{Backend, TestApp, TestDatabase, on_both_backends, spawn_app};

on_both_backends!(
    a_damaged_backup_is_refused_and_the_target_is_untouched,
    a_backup_of_another_schema_version_is_refused_naming_both_versions,
    a_restore_over_a_database_with_data_is_refused,
);

/// A stopped app with one org and a backup of it (PostgreSQL: by a backup role).
struct Backed {
    source: TestApp,
    files: tempfile::TempDir,
    file: PathBuf,
    role: Option<String>,
}

impl Backed {
    async fn new(backend: Backend) -> Self {
        let mut source = spawn_app(backend).await;
        source.gateway("acme").await;
        source.stop().await;
        let files = tempfile::tempdir().expect("tempdir");
        let file = files.path().join("mcpg.backup");
        let (url, role) = match &source.database {
            Some(db) => {
                let (role, url) = backup_role(db).await;
                (Some(url), Some(role))
            }
            None => (None, None),
        };
        let flags = database_flags(source.data_dir.path(), url.as_deref(), None);
        let out = file.display().to_string();
        let (ok, stderr) = mcpg_auth(&[&["backup", "--out", &out], &strs(&flags)[..]].concat());
        assert!(ok, "backup: {stderr}");
        Self {
            source,
            files,
            file,
            role,
        }
    }

    /// A copy of the backup changed by `edit`.
    fn edited(&self, name: &str, edit: impl FnOnce(Vec<u8>) -> Vec<u8>) -> PathBuf {
        let path = self.files.path().join(name);
        let bytes = std::fs::read(&self.file).expect("backup");
        std::fs::write(&path, edit(bytes)).expect("write copy");
        path
    }

    async fn cleanup(self) {
        if let (Some(role), Some(db)) = (&self.role, &self.source.database) {
            drop_role(db, role).await;
        }
    }
}

/// A fresh restore target of the same backend: a data dir, and a new database.
async fn fresh_target(source: &TestApp) -> (tempfile::TempDir, Option<TestDatabase>) {
    let database = match Backend::postgres() {
        Some(Backend::Postgres(url)) if source.database.is_some() => {
            Some(TestDatabase::create_for_test(&url).await)
        }
        _ => None,
    };
    (tempfile::tempdir().expect("tempdir"), database)
}

/// Runs `restore --from file` into the target; returns success and stderr.
fn restore(
    file: &Path,
    dir: &Path,
    database: Option<&TestDatabase>,
    extra: &[&str],
) -> (bool, String) {
    let flags = database_flags(
        dir,
        database.map(|db| db.url.as_str()),
        database.map(|db| db.owner_url.as_str()),
    );
    let from = file.display().to_string();
    mcpg_auth(&[&["restore", "--from", &from], &strs(&flags)[..], extra].concat())
}

/// Asserts the target holds nothing: no database file (SQLite), no table (PostgreSQL).
async fn assert_untouched(dir: &Path, database: Option<&TestDatabase>) {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(
        entries.is_empty(),
        "nothing written to the data dir: {entries:?}"
    );
    if let Some(db) = database {
        let mut conn = PgConnection::connect(&db.superuser_url)
            .await
            .expect("connect");
        let tables: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                .fetch_one(&mut conn)
                .await
                .expect("count");
        assert_eq!(tables, 0, "no table created");
    }
}

async fn a_damaged_backup_is_refused_and_the_target_is_untouched(backend: Backend) {
    let backed = Backed::new(backend).await;
    let (dir, database) = fresh_target(&backed.source).await;
    let len = std::fs::metadata(&backed.file).expect("backup").len() as usize;
    let truncated = backed.edited("truncated", |b| b[..len / 2].to_vec());
    let edited = backed.edited("edited", |mut bytes| {
        if database.is_some() {
            // One character of a row: the trailer's hash no longer matches.
            let at = bytes
                .windows(6)
                .position(|w| w == b"\"acme\"")
                .expect("a row names acme");
            bytes[at + 4] = b'f';
        } else {
            // Pages 2 and 3 zeroed: the b-trees there are broken.
            bytes[4096..3 * 4096].fill(0);
        }
        bytes
    });
    let garbage = backed.edited("garbage", |_| b"not a backup at all\n".to_vec());
    let missing = backed.files.path().join("missing");
    for (file, expected) in [
        (&truncated, "not a usable backup"),
        (&edited, "not a usable backup"),
        (
            &garbage,
            "neither an SQLite database nor an mcpg-auth PostgreSQL backup",
        ),
        (&missing, "cannot read"),
    ] {
        let (ok, stderr) = restore(file, dir.path(), database.as_ref(), &[]);
        assert!(!ok, "{} restored", file.display());
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
        assert_untouched(dir.path(), database.as_ref()).await;
    }
    backed.cleanup().await;
}

/// A PostgreSQL backup whose header says `schema_version` (migrations up to it), with the
/// trailer's hash recomputed: a genuine backup of an older schema.
fn older_postgres_backup(bytes: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8(bytes).expect("JSON lines");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut header: serde_json::Value = serde_json::from_str(&lines[0]).expect("header");
    let migrations = header["header"]["migrations"].as_array_mut().expect("list");
    migrations.pop();
    let older = migrations.last().cloned().expect("a migration");
    header["header"]["schema_version"] = older;
    lines[0] = header.to_string();
    let trailer_at = lines.len() - 1;
    let body: String = lines[..trailer_at]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let mut trailer: serde_json::Value = serde_json::from_str(&lines[trailer_at]).expect("trailer");
    trailer["trailer"]["sha256"] = hex::encode(Sha256::digest(body.as_bytes())).into();
    format!("{body}{trailer}\n").into_bytes()
}

async fn a_backup_of_another_schema_version_is_refused_naming_both_versions(backend: Backend) {
    let backed = Backed::new(backend).await;
    let (dir, database) = fresh_target(&backed.source).await;
    let older = if database.is_some() {
        backed.edited("older", older_postgres_backup)
    } else {
        let path = backed.edited("older", |b| b);
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("open copy");
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)")
            .execute(&mut conn)
            .await
            .expect("forget the last migration");
        conn.close().await.expect("close");
        path
    };
    let (ok, stderr) = restore(&older, dir.path(), database.as_ref(), &[]);
    assert!(!ok, "an older backup restored");
    // This binary's newest migration, and the one before it (the backup's), per backend.
    let dir_name = if database.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let mut versions: Vec<u32> = std::fs::read_dir(format!(
        "{}/../../migrations/{dir_name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("migrations directory")
    .filter_map(|entry| {
        let name = entry.ok()?.file_name().into_string().ok()?;
        name.split('_').next()?.parse().ok()
    })
    .collect();
    versions.sort_unstable();
    let expected = versions.pop().expect("a migration");
    let found = versions.pop().expect("an older migration");
    assert!(
        stderr.contains(&format!(
            "is at schema version {found}, this mcpg-auth at {expected}"
        )),
        "both versions named: {stderr}"
    );
    assert_untouched(dir.path(), database.as_ref()).await;
    backed.cleanup().await;
}

async fn a_restore_over_a_database_with_data_is_refused(backend: Backend) {
    let backed = Backed::new(backend.clone()).await;
    // The source itself has data: restoring over it is refused.
    let db = backed.source.database.as_ref();
    let (ok, stderr) = restore(&backed.file, backed.source.data_dir.path(), db, &[]);
    assert!(!ok, "restored over a database with data");
    let expected = if db.is_some() {
        "the target database is not empty"
    } else {
        "pass --force"
    };
    assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    if db.is_none() {
        // SQLite: --force replaces it and keeps the old one aside.
        let (ok, stderr) = restore(
            &backed.file,
            backed.source.data_dir.path(),
            None,
            &["--force"],
        );
        assert!(ok, "{stderr}");
        let kept: Vec<String> = std::fs::read_dir(backed.source.data_dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("mcpg.db.before-restore-"))
            .collect();
        assert!(!kept.is_empty(), "the old database is kept aside: {stderr}");
    }
    backed.cleanup().await;
}

/// The server URL of the PostgreSQL tests, or `None` (skipped).
fn postgres_url() -> Option<String> {
    match Backend::postgres() {
        Some(Backend::Postgres(url)) => Some(url),
        _ => {
            eprintln!("skipped: MCPG_TEST_POSTGRES_URL unset");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_as_a_role_that_row_security_starves_is_refused() {
    let Some(url) = postgres_url() else { return };
    let backed = Backed::new(Backend::Postgres(url)).await;
    let db = backed.source.database.as_ref().expect("postgres");
    let out = backed.files.path().join("as-app");
    let flags = database_flags(backed.source.data_dir.path(), Some(&db.url), None);
    let out_arg = out.display().to_string();
    let (ok, stderr) = mcpg_auth(&[&["backup", "--out", &out_arg], &strs(&flags)[..]].concat());
    assert!(!ok, "the service's role backed up");
    assert!(
        stderr.contains("would silently miss rows") && stderr.contains("mcpg_grant_backup_role"),
        "says which role to use: {stderr}"
    );
    assert!(!out.exists(), "no file written");
    let entries = std::fs::read_dir(backed.files.path()).expect("dir").count();
    assert_eq!(entries, 1, "only the earlier backup, no temporary file");
    backed.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_role_reads_every_row_and_writes_none() {
    let Some(url) = postgres_url() else { return };
    let backed = Backed::new(Backend::Postgres(url)).await;
    let db = backed.source.database.as_ref().expect("postgres");
    let role = backed.role.as_deref().expect("backup role");
    let mut url = reqwest::Url::parse(&db.owner_url).expect("URL");
    url.set_username(role).expect("user");
    url.set_password(Some("backup-pw")).expect("password");
    let mut conn = PgConnection::connect(url.as_str())
        .await
        .expect("as the backup role");
    let gateways: i64 = sqlx::query_scalar("SELECT count(*) FROM gateways")
        .fetch_one(&mut conn)
        .await
        .expect("select");
    assert_eq!(gateways, 1, "every org's rows, without an org setting");
    for statement in [
        "UPDATE gateways SET name = 'x'",
        "DELETE FROM orgs",
        "INSERT INTO mcpg_backup_roles VALUES ('someone')",
        "SELECT mcpg_grant_backup_role('someone')",
    ] {
        let error = sqlx::query(statement)
            .execute(&mut conn)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("permission denied"),
            "{statement}: {error}"
        );
    }
    let mut owner = PgConnection::connect(&db.owner_url).await.expect("owner");
    let app_role = reqwest::Url::parse(&db.url)
        .expect("URL")
        .username()
        .to_owned();
    let error = sqlx::query("SELECT mcpg_grant_backup_role($1)")
        .bind(&app_role)
        .execute(&mut owner)
        .await
        .expect_err("the service's role is never a backup role");
    assert!(
        error.to_string().contains("cannot be a backup role"),
        "{error}"
    );
    backed.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_one_backend_is_refused_by_the_other() {
    let Some(url) = postgres_url() else { return };
    let backed = Backed::new(Backend::Postgres(url)).await;
    let sqlite_dir = tempfile::tempdir().expect("tempdir");
    let (ok, stderr) = restore(&backed.file, sqlite_dir.path(), None, &[]);
    assert!(
        !ok && stderr.contains("is a PostgreSQL backup and the target is SQLite"),
        "{stderr}"
    );
    let sqlite_file = sqlite_dir.path().join("other.db");
    let mut conn =
        SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", sqlite_file.display()))
            .await
            .expect("create");
    sqlx::query("CREATE TABLE t (x INTEGER)")
        .execute(&mut conn)
        .await
        .expect("table");
    conn.close().await.expect("close");
    let (_, database) = fresh_target(&backed.source).await;
    let (ok, stderr) = restore(&sqlite_file, sqlite_dir.path(), database.as_ref(), &[]);
    assert!(
        !ok && stderr.contains("is an SQLite backup and the target is PostgreSQL"),
        "{stderr}"
    );
    backed.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_pg_dump_fails_as_the_owner_and_dumps_no_tenant_row_as_the_service_role() {
    let Some(url) = postgres_url() else { return };
    if std::process::Command::new("pg_dump")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: pg_dump is not installed");
        return;
    }
    let backed = Backed::new(Backend::Postgres(url)).await;
    let db = backed.source.database.as_ref().expect("postgres");
    let dump = |url: &str, extra: &[&str]| {
        std::process::Command::new("pg_dump")
            .args(["--data-only", "--dbname", url])
            .args(extra)
            .output()
            .expect("pg_dump runs")
    };
    let as_owner = dump(&db.owner_url, &[]);
    let stderr = String::from_utf8_lossy(&as_owner.stderr);
    if stderr.contains("server version mismatch") {
        eprintln!("skipped: pg_dump is older than the server: {stderr}");
        backed.cleanup().await;
        return;
    }
    assert!(!as_owner.status.success(), "pg_dump as the owner succeeded");
    assert!(stderr.contains("row-level security"), "{stderr}");
    // With --enable-row-security a role that is not listed dumps without an error, and
    // without a single tenant row: the silent failure the backup command refuses.
    let as_app = dump(&db.url, &["--enable-row-security", "--table", "gateways"]);
    assert!(
        as_app.status.success(),
        "{}",
        String::from_utf8_lossy(&as_app.stderr)
    );
    let text = String::from_utf8_lossy(&as_app.stdout);
    assert!(!text.contains("gw-1"), "no gateway row: {text}");
    backed.cleanup().await;
}
