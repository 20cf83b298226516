//! Persistence over SQLite (default, embedded) or PostgreSQL (replicas), behind one API.
//!
//! The backends are an enum, not `AnyPool`: each keeps its own pool and migrations
//! (`migrations/sqlite`, `migrations/postgres`). The SQL is written once in the portable
//! subset both understand (`$N` placeholders, `RETURNING`, `ON CONFLICT`, integers for
//! times, JSON as text); the `on_pool!`/`in_tx!` macros expand a body once per backend.
//!
//! Tenant-owned data is reached through [`Store::tenant`], a handle bound to one org id:
//! every query of it filters on `org_id` and, on PostgreSQL, runs in a transaction that
//! row-level security binds to that org (see the `scope` module).

mod archives;
mod audit_log;
mod audit_query;
pub(crate) mod backup;
mod bindings;
mod changes;
mod console_sessions;
mod dev_root;
mod directory;
mod fleet;
mod gateways;
mod grants;
mod hierarchy;
mod key_certificates;
mod keys;
mod lifecycle;
#[cfg(test)]
mod migration_0017_tests;
mod oidc;
mod orgs;
mod plugin_sets;
mod postgres;
mod reconcile;
mod replicas;
mod revocations;
pub(crate) mod scope;
mod tokens;
mod usage;
mod usage_days;
mod usage_import;

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgPool;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use thiserror::Error;

#[cfg(test)]
pub(crate) use archives::ArchivedCheckpoint;
pub(crate) use archives::{ArchiveSummary, ArchivedChain, RestoreRefusal};
pub use audit_log::{Actor, AuditAction, Event};
pub(crate) use audit_query::{AuditFilter, CheckpointRecord};
pub(crate) use bindings::{BindingRecord, BindingSpec, NewImpersonation, UserTokenRecord};
pub(crate) use changes::{CHANNEL, Change, Changes, GrantScope, WriteTx};
pub(crate) use console_sessions::{NewConsoleSession, SessionOwner, SessionSignIn};
pub(crate) use dev_root::StoredRoot;
pub(crate) use directory::{DirectoryGateway, DirectoryOrg};
pub(crate) use fleet::{OrgSummary, TokenTimeFilter};
pub(crate) use gateways::{BatchGateway, MAX_BATCH};
pub(crate) use grants::{GatewayGrant, LicenseRecord};
pub use hierarchy::TenantStore;
pub(crate) use hierarchy::{EnvironmentRecord, GatewayRecord, LicenseSpec, WorkspaceRecord};
pub(crate) use key_certificates::{KeyCertificateRecord, NewKeyCertificate};
pub(crate) use keys::{KeyRecord, NewKey};
pub(crate) use lifecycle::DeleteTarget;
pub(crate) use oidc::OidcConfigRecord;
pub(crate) use orgs::OrgPatch;
pub use orgs::{NewOrg, OrgRecord};
pub(crate) use plugin_sets::PluginSetRecord;
pub(crate) use reconcile::ApplyError;
pub(crate) use replicas::ReplicaRow;
pub(crate) use tokens::{AdminTokenRecord, ApiTokenRecord};
pub(crate) use usage::OrgUsage;
pub(crate) use usage_days::GatewayDayDelta;
pub(crate) use usage_import::{ImportOutcome, OnRecord};

/// Expands `$body` once per backend with `$pool` bound to that backend's pool — on
/// PostgreSQL, to a transaction bound to `$store`'s [`scope::Scope`] (a `&Store`, a
/// `TenantStore`'s store or [`Store::global`]), committed when the body completes.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.backend() {
            $crate::infra::store::Backend::Sqlite($pool) => $body,
            $crate::infra::store::Backend::Postgres(pg) => {
                let mut tx = pg.begin().await?;
                $crate::infra::store::scope::enter(&mut *tx, $store.scope()).await?;
                let $pool = &mut *tx;
                let out = $body;
                tx.commit().await?;
                out
            }
        }
    };
}

/// Runs `$body` in a write transaction (`BEGIN IMMEDIATE` on SQLite, so writers queue
/// instead of failing with `SQLITE_BUSY` on upgrade; bound to `$store`'s scope on
/// PostgreSQL, where the changes it records are also announced to the other replicas),
/// committed when the body completes.
/// An early return through `?` drops the transaction, which rolls it back.
macro_rules! in_tx {
    ($store:expr, $tx:ident => $body:expr) => {{
        let store = &$store;
        match store.backend() {
            $crate::infra::store::Backend::Sqlite(pool) => {
                let mut $tx =
                    $crate::infra::store::WriteTx::new(pool.begin_with("BEGIN IMMEDIATE").await?);
                let out = $body;
                $tx.commit(store.changes()).await?;
                out
            }
            $crate::infra::store::Backend::Postgres(pool) => {
                let mut $tx = $crate::infra::store::WriteTx::new(pool.begin().await?);
                $crate::infra::store::scope::enter(&mut *$tx, store.scope()).await?;
                let out = $body;
                $tx.notify_peers(store.changes().sender()).await?;
                $tx.commit(store.changes()).await?;
                out
            }
        }
    }};
}
pub(crate) use {in_tx, on_pool};

