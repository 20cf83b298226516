//! Which tenant's rows a query may touch.
//!
//! On PostgreSQL every tenant table (every table with an `org_id`) is under forced
//! row-level security (`migrations/postgres/0003_row_level_security.sql`): a transaction
//! sees and writes only the rows of the org named by the transaction-local setting
//! `mcpg.org_id`, and no tenant row at all otherwise — unless its session logged in as a
//! role listed in `mcpg_global_roles` (migration 0010), which sees every row. The service's
//! own role is never listed: [`Scope::Global`] runs on a second pool that logs in as such
//! a role (`--global-database-url`, else the owner), so no SQL on the tenant pool can
//! switch isolation off, whatever settings it sets. The `on_pool!`/`in_tx!` macros run every PostgreSQL query in a transaction
//! whose first statement sets its scope with `set_config(…, true)`: the setting ends with
//! the transaction, so a pooled connection never carries it to its next user (nothing sets
//! it for a session).
//!
//! - [`crate::infra::store::TenantStore`] runs in [`Scope::Org`] with its own org id: code given a
//!   tenant handle cannot reach another tenant, even through a query that forgets its
//!   `WHERE org_id`.
//! - `Store`'s own methods run in [`Scope::None`]: they see the tenant directory (`orgs`)
//!   and the key tables, which carry no `org_id`, and no tenant row.
//! - [`Store::global`] gives [`Scope::Global`], used deliberately by the few cross-tenant
//!   paths: the credential-hash lookups (gateway grant, API token — the secret hash is the
//!   selector, the org is what the lookup finds out), the OIDC login's lookup of the orgs
//!   configured with a token's issuer (the token's verified claims then pick the org,
//!   see `infra::oidc`), the batched `last_token_at` flush,
//!   the per-org gauges, and inserting global admin tokens.
//!
//! On SQLite there is no row-level security: the scope is not recorded and isolation is
//! the `WHERE org_id = $1` every tenant query carries.

use std::ops::Deref;

use sqlx::PgConnection;

use super::{Backend, Store};

/// Whose rows a transaction may touch.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// No tenant's rows (only tables without `org_id`).
    None,
    /// One org's rows.
    Org(&'a str),
    /// Every org's rows.
    Global,
}

/// A store bound to a scope: what `on_pool!`/`in_tx!` run against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scoped<'a> {
    store: &'a Store,
    scope: Scope<'a>,
}

impl<'a> Scoped<'a> {
    /// The store bound to one org.
    pub(crate) fn org(store: &'a Store, org_id: &'a str) -> Self {
        Self {
            store,
            scope: Scope::Org(org_id),
        }
    }

    /// The pool this scope runs on: the cross-tenant pool for [`Scope::Global`].
    pub(crate) fn backend(&self) -> &'a Backend {
        match self.scope {
            Scope::Global => self.store.global_backend(),
            Scope::None | Scope::Org(_) => self.store.backend(),
        }
    }

    pub(crate) fn scope(&self) -> Scope<'a> {
        self.scope
    }
}

impl Deref for Scoped<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.store
    }
}

impl Store {
    /// The scope of `Store`'s own queries: no tenant rows.
    pub(crate) fn scope(&self) -> Scope<'static> {
        Scope::None
    }

    /// The store with every tenant's rows visible, for the deliberate cross-tenant paths
    /// listed in the module docs.
    pub(crate) fn global(&self) -> Scoped<'_> {
        Scoped {
            store: self,
            scope: Scope::Global,
        }
    }
}

/// Binds the current PostgreSQL transaction to `scope` (transaction-local settings).
pub(crate) async fn enter(conn: &mut PgConnection, scope: Scope<'_>) -> Result<(), sqlx::Error> {
    match scope {
        Scope::None => {}
        Scope::Org(org_id) => {
            sqlx::query("SELECT set_config('mcpg.org_id', $1, true)")
                .bind(org_id)
                .execute(conn)
                .await?;
        }
        // Nothing to set: the global pool's login role is what lets it see every org.
        Scope::Global => {}
    }
    Ok(())
}
