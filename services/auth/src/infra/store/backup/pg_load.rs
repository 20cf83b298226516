//! PostgreSQL restores: the whole file is verified first (hash, counts, schema version);
//! then, as the owner, the embedded migrations create the schema in an empty database and
//! one transaction loads every table in foreign-key order, with row-level security not
//! forced for the load (the owner is subject to forced policies) and forced again before
//! the commit, so a failure anywhere leaves the database as it was.

use std::collections::BTreeMap;
use std::path::Path;

use sqlx::{Connection, PgConnection};

use super::catalog::{self, quote};
use super::format::{self, BackupReader, Header};
use super::{BackupError, BackupSummary, Progress};
use crate::infra::store::postgres::MIGRATOR;

/// The role lists: rows name login roles of the old cluster, kept only where such a role
/// exists here, and not part of the "empty database" test (migrations list the owner).
const ROLE_TABLES: [&str; 2] = ["mcpg_global_roles", "mcpg_backup_roles"];

/// Rows per INSERT, and bytes of JSON per INSERT.
const CHUNK_ROWS: usize = 1000;
const CHUNK_BYTES: usize = 4 << 20;

/// Restores the backup `from` into the empty database at `owner_url`.
pub(super) async fn restore(
    owner_url: &str,
    from: &Path,
    progress: Progress<'_>,
) -> Result<BackupSummary, BackupError> {
    let (header, counts) = format::verify(from)?;
    let expected = catalog::expected_migrations();
    if header.migrations != expected {
        return Err(BackupError::SchemaMismatch {
            what: format!("the backup {}", from.display()),
            found: header.schema_version,
            expected: expected.last().copied().unwrap_or_default(),
        });
    }
    let mut conn = PgConnection::connect(owner_url).await?;
    let result = load(&mut conn, from, &header, &counts, progress).await;
    let _ = conn.close().await;
    let (rows, notes) = result?;
    Ok(BackupSummary {
        backend: "postgres",
        tables: header.tables.len(),
        rows,
        bytes: std::fs::metadata(from).map(|m| m.len()).unwrap_or_default(),
        notes,
        ..BackupSummary::default()
    })
}

