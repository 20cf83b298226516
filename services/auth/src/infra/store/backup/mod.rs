//! `mcpg-auth backup` and `restore`: a consistent copy of the database in a file, and back.
//!
//! - SQLite: the backup is itself an SQLite database (`VACUUM INTO`, online and
//!   consistent); a restore checks it is this service's database at this binary's schema
//!   and moves it into place.
//! - PostgreSQL: the backup is JSON lines read in one repeatable-read snapshot by a role
//!   that sees every row despite forced row-level security (a backup role, a global role
//!   or the owner), with a header (schema, tables) and a trailer (row counts, SHA-256 of
//!   what precedes it); a restore verifies the whole file, then loads it as the owner into
//!   an empty database in one transaction.
//!
//! Every file is written to a temporary file next to its destination, fsynced and renamed,
//! so a crash leaves either the old file or the new one.

mod catalog;
mod file;
mod format;
mod pg_load;
mod pg_save;
mod sqlite;

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;

use super::is_postgres;

/// Why a backup or a restore did not happen.
#[derive(Debug, Error)]
pub enum BackupError {
    /// A file could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The embedded migrations could not be applied to the restore target.
    #[error("cannot create the schema")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The file is not a backup this binary can restore (garbage, truncated, edited, from
    /// another backend).
    #[error("{} is not a usable backup: {reason}", path.display())]
    NotABackup {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The backup or the database is at another schema version than this binary.
    #[error(
        "{what} is at schema version {found}, this mcpg-auth at {expected}; use the mcpg-auth release that matches it"
    )]
    SchemaMismatch {
        /// The backup or the database.
        what: String,
        /// Its version (the highest migration applied).
        found: i64,
        /// This binary's.
        expected: i64,
    },
    /// The operation is refused as asked (a role that cannot read every row, a database
    /// that is not empty, a file that exists).
    #[error("{0}")]
    Refused(String),
}

impl BackupError {
    /// An I/O error on `path` while doing `action`.
    pub(crate) fn io(
        action: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> Self + use<> {
        let path = path.to_owned();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    fn not_a_backup(path: &Path, reason: impl Into<String>) -> Self {
        Self::NotABackup {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The database a backup reads or a restore writes.
#[derive(Debug, Clone, Copy)]
pub struct BackupTarget<'a> {
    /// The service's database URL; `None`: SQLite at `default_sqlite`.
    pub url: Option<&'a SecretString>,
    /// PostgreSQL: the owner's URL (restores run as the owner).
    pub migrate_url: Option<&'a SecretString>,
    /// The SQLite database when no URL is given (`<data-dir>/mcpg.db`).
    pub default_sqlite: &'a Path,
}

/// Which backend a target is, with what it needs.
enum Resolved<'a> {
    Sqlite(PathBuf),
    Postgres {
        url: &'a str,
        owner_url: Option<&'a str>,
    },
}

impl<'a> BackupTarget<'a> {
    /// The backend: PostgreSQL when either URL is one (a restore may name only the owner).
    fn resolve(&self) -> Result<Resolved<'a>, BackupError> {
        match self
            .url
            .or(self.migrate_url)
            .map(ExposeSecret::expose_secret)
        {
            Some(url) if is_postgres(url) => Ok(Resolved::Postgres {
                url,
                owner_url: self.migrate_url.map(ExposeSecret::expose_secret),
            }),
            Some(url) => Ok(Resolved::Sqlite(sqlite::path_of_url(url)?)),
            None => Ok(Resolved::Sqlite(self.default_sqlite.to_owned())),
        }
    }
}

/// What a backup or a restore did, for the summary line.
#[derive(Debug, Default)]
pub struct BackupSummary {
    /// The backend.
    pub backend: &'static str,
    /// Tables in the backup.
    pub tables: usize,
    /// Rows copied.
    pub rows: u64,
    /// Size of the backup file.
    pub bytes: u64,
    /// How long it took.
    pub elapsed: Duration,
    /// Remarks worth a line each (roles left out, the old database kept aside).
    pub notes: Vec<String>,
}

impl std::fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} tables, {} rows, {} bytes in {:.1}s",
            self.backend,
            self.tables,
            self.rows,
            self.bytes,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Progress lines (one per table) go to this function.
pub type Progress<'a> = &'a dyn Fn(&str);

/// Writes a backup of `target` to `out`.
pub async fn backup(
    target: &BackupTarget<'_>,
    out: &Path,
    progress: Progress<'_>,
) -> Result<BackupSummary, BackupError> {
    let started = std::time::Instant::now();
    let mut summary = match target.resolve()? {
        Resolved::Sqlite(path) => sqlite::backup(&path, out, progress).await?,
        Resolved::Postgres { url, .. } => pg_save::backup(url, out, progress).await?,
    };
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Restores the backup `from` into `target`; `force` lets an SQLite restore replace an
/// existing database (kept aside).
pub async fn restore(
    target: &BackupTarget<'_>,
    from: &Path,
    force: bool,
    progress: Progress<'_>,
) -> Result<BackupSummary, BackupError> {
    let started = std::time::Instant::now();
    let kind = file::sniff(from)?;
    let mut summary = match (target.resolve()?, kind) {
        (Resolved::Sqlite(path), file::Kind::Sqlite) => {
            sqlite::restore(from, &path, force, progress).await?
        }
        (Resolved::Postgres { url, owner_url }, file::Kind::JsonLines) => {
            pg_load::restore(owner_url.unwrap_or(url), from, progress).await?
        }
        (Resolved::Sqlite(_), file::Kind::JsonLines) => {
            return Err(BackupError::Refused(format!(
                "{} is a PostgreSQL backup and the target is SQLite; restore it with \
                 --database-url postgres://… (the owner, or --migrate-database-url)",
                from.display()
            )));
        }
        (Resolved::Postgres { .. }, file::Kind::Sqlite) => {
            return Err(BackupError::Refused(format!(
                "{} is an SQLite backup and the target is PostgreSQL; restore it without \
                 a postgres:// --database-url (into --data-dir)",
                from.display()
            )));
        }
    };
    summary.elapsed = started.elapsed();
    Ok(summary)
}
