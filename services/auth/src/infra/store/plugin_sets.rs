//! An org's plugin sets: one per workspace and, overriding it, one per environment. Each
//! write appends its audit entry (`plugin_set.put`, `plugin_set.delete`) in its own
//! transaction, which drops the org's cached grants on commit (see `changes`).

use std::sync::Arc;

use mcpg_license_core::PluginSet;
use serde_json::json;
use sqlx::FromRow;

use super::audit_log::{AuditAction, Event};
use super::grants::{LICENSE_COLUMNS, LicenseRow};
use super::lifecycle::lock_org_sql;
use super::{
    LicenseRecord, LicenseSpec, StoreError, TenantStore, from_json_text, in_tx, on_pool,
    to_json_text,
};
use crate::domain::entitlements_at;
use crate::domain::plugin_sets::{AffectedSet, check_plugin_set, lost};

/// A stored plugin set and the place it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct PluginSetRecord {
    /// Workspace slug.
    pub(crate) workspace: String,
    /// Environment slug; `None` for the workspace's own set.
    pub(crate) environment: Option<String>,
    /// The set.
    pub(crate) set: Arc<PluginSet>,
    /// Its digest (`sha256:…`).
    pub(crate) digest: String,
    /// Times it was written.
    pub(crate) revision: i64,
    /// Last written (Unix seconds).
    pub(crate) updated_at: i64,
}

#[derive(FromRow)]
pub(super) struct PluginSetRow {
    workspace: String,
    environment: Option<String>,
    plugins: String,
    digest: String,
    revision: i64,
    updated_at: i64,
}

impl TryFrom<PluginSetRow> for PluginSetRecord {
    type Error = StoreError;
    fn try_from(row: PluginSetRow) -> Result<Self, StoreError> {
        Ok(Self {
            workspace: row.workspace,
            environment: row.environment,
            set: Arc::new(from_json_text(&row.plugins)?),
            digest: row.digest,
            revision: row.revision,
            updated_at: row.updated_at,
        })
    }
}

/// A plugin set as a delete's export keeps it (`plugins` as JSON, not text).
#[derive(Debug, FromRow)]
pub(super) struct ExportedPluginSet {
    workspace: String,
    environment: Option<String>,
    plugins: String,
    digest: String,
    revision: i64,
}

impl serde::Serialize for ExportedPluginSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let plugins: serde_json::Value =
            serde_json::from_str(&self.plugins).map_err(serde::ser::Error::custom)?;
        json!({
            "workspace": self.workspace, "environment": self.environment,
            "plugins": plugins, "digest": self.digest, "revision": self.revision,
        })
        .serialize(s)
    }
}

/// The plugin sets of a delete's export: `$1` org, `$2` workspace slug, `$3` environment
/// slug (`''`: the workspace's and all its environments').
pub(super) const EXPORT_SQL: &str = "SELECT w.slug AS workspace, e.slug AS environment, \
     p.plugins, p.digest, p.revision FROM plugin_sets p JOIN workspaces w ON w.id = p.workspace_id \
     LEFT JOIN environments e ON e.id = p.environment_id \
     WHERE p.org_id = $1 AND ($2 = '' OR w.slug = $2) AND ($3 = '' OR e.slug = $3) \
     ORDER BY w.slug, e.slug IS NOT NULL, e.slug";

/// Every plugin set of org `$1` (read inside a license write's transaction).
pub(super) const ORG_SETS_SQL: &str = "SELECT w.slug AS workspace, e.slug AS environment, \
     p.plugins, p.digest, p.revision, p.updated_at FROM plugin_sets p \
     JOIN workspaces w ON w.id = p.workspace_id \
     LEFT JOIN environments e ON e.id = p.environment_id \
     WHERE p.org_id = $1 ORDER BY w.slug, e.slug IS NOT NULL, e.slug";

/// The sets of `rows` that replacing the license `current` by `spec` takes plugins from.
pub(super) fn affected_by_license(
    current: Option<&LicenseRecord>,
    rows: Vec<PluginSetRow>,
    spec: &LicenseSpec,
    now: i64,
) -> Result<Vec<AffectedSet>, StoreError> {
    let before = entitlements_at(current, now);
    let after = mcpg_license_core::Catalog::builtin().license_entitlements(
        spec.tier,
        &spec.add,
        &spec.remove,
    );
    let mut affected = Vec::new();
    for row in rows {
        let record = PluginSetRecord::try_from(row)?;
        let plugins = lost(&record.set, &before, &after);
        if !plugins.is_empty() {
            affected.push(AffectedSet {
                workspace: record.workspace,
                environment: record.environment,
                plugins,
            });
        }
    }
    Ok(affected)
}

const SELECT: &str = "SELECT w.slug AS workspace, e.slug AS environment, p.plugins, p.digest, \
     p.revision, p.updated_at FROM plugin_sets p JOIN workspaces w ON w.id = p.workspace_id \
     LEFT JOIN environments e ON e.id = p.environment_id";

/// The audit target of a set: `ws` or `ws/env`.
fn target(workspace: &str, environment: Option<&str>) -> String {
    match environment {
        Some(env) => format!("{workspace}/{env}"),
        None => workspace.to_owned(),
    }
}

