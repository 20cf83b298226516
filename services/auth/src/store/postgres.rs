//! Opening PostgreSQL with two roles: the owner runs migrations, the service runs as an
//! unprivileged role that row-level security applies to.
//!
//! - Both URLs given: migrations run over the owner URL, then the owner grants the
//!   service's role what it needs (`mcpg_grant_app_role`, defined by migration 0003), and
//!   the service's role is checked.
//! - Only the service URL given: the role must be safe (below) and the schema already
//!   migrated, unless `allow_owner_connection` is set, in which case an owner or superuser
//!   connection also runs the migrations and the service says loudly that isolation then
//!   rests on the application alone.
//!
//! A safe role is neither SUPERUSER nor BYPASSRLS (both ignore row-level security even
//! when it is forced) and neither owns, nor is a member of a role that owns, the schema
//! or any table in it (an owner can drop the policies).

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{DatabaseOptions, StoreError};

/// Advisory lock key serializing the grants of concurrently starting replicas.
const GRANT_LOCK: i64 = 0x6d63_7067_0003;

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// What the catalog says about the connected role.
#[derive(Debug, sqlx::FromRow)]
struct RoleFacts {
    role: String,
    superuser: bool,
    bypass_rls: bool,
    owned_tables: i64,
    owns_schema: bool,
}

impl RoleFacts {
    /// Why this role must not serve requests, if it must not.
    fn unsafe_because(&self) -> Option<String> {
        let why = if self.superuser {
            "is a superuser"
        } else if self.bypass_rls {
            "has BYPASSRLS"
        } else if self.owned_tables > 0 || self.owns_schema {
            "owns the schema or its tables"
        } else {
            return None;
        };
        Some(format!(
            "the database role {:?} {why}, so row-level security would not isolate tenants; \
             connect the service with --database-url as a role that owns nothing and run \
             migrations with --migrate-database-url as the owner \
             (or pass --allow-owner-connection for development only)",
            self.role
        ))
    }
}

const ROLE_FACTS: &str = "SELECT r.rolname::text AS role, r.rolsuper AS superuser, \
     r.rolbypassrls AS bypass_rls, \
     (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
      WHERE n.nspname = current_schema() AND pg_has_role(current_user, c.relowner, 'USAGE')) \
      AS owned_tables, \
     COALESCE((SELECT pg_has_role(current_user, n.nspowner, 'USAGE') FROM pg_namespace n \
      WHERE n.nspname = current_schema()), false) AS owns_schema \
     FROM pg_roles r WHERE r.rolname = current_user";

/// Connects the service's pool, migrating first when an owner URL is given.
pub(super) async fn connect(options: &DatabaseOptions<'_>) -> Result<PgPool, StoreError> {
    let url = options
        .url
        .map(ExposeSecret::expose_secret)
        .unwrap_or_default();
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(PgConnectOptions::from_str(url)?)
        .await?;
    let facts: RoleFacts = sqlx::query_as(ROLE_FACTS).fetch_one(&pool).await?;
    if let Some(owner_url) = options.migrate_url {
        migrate_as_owner(owner_url, &facts.role).await?;
        // Grants and ownership may have changed: judge the role after migrating.
        let facts: RoleFacts = sqlx::query_as(ROLE_FACTS).fetch_one(&pool).await?;
        return match facts.unsafe_because() {
            Some(why) if !options.allow_owner_connection => Err(StoreError::UnsafeRole(why)),
            _ => Ok(pool),
        };
    }
    match facts.unsafe_because() {
        None => {
            check_migrated(&pool).await?;
            Ok(pool)
        }
        Some(why) if options.allow_owner_connection => {
            tracing::warn!(
                role = %facts.role,
                "!!! --allow-owner-connection: {why}. Tenant isolation rests on the \
                 application alone. FOR DEVELOPMENT ONLY !!!"
            );
            MIGRATOR.run(&pool).await?;
            Ok(pool)
        }
        Some(why) => Err(StoreError::UnsafeRole(why)),
    }
}

async fn migrate_as_owner(owner_url: &SecretString, app_role: &str) -> Result<(), StoreError> {
    let owner = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(PgConnectOptions::from_str(owner_url.expose_secret())?)
        .await?;
    let result = async {
        MIGRATOR.run(&owner).await?;
        let owner_role: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(&owner)
            .await?;
        if owner_role != app_role {
            // Replicas starting together would race on the catalog's ACLs: one at a time.
            let mut tx = owner.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(GRANT_LOCK)
                .execute(&mut *tx)
                .await?;
            sqlx::query("SELECT mcpg_grant_app_role($1)")
                .bind(app_role)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok::<_, StoreError>(())
    }
    .await;
    owner.close().await;
    result
}

/// Refuses to serve on a schema older than this binary's migrations.
async fn check_migrated(pool: &PgPool) -> Result<(), StoreError> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    let missing: Vec<String> = MIGRATOR
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| format!("{:04}_{}", m.version, m.description.replace(' ', "_")))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(StoreError::NotMigrated(format!(
        "the database lacks migrations {}; run the service once with \
         --migrate-database-url set to the owner role's URL",
        missing.join(", ")
    )))
}
