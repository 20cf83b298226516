//! One org's data: its license, workspaces, environments and gateways. Every query here
//! filters on the handle's `org_id` and, on PostgreSQL, runs in a transaction that
//! row-level security binds to that org (`store::scope`); nothing in this module can reach
//! another tenant.

use mcpg_license_core::{EntitlementId, Limits, Tier};
use std::borrow::Cow;

use serde_json::json;
use sqlx::FromRow;

use super::audit_log::{Actor, AuditAction, Event};
use super::grants::{LICENSE_COLUMNS, LicenseRow};
use super::lifecycle::lock_org_sql;
use super::plugin_sets::{ORG_SETS_SQL, PluginSetRow, affected_by_license};
use super::scope::Scoped;
use super::{LicenseRecord, Store, StoreError, in_tx, on_pool, to_json_text};
use crate::domain::new_id;
use crate::domain::plugin_sets::AffectedSet;

/// A store handle bound to one org.
#[derive(Debug, Clone, Copy)]
pub struct TenantStore<'a> {
    store: Scoped<'a>,
    org_id: &'a str,
    actor: Option<&'a Actor>,
}

/// The license terms an admin sets.
#[derive(Debug, Clone)]
pub(crate) struct LicenseSpec {
    /// Tier.
    pub(crate) tier: Tier,
    /// Entitlements added to the tier's defaults.
    pub(crate) add: Vec<EntitlementId>,
    /// Entitlements removed from the tier's defaults.
    pub(crate) remove: Vec<EntitlementId>,
    /// Limits.
    pub(crate) limits: Limits,
    /// Start (Unix seconds).
    pub(crate) valid_from: i64,
    /// End (Unix seconds).
    pub(crate) valid_until: i64,
}

/// A workspace.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct WorkspaceRecord {
    /// Internal id.
    pub(crate) id: String,
    /// Slug.
    pub(crate) slug: String,
    /// Created.
    pub(crate) created_at: i64,
}

/// An environment.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct EnvironmentRecord {
    /// Internal id.
    pub(crate) id: String,
    /// Slug.
    pub(crate) slug: String,
    /// Its workspace's slug.
    pub(crate) workspace: String,
    /// Created.
    pub(crate) created_at: i64,
}

/// A registered gateway instance (never its credential).
#[derive(Debug, Clone, FromRow)]
pub(crate) struct GatewayRecord {
    /// Gateway id (the token's `sub`).
    pub(crate) id: String,
    /// Name given at registration.
    pub(crate) name: String,
    /// Workspace slug.
    pub(crate) workspace: String,
    /// Environment slug.
    pub(crate) environment: String,
    /// First characters of the credential.
    pub(crate) credential_prefix: String,
    /// Registered.
    pub(crate) created_at: i64,
    /// Last token issued (flushed periodically).
    pub(crate) last_token_at: Option<i64>,
    /// Revoked.
    pub(crate) revoked_at: Option<i64>,
}

pub(super) const GATEWAY_SELECT: &str = "SELECT g.id, g.name, w.slug AS workspace, e.slug AS environment, \
     g.credential_prefix, g.created_at, g.last_token_at, g.revoked_at \
     FROM gateways g JOIN environments e ON e.id = g.environment_id \
     JOIN workspaces w ON w.id = g.workspace_id";

impl<'a> TenantStore<'a> {
    pub(super) fn new(store: &'a Store, org_id: &'a str) -> Self {
        Self {
            store: Scoped::org(store, org_id),
            org_id,
            actor: None,
        }
    }

    /// The handle with `actor` recorded as the author of its changes in the audit chain
    /// (without it, changes are recorded as the service's own).
    pub(crate) fn acting(self, actor: &'a Actor) -> Self {
        Self {
            actor: Some(actor),
            ..self
        }
    }

