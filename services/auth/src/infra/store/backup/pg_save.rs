//! PostgreSQL backups: every table read in one `REPEATABLE READ READ ONLY` snapshot, by a
//! role checked first to see every row.
//!
//! Row-level security is forced on every tenant table, so a role that is not listed in
//! `mcpg_global_roles` or `mcpg_backup_roles` (and neither SUPERUSER nor BYPASSRLS) reads
//! none of their rows without an error: such a backup would look fine and hold no tenant.
//! That is refused before anything is written.

use std::io::{BufWriter, Write};
use std::path::Path;

use sqlx::{Connection, PgConnection};

use super::catalog::{self, quote};
use super::file::Staged;
use super::format::{BackupWriter, FORMAT, Header, VERSION};
use super::{BackupError, BackupSummary, Progress};

/// Rows fetched from the cursor at a time.
const FETCH: usize = 1000;

/// Writes a backup of the database at `url` to `out`.
pub(super) async fn backup(
    url: &str,
    out: &Path,
    progress: Progress<'_>,
) -> Result<BackupSummary, BackupError> {
    let mut conn = PgConnection::connect(url).await?;
    let result = save(&mut conn, out, progress).await;
    let _ = conn.close().await;
    result
}

async fn save(
    conn: &mut PgConnection,
    out: &Path,
    progress: Progress<'_>,
) -> Result<BackupSummary, BackupError> {
    let mut tx = conn
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let migrations = catalog::applied_migrations(&mut tx).await?.ok_or_else(|| {
        BackupError::Refused(
            "the database has no migration history (_sqlx_migrations): it is not an \
             mcpg-auth database, or this role may not see it"
                .into(),
        )
    })?;
    let expected = catalog::expected_migrations();
    if migrations != expected {
        return Err(BackupError::SchemaMismatch {
            what: "the database".into(),
            found: migrations.last().copied().unwrap_or_default(),
            expected: expected.last().copied().unwrap_or_default(),
        });
    }
    check_reads_every_row(&mut tx).await?;
    let tables = catalog::tables_in_order(&mut tx).await?;
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        backend: "postgres".into(),
        schema_version: migrations.last().copied().unwrap_or_default(),
        migrations,
        created_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        tables,
    };
    let (staged, file) = Staged::create(out)?;
    let write_error = BackupError::io("write", staged.path());
    let mut writer = match BackupWriter::new(BufWriter::new(file), &header) {
        Ok(writer) => writer,
        Err(e) => return Err(write_error(e)),
    };
    for table in &header.tables {
        let rows = copy_table(&mut tx, table, &mut writer, staged.path()).await?;
        progress(&format!("{table}: {rows} rows"));
    }
    let (rows, bytes) = match writer.finish() {
        Ok((buffer, rows, bytes)) => {
            let mut file = buffer
                .into_inner()
                .map_err(|e| BackupError::io("write", staged.path())(e.into_error()))?;
            file.flush()
                .map_err(BackupError::io("write", staged.path()))?;
            (rows, bytes)
        }
        Err(e) => return Err(write_error(e)),
    };
    tx.rollback().await?;
    staged.commit()?;
    Ok(BackupSummary {
        backend: "postgres",
        tables: header.tables.len(),
        rows,
        bytes,
        ..BackupSummary::default()
    })
}

/// Streams one table's rows through a cursor into the file; returns how many.
async fn copy_table<W: Write>(
    tx: &mut PgConnection,
    table: &str,
    writer: &mut BackupWriter<W>,
    path: &Path,
) -> Result<u64, BackupError> {
    sqlx::query(&format!(
        "DECLARE mcpg_backup NO SCROLL CURSOR FOR SELECT row_to_json(x)::text FROM {} x",
        quote(table)
    ))
    .execute(&mut *tx)
    .await?;
    let name = serde_json::Value::from(table).to_string();
    let mut count = 0u64;
    loop {
        let rows: Vec<String> = sqlx::query_scalar(&format!("FETCH {FETCH} FROM mcpg_backup"))
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            writer
                .row(table, &format!("{{\"t\":{name},\"r\":{row}}}"))
                .map_err(BackupError::io("write", path))?;
        }
        count += rows.len() as u64;
        if rows.len() < FETCH {
            break;
        }
    }
    sqlx::query("CLOSE mcpg_backup").execute(&mut *tx).await?;
    Ok(count)
}

/// Refuses a role that row-level security would hide rows from, or that may not read a
/// table at all.
async fn check_reads_every_row(tx: &mut PgConnection) -> Result<(), BackupError> {
    let (role, superuser, bypass): (String, bool, bool) = sqlx::query_as(
        "SELECT session_user::text, r.rolsuper, r.rolbypassrls FROM pg_roles r \
         WHERE r.rolname = current_user",
    )
    .fetch_one(&mut *tx)
    .await?;
    let unreadable: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
         AND NOT has_table_privilege(c.oid, 'SELECT') ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await?;
    if !unreadable.is_empty() {
        return Err(BackupError::Refused(format!(
            "the role {role:?} may not read {}; back up as a backup role (the owner runs \
             SELECT mcpg_grant_backup_role('{role}')) or as the owner",
            unreadable.join(", ")
        )));
    }
    if superuser || bypass || catalog::row_security_tables(tx).await?.is_empty() {
        return Ok(());
    }
    if listed_in(tx, "mcpg_global_roles").await? || listed_in(tx, "mcpg_backup_roles").await? {
        return Ok(());
    }
    Err(BackupError::Refused(format!(
        "the role {role:?} would read no tenant rows: row-level security shows every org \
         only to roles listed in mcpg_backup_roles or mcpg_global_roles, so this backup \
         would silently miss rows; back up with --database-url as a backup role (the owner \
         runs SELECT mcpg_grant_backup_role('mcpg_backup')), a global role or the owner"
    )))
}

/// Whether the session's login role is listed in `table` (a role list it may not read
/// does not list it, as far as its policies go).
async fn listed_in(tx: &mut PgConnection, table: &str) -> Result<bool, BackupError> {
    let readable: bool = sqlx::query_scalar(
        "SELECT CASE WHEN to_regclass($1) IS NULL THEN false \
         ELSE has_table_privilege($1, 'SELECT') END",
    )
    .bind(table)
    .fetch_one(&mut *tx)
    .await?;
    if !readable {
        return Ok(false);
    }
    Ok(sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE role_name = session_user::text)",
        quote(table)
    ))
    .fetch_one(&mut *tx)
    .await?)
}