async fn load(
    conn: &mut PgConnection,
    from: &Path,
    header: &Header,
    counts: &BTreeMap<String, u64>,
    progress: Progress<'_>,
) -> Result<(u64, Vec<String>), BackupError> {
    create_schema(conn, &header.migrations).await?;
    check_owner(conn).await?;
    let tables = catalog::tables_in_order(conn).await?;
    let (mut have, mut want) = (tables.clone(), header.tables.clone());
    have.sort();
    want.sort();
    if have != want {
        return Err(BackupError::not_a_backup(
            from,
            format!("its tables {want:?} are not this schema's {have:?}"),
        ));
    }
    if !catalog::is_foreign_key_order(&header.tables, &catalog::references(conn).await?) {
        return Err(BackupError::not_a_backup(
            from,
            "its tables are not in foreign-key order",
        ));
    }
    let secured = catalog::row_security_tables(conn).await?;
    let mut tx = conn.begin().await?;
    for table in &secured {
        let sql = format!("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY", quote(table));
        sqlx::query(&sql).execute(&mut *tx).await?;
    }
    check_empty(&mut tx, &tables).await?;
    let notes = insert_rows(&mut tx, from, progress).await?;
    let rows = check_counts(&mut tx, counts).await?;
    advance_sequences(&mut tx).await?;
    for table in &secured {
        let sql = format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY", quote(table));
        sqlx::query(&sql).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok((rows, notes))
}

/// Runs the migrations on a database without a schema; accepts one already at this
/// binary's migrations (checked empty later); refuses anything else.
async fn create_schema(conn: &mut PgConnection, expected: &[i64]) -> Result<(), BackupError> {
    match catalog::applied_migrations(conn).await? {
        Some(applied) if applied == expected => Ok(()),
        Some(applied) => Err(BackupError::SchemaMismatch {
            what: "the target database".into(),
            found: applied.last().copied().unwrap_or_default(),
            expected: expected.last().copied().unwrap_or_default(),
        }),
        None if catalog::tables_in_order(conn).await?.is_empty() => {
            MIGRATOR.run(&mut *conn).await?;
            Ok(())
        }
        None => Err(BackupError::Refused(
            "the target database has tables but no mcpg-auth migration history; restore \
             into a new, empty database"
                .into(),
        )),
    }
}

/// Refuses a role that does not own the schema's tables (it could not lift the forced
/// row-level security for the load).
async fn check_owner(conn: &mut PgConnection) -> Result<(), BackupError> {
    let (role, foreign): (String, i64) = sqlx::query_as(
        "SELECT current_user::text, count(*) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
         AND NOT pg_has_role(current_user, c.relowner, 'USAGE')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if foreign > 0 {
        return Err(BackupError::Refused(format!(
            "the role {role:?} does not own the schema's tables; restore as the owner \
             (--migrate-database-url, or a --database-url that logs in as the owner)"
        )));
    }
    Ok(())
}

/// Refuses a database with rows in any table but the role lists.
async fn check_empty(tx: &mut PgConnection, tables: &[String]) -> Result<(), BackupError> {
    let mut filled = Vec::new();
    for table in tables.iter().filter(|t| !ROLE_TABLES.contains(&t.as_str())) {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", quote(table));
        if sqlx::query_scalar::<_, bool>(&sql)
            .fetch_one(&mut *tx)
            .await?
        {
            filled.push(table.as_str());
        }
    }
    if filled.is_empty() {
        return Ok(());
    }
    Err(BackupError::Refused(format!(
        "the target database is not empty ({} have rows); restore into a new, empty database",
        filled.join(", ")
    )))
}

/// Inserts every row of the file, a chunk of one table at a time; returns notes on role
/// names left out.
async fn insert_rows(
    tx: &mut PgConnection,
    from: &Path,
    progress: Progress<'_>,
) -> Result<Vec<String>, BackupError> {
    let (mut reader, _) = BackupReader::open(from)?;
    let mut notes = Vec::new();
    let mut chunk = Chunk::default();
    while let Some(row) = reader.next_row(from)? {
        if chunk.table != row.t || chunk.is_full() {
            chunk.flush(tx, &mut notes, progress).await?;
            chunk.table = row.t;
        }
        chunk.push(&row.r);
    }
    chunk.flush(tx, &mut notes, progress).await?;
    Ok(notes)
}

/// Rows of one table waiting to be inserted, as a JSON array.
#[derive(Default)]
struct Chunk {
    table: String,
    json: String,
    rows: usize,
}

impl Chunk {
    fn is_full(&self) -> bool {
        self.rows >= CHUNK_ROWS || self.json.len() >= CHUNK_BYTES
    }

    fn push(&mut self, row: &serde_json::Value) {
        self.json.push(if self.rows == 0 { '[' } else { ',' });
        self.json.push_str(&row.to_string());
        self.rows += 1;
    }

    async fn flush(
        &mut self,
        tx: &mut PgConnection,
        notes: &mut Vec<String>,
        progress: Progress<'_>,
    ) -> Result<(), BackupError> {
        if self.rows == 0 {
            return Ok(());
        }
        self.json.push(']');
        let table = quote(&self.table);
        let rows = format!("json_populate_recordset(NULL::{table}, $1::json)");
        if ROLE_TABLES.contains(&self.table.as_str()) {
            let missing: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT r.role_name FROM {rows} r \
                 WHERE r.role_name NOT IN (SELECT rolname FROM pg_roles) ORDER BY 1"
            ))
            .bind(&self.json)
            .fetch_all(&mut *tx)
            .await?;
            if !missing.is_empty() {
                notes.push(format!(
                    "{}: left out {} (no such role in this cluster)",
                    self.table,
                    missing.join(", ")
                ));
            }
            sqlx::query(&format!(
                "INSERT INTO {table} SELECT r.* FROM {rows} r \
                 WHERE r.role_name IN (SELECT rolname FROM pg_roles) ON CONFLICT DO NOTHING"
            ))
            .bind(&self.json)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(&format!("INSERT INTO {table} SELECT * FROM {rows}"))
                .bind(&self.json)
                .execute(&mut *tx)
                .await?;
        }
        progress(&format!("{}: {} rows", self.table, self.rows));
        self.json.clear();
        self.rows = 0;
        Ok(())
    }
}

/// Checks every table but the role lists holds what the trailer counted; returns the rows
/// of the backup.
async fn check_counts(
    tx: &mut PgConnection,
    counts: &BTreeMap<String, u64>,
) -> Result<u64, BackupError> {
    for (table, expected) in counts {
        if ROLE_TABLES.contains(&table.as_str()) {
            continue;
        }
        let sql = format!("SELECT count(*) FROM {}", quote(table));
        let found: i64 = sqlx::query_scalar(&sql).fetch_one(&mut *tx).await?;
        if found.unsigned_abs() != *expected {
            return Err(BackupError::Refused(format!(
                "{table} holds {found} rows after the load, the backup {expected}; nothing \
                 was restored"
            )));
        }
    }
    Ok(counts.values().sum())
}

/// Moves every sequence behind a column (serial or identity) past the column's highest
/// value, so new rows do not collide with restored ones.
async fn advance_sequences(tx: &mut PgConnection) -> Result<(), BackupError> {
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text, s.seq FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         CROSS JOIN LATERAL (SELECT pg_get_serial_sequence(quote_ident(c.relname), a.attname) \
           AS seq) s \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND s.seq IS NOT NULL",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (table, column, sequence) in columns {
        let sql = format!(
            "SELECT setval($1::regclass, COALESCE((SELECT max({}) FROM {}), 0) + 1, false)",
            quote(&column),
            quote(&table)
        );
        sqlx::query(&sql).bind(sequence).execute(&mut *tx).await?;
    }
    Ok(())
}
