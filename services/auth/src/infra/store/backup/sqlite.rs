//! SQLite backups: `VACUUM INTO` a private temporary file (an online, consistent copy that
//! readers and writers of the live database do not block), checked like a restore checks
//! it, then renamed into place. A restore copies the backup next to the database, checks
//! the copy (`PRAGMA integrity_check`, this service's migrations at this binary's schema
//! version) and renames it over the database, the old one kept aside.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, SqliteConnection as Conn};

use super::file::{Staged, sync_dir};
use super::{BackupError, BackupSummary, Progress};
use crate::infra::store::SQLITE_MIGRATOR;

/// The database file an `sqlite://…` URL names.
pub(super) fn path_of_url(url: &str) -> Result<PathBuf, BackupError> {
    Ok(SqliteConnectOptions::from_str(url)?
        .get_filename()
        .to_owned())
}

/// Opens an existing database file (never creates one).
async fn open(path: &Path) -> Result<SqliteConnection, sqlx::Error> {
    Conn::connect_with(&SqliteConnectOptions::new().filename(path)).await
}

/// Writes a consistent copy of the database at `path` to `out`.
pub(super) async fn backup(
    path: &Path,
    out: &Path,
    progress: Progress<'_>,
) -> Result<BackupSummary, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Refused(format!(
            "there is no SQLite database at {}",
            path.display()
        )));
    }
    let mut live = open(path).await?;
    check_schema(&mut live, "the database").await?;
    let (staged, file) = Staged::create(out)?;
    drop(file);
    let temp = staged.path().to_str().ok_or_else(|| {
        BackupError::Refused(format!("{} is not a UTF-8 path", staged.path().display()))
    })?;
    sqlx::query("VACUUM INTO $1")
        .bind(temp)
        .execute(&mut live)
        .await?;
    live.close().await?;
    let (tables, rows) = inspect(staged.path(), out, progress).await?;
    let bytes = staged.commit()?;
    Ok(BackupSummary {
        backend: "sqlite",
        tables,
        rows,
        bytes,
        ..BackupSummary::default()
    })
}

/// Restores the SQLite backup `from` as the database at `dest`.
pub(super) async fn restore(
    from: &Path,
    dest: &Path,
    force: bool,
    progress: Progress<'_>,
) -> Result<BackupSummary, BackupError> {
    if dest.exists() && !force {
        return Err(BackupError::Refused(format!(
            "{} exists; stop the service and pass --force to replace it (the old database \
             is kept as {}.before-restore-<unix time>)",
            dest.display(),
            dest.display()
        )));
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let (staged, mut file) = Staged::create(dest)?;
    let mut source = std::fs::File::open(from).map_err(BackupError::io("read", from))?;
    let bytes =
        std::io::copy(&mut source, &mut file).map_err(BackupError::io("write", staged.path()))?;
    drop(file);
    let (tables, rows) = inspect(staged.path(), from, progress).await?;
    let mut notes = Vec::new();
    if dest.exists() {
        notes.push(format!(
            "the previous database is kept as {}",
            set_aside(dest)?.display()
        ));
    }
    staged.commit()?;
    Ok(BackupSummary {
        backend: "sqlite",
        tables,
        rows,
        bytes,
        notes,
        ..BackupSummary::default()
    })
}

/// Creates the data directory (0700) when it does not exist.
fn create_private_dir(dir: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(BackupError::io("create directory", dir))
}

/// Renames the database at `dest` (and its `-wal`/`-shm` files, so the kept copy stays
/// whole) to `<dest>.before-restore-<unix time>`.
fn set_aside(dest: &Path) -> Result<PathBuf, BackupError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut aside = dest.as_os_str().to_owned();
    aside.push(format!(".before-restore-{now}"));
    let aside = PathBuf::from(aside);
    for suffix in ["-wal", "-shm", ""] {
        let mut from = dest.as_os_str().to_owned();
        from.push(suffix);
        let mut to = aside.as_os_str().to_owned();
        to.push(suffix);
        let from = PathBuf::from(from);
        if from.exists() {
            std::fs::rename(&from, PathBuf::from(to)).map_err(BackupError::io("move", &from))?;
        }
    }
    sync_dir(dest);
    Ok(aside)
}

/// Checks the database file at `path` (a copy of `shown`, the path named in errors) is a
/// whole database of this service at this binary's schema; returns its tables and rows.
async fn inspect(
    path: &Path,
    shown: &Path,
    progress: Progress<'_>,
) -> Result<(usize, u64), BackupError> {
    let not_sqlite = |e: sqlx::Error| BackupError::not_a_backup(shown, e.to_string());
    let mut conn = open(path).await.map_err(not_sqlite)?;
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .map_err(not_sqlite)?;
    if integrity != ["ok"] {
        return Err(BackupError::not_a_backup(
            shown,
            format!("the integrity check failed: {}", integrity.join("; ")),
        ));
    }
    check_schema(&mut conn, &format!("the backup {}", shown.display()))
        .await
        .map_err(|error| match error {
            BackupError::Database(e) => not_sqlite(e),
            other => other,
        })?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await?;
    let mut rows = 0u64;
    for table in &tables {
        let count: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM \"{}\"",
            table.replace('"', "\"\"")
        ))
        .fetch_one(&mut conn)
        .await?;
        progress(&format!("{table}: {count} rows"));
        rows += count.unsigned_abs();
    }
    conn.close().await?;
    Ok((tables.len(), rows))
}

/// Checks the migrations applied to `conn`'s database are exactly this binary's.
async fn check_schema(conn: &mut SqliteConnection, what: &str) -> Result<(), BackupError> {
    let has_history: bool = sqlx::query_scalar(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !has_history {
        return Err(BackupError::Refused(format!(
            "{what} has no migration history (_sqlx_migrations): it is not an mcpg-auth database"
        )));
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut *conn)
            .await?;
    let expected: Vec<i64> = SQLITE_MIGRATOR.iter().map(|m| m.version).collect();
    if applied == expected {
        return Ok(());
    }
    Err(BackupError::SchemaMismatch {
        what: what.to_owned(),
        found: applied.last().copied().unwrap_or_default(),
        expected: expected.last().copied().unwrap_or_default(),
    })
}
