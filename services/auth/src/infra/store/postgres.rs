//! Opening PostgreSQL with two roles: the owner runs migrations, the service runs as an
//! unprivileged role that row-level security applies to.
//!
//! - Both URLs given: migrations run over the owner URL, then the owner grants the
//!   service's role what it needs (`mcpg_grant_app_role`, defined by migration 0003), and
//!   the service's role is checked.
//! - The cross-tenant paths run on a second pool whose login role is listed in
//!   `mcpg_global_roles` (migration 0010): the role of `--global-database-url` (granted
//!   and listed by the owner with `mcpg_grant_global_role`), else the owner. The
//!   service's own role is never listed, so no SQL on its connection can see across orgs.
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

/// This binary's PostgreSQL migrations.
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

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

/// The service's pools: tenant transactions run on `tenant`; the cross-tenant paths on
/// `global` (`None`: on `tenant`, whose role is then the owner — development only).
pub(super) struct Pools {
    pub(super) tenant: PgPool,
    pub(super) global: Option<PgPool>,
}

fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
}

/// Connects the service's pools, migrating first when an owner URL is given.
pub(super) async fn connect(options: &DatabaseOptions<'_>) -> Result<Pools, StoreError> {
    let url = options
        .url
        .map(ExposeSecret::expose_secret)
        .unwrap_or_default();
    let pool = pool_options()
        .connect_with(PgConnectOptions::from_str(url)?)
        .await?;
    let facts: RoleFacts = sqlx::query_as(ROLE_FACTS).fetch_one(&pool).await?;
    let global = match options.global_url {
        Some(global_url) => {
            let global = pool_options()
                .connect_with(PgConnectOptions::from_str(global_url.expose_secret())?)
                .await?;
            let role: String = sqlx::query_scalar("SELECT session_user::text")
                .fetch_one(&global)
                .await?;
            if role == facts.role {
                return Err(StoreError::UnsafeRole(format!(
                    "--global-database-url logs in as {role:?}, the role of --database-url; \
                     the cross-tenant role must be another one"
                )));
            }
            Some((global, role))
        }
        None => None,
    };
    if let Some(owner_url) = options.migrate_url {
        let global_role = global.as_ref().map(|(_, role)| role.as_str());
        migrate_as_owner(owner_url, &facts.role, global_role).await?;
        // Grants and ownership may have changed: judge the role after migrating.
        let facts: RoleFacts = sqlx::query_as(ROLE_FACTS).fetch_one(&pool).await?;
        if let Some(why) = facts.unsafe_because()
            && !options.allow_owner_connection
        {
            return Err(StoreError::UnsafeRole(why));
        }
    } else {
        match facts.unsafe_because() {
            None => check_migrated(&pool).await?,
            Some(why) if options.allow_owner_connection => {
                tracing::warn!(
                    role = %facts.role,
                    "!!! --allow-owner-connection: {why}. Tenant isolation rests on the \
                     application alone. FOR DEVELOPMENT ONLY !!!"
                );
                MIGRATOR.run(&pool).await?;
            }
            Some(why) => return Err(StoreError::UnsafeRole(why)),
        }
    }
    let global = match (global, options.migrate_url) {
        (Some((global, _)), _) => Some(global),
        // Without a role of its own, the owner serves the cross-tenant paths.
        (None, Some(owner_url)) => Some(
            pool_options()
                .connect_with(PgConnectOptions::from_str(owner_url.expose_secret())?)
                .await?,
        ),
        (None, None) if options.allow_owner_connection => None,
        (None, None) => {
            return Err(StoreError::UnsafeRole(
                "the cross-tenant paths (credential lookups, tenants apply, gauges) need a \
                 role of their own: pass --global-database-url (a role granted by \
                 mcpg_grant_global_role, see docs/OPERATIONS.md) or --migrate-database-url"
                    .into(),
            ));
        }
    };
    check_global_roles(&pool, global.as_ref(), options.allow_owner_connection).await?;
    Ok(Pools {
        tenant: pool,
        global,
    })
}

/// The tenant role must not be a global role; the global pool's must be.
async fn check_global_roles(
    tenant: &PgPool,
    global: Option<&PgPool>,
    allow_owner_connection: bool,
) -> Result<(), StoreError> {
    let (role, listed) = role_listing(tenant).await?;
    if listed && !allow_owner_connection {
        return Err(StoreError::UnsafeRole(format!(
            "the database role {role:?} of --database-url is listed in mcpg_global_roles, so \
             it would see every org's rows; run the service with --migrate-database-url once \
             (it removes the listing) or use another role"
        )));
    }
    if let Some(global) = global {
        let (role, listed) = role_listing(global).await?;
        if !listed {
            return Err(StoreError::UnsafeRole(format!(
                "the database role {role:?} of --global-database-url is not a global role; \
                 start once with --migrate-database-url to register it, or have the owner \
                 run SELECT mcpg_grant_global_role('{role}')"
            )));
        }
    }
    Ok(())
}

/// The pool's login role and whether it is listed in `mcpg_global_roles` (a role that may
/// not even read the list is not).
async fn role_listing(pool: &PgPool) -> Result<(String, bool), StoreError> {
    let (role, readable): (String, bool) = sqlx::query_as(
        "SELECT session_user::text, has_table_privilege('mcpg_global_roles', 'SELECT')",
    )
    .fetch_one(pool)
    .await?;
    if !readable {
        return Ok((role, false));
    }
    let listed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM mcpg_global_roles WHERE role_name = session_user::text)",
    )
    .fetch_one(pool)
    .await?;
    Ok((role, listed))
}

async fn migrate_as_owner(
    owner_url: &SecretString,
    app_role: &str,
    global_role: Option<&str>,
) -> Result<(), StoreError> {
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
        // Replicas starting together would race on the catalog's ACLs: one at a time.
        let mut tx = owner.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(GRANT_LOCK)
            .execute(&mut *tx)
            .await?;
        if owner_role != app_role {
            sqlx::query("SELECT mcpg_grant_app_role($1)")
                .bind(app_role)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(global_role) = global_role.filter(|role| *role != owner_role) {
            sqlx::query("SELECT mcpg_grant_global_role($1)")
                .bind(global_role)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
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