impl TenantStore<'_> {
    /// The ids of the workspace and (if named) environment: `NotFound` for either.
    async fn place_ids(
        &self,
        workspace: &str,
        environment: Option<&str>,
    ) -> Result<(String, Option<String>), StoreError> {
        let ws_id = self.workspace_id(workspace).await?;
        let env_id = match environment {
            Some(env) => Some(self.environment_id(workspace, env).await?),
            None => None,
        };
        Ok((ws_id, env_id))
    }

    /// Sets the plugin set of a workspace (`environment` `None`) or of an environment,
    /// replacing any it had, and returns it: refused (`PluginSetRefused`) unless every
    /// plugin is in the catalog and entitled by the org's license in force at `now`, checked
    /// in the write's transaction. A set written through the API is not managed by
    /// `tenants.yaml` (its managed mark is cleared).
    pub(crate) async fn put_plugin_set(
        &self,
        workspace: &str,
        environment: Option<&str>,
        set: &PluginSet,
        now: i64,
    ) -> Result<PluginSetRecord, StoreError> {
        let (ws_id, env_id) = self.place_ids(workspace, environment).await?;
        let scope_id = env_id.clone().unwrap_or_else(|| ws_id.clone());
        let plugins = to_json_text(set)?;
        let digest = set.digest();
        let org = self.org_id();
        let actor = self.actor();
        let sql = "INSERT INTO plugin_sets (scope_id, org_id, workspace_id, environment_id, \
                   plugins, digest, revision, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7) \
                   ON CONFLICT (scope_id) DO UPDATE SET plugins = excluded.plugins, \
                   digest = excluded.digest, revision = plugin_sets.revision + 1, \
                   updated_at = excluded.updated_at, managed_by = NULL RETURNING revision";
        let license_sql = format!("SELECT {LICENSE_COLUMNS} FROM licenses WHERE org_id = $1");
        let store = self.store();
        let revision: i64 = in_tx!(store, tx => {
            // The org row serialises this check with license writes (see `set_license`).
            sqlx::query(lock_org_sql(store.kind())).bind(org).execute(&mut *tx).await?;
            let license: Option<LicenseRow> = sqlx::query_as(&license_sql)
                .bind(org).fetch_optional(&mut *tx).await?;
            let license = license.map(LicenseRecord::try_from).transpose()?;
            check_plugin_set(set, &entitlements_at(license.as_ref(), now))
                .map_err(StoreError::PluginSetRefused)?;
            let revision: i64 = sqlx::query_scalar(sql)
                .bind(&scope_id).bind(org).bind(&ws_id).bind(&env_id)
                .bind(&plugins).bind(&digest).bind(now)
                .fetch_one(&mut *tx).await?;
            let ids: Vec<&str> = set.ids().collect();
            let event = Event::new(AuditAction::PluginSetPut, target(workspace, environment),
                json!({"digest": digest, "plugins": ids, "revision": revision}));
            tx.append_audit(org, &actor, &[event], now).await?;
            revision
        });
        Ok(PluginSetRecord {
            workspace: workspace.to_owned(),
            environment: environment.map(str::to_owned),
            set: Arc::new(set.clone()),
            digest,
            revision,
            updated_at: now,
        })
    }

    /// The plugin set of a workspace or environment itself (not inherited), if it has one;
    /// `NotFound` when the workspace or environment does not exist.
    pub(crate) async fn plugin_set(
        &self,
        workspace: &str,
        environment: Option<&str>,
    ) -> Result<Option<PluginSetRecord>, StoreError> {
        let (ws_id, env_id) = self.place_ids(workspace, environment).await?;
        let scope_id = env_id.unwrap_or(ws_id);
        let sql = format!("{SELECT} WHERE p.org_id = $1 AND p.scope_id = $2");
        let row: Option<PluginSetRow> = on_pool!(self.store(), pool => sqlx::query_as(&sql)
            .bind(self.org_id())
            .bind(&scope_id)
            .fetch_optional(pool)
            .await?);
        row.map(PluginSetRecord::try_from).transpose()
    }

    /// Removes the plugin set of a workspace or environment and returns what it was;
    /// `NotFound("plugin set")` when it has none.
    pub(crate) async fn delete_plugin_set(
        &self,
        workspace: &str,
        environment: Option<&str>,
        now: i64,
    ) -> Result<PluginSetRecord, StoreError> {
        let (ws_id, env_id) = self.place_ids(workspace, environment).await?;
        let scope_id = env_id.unwrap_or(ws_id);
        let org = self.org_id();
        let actor = self.actor();
        let sql = "DELETE FROM plugin_sets WHERE org_id = $1 AND scope_id = $2 \
                   RETURNING plugins, digest, revision, updated_at";
        let row: (String, String, i64, i64) = in_tx!(self.store(), tx => {
            let row: Option<(String, String, i64, i64)> = sqlx::query_as(sql)
                .bind(org).bind(&scope_id)
                .fetch_optional(&mut *tx).await?;
            let row = row.ok_or(StoreError::NotFound("plugin set"))?;
            let event = Event::new(AuditAction::PluginSetDelete, target(workspace, environment),
                json!({"digest": row.1}));
            tx.append_audit(org, &actor, &[event], now).await?;
            row
        });
        PluginSetRecord::try_from(PluginSetRow {
            workspace: workspace.to_owned(),
            environment: environment.map(str::to_owned),
            plugins: row.0,
            digest: row.1,
            revision: row.2,
            updated_at: row.3,
        })
    }
}