    /// Who the audit chain names for this handle's changes.
    pub(super) fn actor(&self) -> Cow<'a, Actor> {
        match self.actor {
            Some(actor) => Cow::Borrowed(actor),
            None => Cow::Owned(Actor::system()),
        }
    }

    /// The org id this handle is bound to.
    pub(crate) fn org_id(&self) -> &'a str {
        self.org_id
    }

    /// The store behind the handle, bound to its org (for the sibling modules that extend
    /// it).
    pub(super) fn store(&self) -> Scoped<'a> {
        self.store
    }

    /// Replaces the org's license (a new license id, un-revoked) and returns it with the
    /// plugin sets it takes plugins from (those the license in force entitles and `spec`
    /// does not). Unless `force`, such a change is refused with `PluginSetConflict`; the
    /// check runs in the write's transaction, after locking the org row that plugin-set
    /// writes lock too.
    pub(crate) async fn set_license(
        &self,
        spec: &LicenseSpec,
        force: bool,
        now: i64,
    ) -> Result<(LicenseRecord, Vec<AffectedSet>), StoreError> {
        let current_sql = format!("SELECT {LICENSE_COLUMNS} FROM licenses WHERE org_id = $1");
        let sql = format!(
            "INSERT INTO licenses ({LICENSE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 1, $9, $9) \
             ON CONFLICT (org_id) DO UPDATE SET id = excluded.id, tier = excluded.tier, \
             entitlements_add = excluded.entitlements_add, \
             entitlements_remove = excluded.entitlements_remove, limits = excluded.limits, \
             valid_from = excluded.valid_from, valid_until = excluded.valid_until, \
             revoked_at = NULL, revision = licenses.revision + 1, updated_at = excluded.updated_at \
             RETURNING {LICENSE_COLUMNS}"
        );
        let add = to_json_text(&spec.add)?;
        let remove = to_json_text(&spec.remove)?;
        let limits = to_json_text(&spec.limits)?;
        let actor = self.actor();
        let store = self.store;
        let (row, affected): (LicenseRow, Vec<AffectedSet>) = in_tx!(store, tx => {
            sqlx::query(lock_org_sql(store.kind())).bind(self.org_id).execute(&mut *tx).await?;
            let current: Option<LicenseRow> = sqlx::query_as(&current_sql)
                .bind(self.org_id).fetch_optional(&mut *tx).await?;
            let current = current.map(LicenseRecord::try_from).transpose()?;
            let sets: Vec<PluginSetRow> = sqlx::query_as(ORG_SETS_SQL)
                .bind(self.org_id).fetch_all(&mut *tx).await?;
            let affected = affected_by_license(current.as_ref(), sets, spec, now)?;
            if !affected.is_empty() && !force {
                return Err(StoreError::PluginSetConflict(affected));
            }
            let row: LicenseRow = sqlx::query_as(&sql)
                .bind(new_id())
                .bind(self.org_id)
                .bind(spec.tier.as_str())
                .bind(&add)
                .bind(&remove)
                .bind(&limits)
                .bind(spec.valid_from)
                .bind(spec.valid_until)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            let mut details = json!({
                "license_id": row.id, "tier": spec.tier.as_str(), "add": spec.add,
                "remove": spec.remove, "limits": spec.limits,
                "valid_from": spec.valid_from, "valid_until": spec.valid_until,
            });
            if !affected.is_empty() {
                details["plugin_sets_affected"] = json!(affected);
            }
            let event = Event::new(AuditAction::LicenseSet, "license", details);
            tx.append_audit(self.org_id, &actor, &[event], now).await?;
            (row, affected)
        });
        Ok((row.try_into()?, affected))
    }

    /// The org's license.
    pub(crate) async fn license(&self) -> Result<LicenseRecord, StoreError> {
        self.license_if_any()
            .await?
            .ok_or(StoreError::NotFound("license"))
    }

    /// The org's license, or `None` when it has none (one primary-key read: the access
    /// decision makes it for callers with a binding below the org).
    pub(crate) async fn license_if_any(&self) -> Result<Option<LicenseRecord>, StoreError> {
        let sql = format!("SELECT {LICENSE_COLUMNS} FROM licenses WHERE org_id = $1");
        let row: Option<LicenseRow> = on_pool!(self.store, pool => sqlx::query_as(&sql)
            .bind(self.org_id)
            .fetch_optional(pool)
            .await?);
        row.map(LicenseRecord::try_from).transpose()
    }

    /// Revokes the org's license (idempotent: a second revoke keeps the first time).
    pub(crate) async fn revoke_license(&self, now: i64) -> Result<LicenseRecord, StoreError> {
        let sql = format!(
            "UPDATE licenses SET revoked_at = COALESCE(revoked_at, $2), updated_at = $2 \
             WHERE org_id = $1 RETURNING {LICENSE_COLUMNS}"
        );
        let actor = self.actor();
        let row: LicenseRow = in_tx!(self.store, tx => {
            let row: Option<LicenseRow> = sqlx::query_as(&sql)
                .bind(self.org_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let row = row.ok_or(StoreError::NotFound("license"))?;
            let event = Event::new(AuditAction::LicenseRevoke, "license",
                json!({"license_id": row.id}));
            tx.append_audit(self.org_id, &actor, &[event], now).await?;
            row
        });
        row.try_into()
    }

    /// Up to `limit` of the org's workspaces with a slug after `after` (`""`: from the
    /// first), by slug.
    pub(crate) async fn workspaces(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<WorkspaceRecord>, StoreError> {
        let sql = "SELECT id, slug, created_at FROM workspaces WHERE org_id = $1 AND slug > $2 \
                   ORDER BY slug LIMIT $3";
        Ok(on_pool!(self.store, pool => sqlx::query_as(sql)
            .bind(self.org_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?))
    }

    /// Up to `limit` environments of a workspace with a slug after `after` (`""`: from
    /// the first), by slug.
    pub(crate) async fn environments(
        &self,
        workspace: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<EnvironmentRecord>, StoreError> {
        self.workspace_id(workspace).await?;
        let sql = "SELECT e.id, e.slug, w.slug AS workspace, e.created_at FROM environments e \
                   JOIN workspaces w ON w.id = e.workspace_id \
                   WHERE e.org_id = $1 AND w.slug = $2 AND e.slug > $3 ORDER BY e.slug LIMIT $4";
        Ok(on_pool!(self.store, pool => sqlx::query_as(sql)
            .bind(self.org_id)
            .bind(workspace)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?))
    }

    pub(super) async fn workspace_id(&self, workspace: &str) -> Result<String, StoreError> {
        let sql = "SELECT id FROM workspaces WHERE org_id = $1 AND slug = $2";
        let id: Option<String> = on_pool!(self.store, pool => sqlx::query_scalar(sql)
            .bind(self.org_id)
            .bind(workspace)
            .fetch_optional(pool)
            .await?);
        id.ok_or(StoreError::NotFound("workspace"))
    }

    pub(super) async fn environment_id(
        &self,
        workspace: &str,
        environment: &str,
    ) -> Result<String, StoreError> {
        let workspace_id = self.workspace_id(workspace).await?;
        let sql =
            "SELECT id FROM environments WHERE org_id = $1 AND workspace_id = $2 AND slug = $3";
        let id: Option<String> = on_pool!(self.store, pool => sqlx::query_scalar(sql)
            .bind(self.org_id)
            .bind(&workspace_id)
            .bind(environment)
            .fetch_optional(pool)
            .await?);
        id.ok_or(StoreError::NotFound("environment"))
    }
}