/// A storage failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// No such row.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness or state conflict.
    #[error("{0}")]
    Conflict(&'static str),
    /// A create that would pass the license's limit.
    #[error("quota exceeded: {key} is {limit} and {usage} are in use")]
    Quota {
        /// Which limit.
        key: mcpg_license_core::LimitKey,
        /// The license's limit.
        limit: u64,
        /// What exists already.
        usage: i64,
    },
    /// A name (or other unique value) already in use, said in words.
    #[error("{0}")]
    Duplicate(String),
    /// A delete of something that still has children, without cascade.
    #[error("{0}")]
    HasChildren(String),
    /// A stored value that cannot be decoded (a bug or tampering).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The service's database role could bypass row-level security.
    #[error("{0}")]
    UnsafeRole(String),
    /// The schema is older than this binary.
    #[error("{0}")]
    NotMigrated(String),
    /// A plugin set the catalog or the org's license in force refuses (nothing written).
    #[error("{}", .0.message())]
    PluginSetRefused(crate::domain::plugin_sets::PluginSetRefusal),
    /// A license change that would take plugins from these plugin sets, not forced
    /// (nothing written).
    #[error("the license would take plugins from {} plugin set(s)", .0.len())]
    PluginSetConflict(Vec<crate::domain::plugin_sets::AffectedSet>),
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Conflict`].
    pub(crate) fn unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |error| match error.as_database_error() {
            Some(db) if db.is_unique_violation() => StoreError::Conflict(what),
            _ => StoreError::Database(error),
        }
    }
}

/// The database pools.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The service's storage; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// PostgreSQL: the pool of the cross-tenant paths (a role listed in
    /// `mcpg_global_roles`); `None`: `backend` serves them too.
    global: Option<Backend>,
    /// Where committed writes publish what they changed (see `changes`).
    changes: std::sync::Arc<Changes>,
}

/// Which backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BackendKind {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Store {
    /// Opens (creating if needed) the database named by `options.url`, or SQLite at
    /// `default_sqlite`, and applies the embedded migrations. On PostgreSQL the migrations
    /// run as the owner (`options.migrate_url`) and the service's own role is checked (see
    /// the `postgres` module).
    pub async fn connect(
        options: &DatabaseOptions<'_>,
        default_sqlite: &std::path::Path,
    ) -> Result<Self, StoreError> {
        let (backend, global) = match options.url {
            Some(url) if is_postgres(url.expose_secret()) => {
                let pools = postgres::connect(options).await?;
                (
                    Backend::Postgres(pools.tenant),
                    pools.global.map(Backend::Postgres),
                )
            }
            Some(url) => (
                Backend::Sqlite(
                    open_sqlite(SqliteConnectOptions::from_str(url.expose_secret())?).await?,
                ),
                None,
            ),
            None => (
                Backend::Sqlite(
                    open_sqlite(SqliteConnectOptions::new().filename(default_sqlite)).await?,
                ),
                None,
            ),
        };
        Ok(Self {
            backend,
            global,
            changes: std::sync::Arc::default(),
        })
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The backend of the cross-tenant paths (see `scope`).
    pub(crate) fn global_backend(&self) -> &Backend {
        self.global.as_ref().unwrap_or(&self.backend)
    }

    /// Which backend this is.
    pub(crate) fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Where committed writes publish what they changed.
    pub(crate) fn changes(&self) -> &Changes {
        &self.changes
    }

    /// A handle for one org's data.
    pub fn tenant<'a>(&'a self, org_id: &'a str) -> TenantStore<'a> {
        TenantStore::new(self, org_id)
    }

    /// The PostgreSQL pool the service's own role connects through; `None` on SQLite.
    pub(crate) fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.backend {
            Backend::Postgres(pool) => Some(pool),
            Backend::Sqlite(_) => None,
        }
    }

    /// Whether the database answers.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        for backend in std::iter::once(&self.backend).chain(self.global.as_ref()) {
            match backend {
                Backend::Sqlite(pool) => pool.close().await,
                Backend::Postgres(pool) => pool.close().await,
            }
        }
    }
}

/// How to reach the database.
#[derive(Debug, Clone, Copy, Default)]
pub struct DatabaseOptions<'a> {
    /// The service's database URL; `None` means SQLite at the default path.
    pub url: Option<&'a SecretString>,
    /// PostgreSQL: the owner role's URL, used only to run migrations and grant the
    /// service's role its privileges.
    pub migrate_url: Option<&'a SecretString>,
    /// PostgreSQL: the URL of the role the cross-tenant paths run as (listed in
    /// `mcpg_global_roles`); `None`: the owner's (`migrate_url`).
    pub global_url: Option<&'a SecretString>,
    /// PostgreSQL: accept a service role that owns the schema or bypasses row-level
    /// security (development only).
    pub allow_owner_connection: bool,
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// This binary's SQLite migrations.
pub(crate) static SQLITE_MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/sqlite");

async fn open_sqlite(options: SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    // FULL: an acknowledged write survives a power cut or kill -9, at the price of an
    // fsync per commit; licence changes are rare and must not be lost.
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        // 512 KiB of page cache per connection instead of SQLite's 2 MiB: the token path
        // reads the credential directory, not SQLite, and the file's pages stay in the
        // kernel's cache anyway; eight full default caches were 16 MiB of the service's
        // memory (heaptrack, docs/BENCHMARKS.md).
        .pragma("cache_size", "-512");
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    SQLITE_MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Encodes a value as the JSON text stored in a column.
pub(crate) fn to_json_text<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Decodes a JSON text column.
pub(crate) fn from_json_text<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}
