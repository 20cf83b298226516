//! Creating and deleting an org's structure: workspaces, environments and gateways are
//! created inside one transaction that counts against the license's quota (the org row is
//! locked first, so concurrent creates queue), and deleted only when childless unless the
//! caller cascades; every delete keeps a JSON export of what it removed.

use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::{LimitKey, Limits};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::FromRow;

use super::audit_log::{AuditAction, Event};
use super::hierarchy::GATEWAY_SELECT;
use super::plugin_sets::{EXPORT_SQL as PLUGIN_SETS_SQL, ExportedPluginSet};
use super::{
    BackendKind, EnvironmentRecord, StoreError, TenantStore, WorkspaceRecord, from_json_text,
    in_tx, to_json_text,
};
use crate::domain::{Slug, new_id};

/// Locks the org row for the rest of the transaction. SQLite has no row locks and needs
/// none: `BEGIN IMMEDIATE` already serialises writers.
pub(super) fn lock_org_sql(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Postgres => "SELECT id FROM orgs WHERE id = $1 FOR UPDATE",
        BackendKind::Sqlite => "SELECT id FROM orgs WHERE id = $1",
    }
}

pub(super) const LIMITS_SQL: &str = "SELECT limits FROM licenses WHERE org_id = $1";

/// Refuses a create that would take `used` past the license's limit `key`.
pub(super) fn check_quota(
    limits: Option<&str>,
    key: LimitKey,
    used: i64,
) -> Result<(), StoreError> {
    let Some(text) = limits else {
        return Ok(());
    };
    let limits: Limits = from_json_text(text)?;
    match limits.get(key) {
        Some(limit) if u64::try_from(used).unwrap_or(u64::MAX) >= limit => Err(StoreError::Quota {
            key,
            limit,
            usage: used,
        }),
        _ => Ok(()),
    }
}

#[derive(Debug, FromRow, Serialize)]
struct ExportedWorkspace {
    id: String,
    slug: String,
    #[serde(serialize_with = "rfc3339")]
    created_at: i64,
}

#[derive(Debug, FromRow, Serialize)]
struct ExportedEnvironment {
    id: String,
    slug: String,
    workspace: String,
    #[serde(serialize_with = "rfc3339")]
    created_at: i64,
}

#[derive(Debug, FromRow, Serialize)]
struct ExportedGateway {
    id: String,
    name: String,
    workspace: String,
    environment: String,
    credential_prefix: String,
    #[serde(serialize_with = "rfc3339")]
    created_at: i64,
    last_token_at: Option<i64>,
    revoked_at: Option<i64>,
}

fn rfc3339<S: serde::Serializer>(time: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_rfc3339(*time))
}

const ENV_SELECT: &str = "SELECT e.id, e.slug, w.slug AS workspace, e.created_at \
     FROM environments e JOIN workspaces w ON w.id = e.workspace_id";

/// What one delete removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeleteTarget<'a> {
    /// A workspace.
    Workspace(&'a str),
    /// An environment of a workspace.
    Environment(&'a str, &'a str),
}

impl TenantStore<'_> {
    /// Creates a workspace within the license's `max_workspaces`.
    pub(crate) async fn create_workspace(
        &self,
        slug: &Slug,
        now: i64,
    ) -> Result<WorkspaceRecord, StoreError> {
        let org = self.org_id();
        let store = self.store();
        let actor = self.actor();
        Ok(in_tx!(store, tx => {
            sqlx::query(lock_org_sql(store.kind())).bind(org).execute(&mut *tx).await?;
            let limits: Option<String> = sqlx::query_scalar(LIMITS_SQL).bind(org)
                .fetch_optional(&mut *tx).await?;
            let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workspaces WHERE org_id = $1")
                .bind(org).fetch_one(&mut *tx).await?;
            check_quota(limits.as_deref(), LimitKey::MaxWorkspaces, used)?;
            let created = sqlx::query_as::<_, WorkspaceRecord>(
                "INSERT INTO workspaces (id, org_id, slug, created_at) VALUES ($1, $2, $3, $4) \
                 RETURNING id, slug, created_at")
                .bind(new_id()).bind(org).bind(slug.as_str()).bind(now)
                .fetch_one(&mut *tx).await
                .map_err(StoreError::unique("a workspace with this slug already exists"))?;
            let event = Event::new(AuditAction::WorkspaceCreate, slug.as_str(),
                json!({"workspace_id": created.id}));
            tx.append_audit(org, &actor, &[event], now).await?;
            created
        }))
    }

    /// Creates an environment in a workspace within the license's `max_environments`.
    pub(crate) async fn create_environment(
        &self,
        workspace: &str,
        slug: &Slug,
        now: i64,
    ) -> Result<EnvironmentRecord, StoreError> {
        let org = self.org_id();
        let store = self.store();
        let actor = self.actor();
        let row: Option<EnvironmentRecord> = in_tx!(store, tx => {
            sqlx::query(lock_org_sql(store.kind())).bind(org).execute(&mut *tx).await?;
            let limits: Option<String> = sqlx::query_scalar(LIMITS_SQL).bind(org)
                .fetch_optional(&mut *tx).await?;
            let used: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM environments WHERE org_id = $1")
                .bind(org).fetch_one(&mut *tx).await?;
            check_quota(limits.as_deref(), LimitKey::MaxEnvironments, used)?;
            let created: Option<EnvironmentRecord> = sqlx::query_as(
                "INSERT INTO environments (id, org_id, workspace_id, slug, created_at) \
                 SELECT $1, org_id, id, $4, $5 FROM workspaces WHERE org_id = $2 AND slug = $3 \
                 RETURNING id, slug, $3 AS workspace, created_at")
                .bind(new_id()).bind(org).bind(workspace).bind(slug.as_str()).bind(now)
                .fetch_optional(&mut *tx).await
                .map_err(StoreError::unique("an environment with this slug already exists"))?;
            if let Some(created) = &created {
                let event = Event::new(AuditAction::EnvironmentCreate,
                    format!("{workspace}/{}", created.slug), json!({"environment_id": created.id}));
                tx.append_audit(org, &actor, &[event], now).await?;
            }
            created
        });
        row.ok_or(StoreError::NotFound("workspace"))
    }

    /// Deletes a workspace or an environment. With children (environments, gateways) it is
    /// refused unless `cascade`. Returns the export of what was removed, also kept in
    /// `deleted_exports`.
    pub(crate) async fn delete(
        &self,
        org_slug: &str,
        target: DeleteTarget<'_>,
        cascade: bool,
        now: i64,
    ) -> Result<Value, StoreError> {
        let org = self.org_id();
        let (kind, ws, env) = match target {
            DeleteTarget::Workspace(ws) => ("workspace", ws, ""),
            DeleteTarget::Environment(ws, env) => ("environment", ws, env),
        };
        let path = if env.is_empty() {
            format!("{org_slug}/{ws}")
        } else {
            format!("{org_slug}/{ws}/{env}")
        };
        let env_filter = "WHERE e.org_id = $1 AND w.slug = $2 AND ($3 = '' OR e.slug = $3) \
                          ORDER BY w.slug, e.slug";
        let gw_filter = "WHERE g.org_id = $1 AND w.slug = $2 AND ($3 = '' OR e.slug = $3) \
                         ORDER BY g.created_at, g.id";
        let actor = self.actor();
        Ok(in_tx!(self.store(), tx => {
            let workspace: Option<ExportedWorkspace> = sqlx::query_as(
                "SELECT id, slug, created_at FROM workspaces WHERE org_id = $1 AND slug = $2")
                .bind(org).bind(ws).fetch_optional(&mut *tx).await?;
            let workspace = workspace.ok_or(StoreError::NotFound("workspace"))?;
            let environments: Vec<ExportedEnvironment> =
                sqlx::query_as(&format!("{ENV_SELECT} {env_filter}"))
                .bind(org).bind(ws).bind(env).fetch_all(&mut *tx).await?;
            let gateways: Vec<ExportedGateway> =
                sqlx::query_as(&format!("{GATEWAY_SELECT} {gw_filter}"))
                .bind(org).bind(ws).bind(env).fetch_all(&mut *tx).await?;
            let children = if env.is_empty() { environments.len() } else { gateways.len() };
            if !env.is_empty() && environments.is_empty() {
                return Err(StoreError::NotFound("environment"));
            }
            if children > 0 && !cascade {
                let what = if env.is_empty() { "environment(s)" } else { "gateway(s)" };
                return Err(StoreError::HasChildren(format!(
                    "{path} has {children} {what}; delete them first or cascade")));
            }
            let workspaces = if env.is_empty() { vec![workspace] } else { Vec::new() };
            let environments_removed = environments.len();
            let gateways_removed = gateways.len();
            let plugin_sets: Vec<ExportedPluginSet> = sqlx::query_as(PLUGIN_SETS_SQL)
                .bind(org).bind(ws).bind(env).fetch_all(&mut *tx).await?;
            let export = json!({
                "kind": kind,
                "path": path,
                "deleted_at": to_rfc3339(now),
                "workspaces": workspaces,
                "environments": environments,
                "gateways": gateways,
                "plugin_sets": plugin_sets,
            });
            sqlx::query("INSERT INTO deleted_exports (id, org_slug, kind, path, export, \
                         deleted_at, org_id) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(new_id()).bind(org_slug).bind(kind).bind(&path)
                .bind(to_json_text(&export)?).bind(now).bind(org).execute(&mut *tx).await?;
            if env.is_empty() {
                sqlx::query("DELETE FROM workspaces WHERE org_id = $1 AND slug = $2")
                    .bind(org).bind(ws).execute(&mut *tx).await?;
            } else {
                sqlx::query("DELETE FROM environments WHERE org_id = $1 AND slug = $3 AND \
                             workspace_id = (SELECT id FROM workspaces WHERE org_id = $1 AND slug = $2)")
                    .bind(org).bind(ws).bind(env).execute(&mut *tx).await?;
            }
            let (action, target) = if env.is_empty() {
                (AuditAction::WorkspaceDelete, ws.to_owned())
            } else {
                (AuditAction::EnvironmentDelete, format!("{ws}/{env}"))
            };
            let event = Event::new(action, target, json!({
                "cascade": cascade,
                "environments": environments_removed,
                "gateways": gateways_removed,
            }));
            tx.append_audit(org, &actor, &[event], now).await?;
            export
        }))
    }
}

impl TenantStore<'_> {
    /// First step of deleting the org: refuses when it has workspaces and the caller does not
    /// cascade, otherwise suspends it (committed) so no gateway gets a token meanwhile.
    pub(crate) async fn suspend_for_deletion(
        &self,
        cascade: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let org_id = self.org_id();
        let actor = self.actor();
        in_tx!(self.store(), tx => {
            let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workspaces WHERE org_id = $1")
                .bind(org_id).fetch_one(&mut *tx).await?;
            if used > 0 && !cascade {
                return Err(StoreError::HasChildren(format!(
                    "the organization has {used} workspace(s); delete them first or cascade")));
            }
            sqlx::query("UPDATE orgs SET status = 'suspended' WHERE id = $1")
                .bind(org_id).execute(&mut *tx).await?;
            let event = Event::new(AuditAction::OrgSuspend, org_id,
                json!({"reason": "deletion", "cascade": cascade}));
            tx.append_audit(org_id, &actor, &[event], now).await?;
        });
        Ok(())
    }

    /// Second step: exports everything the org owns, keeps the export as the org's
    /// archive (with its audit chain, up to and including the `org.delete` entry, and the
    /// rows a restore writes back), deletes the org. Returns the export without the chain
    /// and the restore rows.
    pub(crate) async fn delete_org_with_export(
        &self,
        org_slug: &str,
        now: i64,
    ) -> Result<Value, StoreError> {
        let org_id = self.org_id();
        let env_sql = format!("{ENV_SELECT} WHERE e.org_id = $1 ORDER BY w.slug, e.slug");
        let gw_sql = format!("{GATEWAY_SELECT} WHERE g.org_id = $1 ORDER BY g.created_at, g.id");
        let bindings = self.bindings().await?;
        let actor = self.actor();
        Ok(in_tx!(self.store(), tx => {
            let workspaces: Vec<ExportedWorkspace> = sqlx::query_as(
                "SELECT id, slug, created_at FROM workspaces WHERE org_id = $1 ORDER BY slug")
                .bind(org_id).fetch_all(&mut *tx).await?;
            let environments: Vec<ExportedEnvironment> = sqlx::query_as(&env_sql)
                .bind(org_id).fetch_all(&mut *tx).await?;
            let gateways: Vec<ExportedGateway> = sqlx::query_as(&gw_sql)
                .bind(org_id).fetch_all(&mut *tx).await?;
            let license: Option<(String, String, String, String, String, i64, i64)> =
                sqlx::query_as("SELECT id, tier, entitlements_add, entitlements_remove, limits, \
                                valid_from, valid_until FROM licenses WHERE org_id = $1")
                .bind(org_id).fetch_optional(&mut *tx).await?;
            let license = match license {
                Some((id, tier, add, remove, limits, from, until)) => {
                    let add: Value = from_json_text(&add)?;
                    let remove: Value = from_json_text(&remove)?;
                    let limits: Value = from_json_text(&limits)?;
                    json!({
                        "id": id, "tier": tier, "entitlements_add": add,
                        "entitlements_remove": remove, "limits": limits,
                        "valid_from": to_rfc3339(from), "valid_until": to_rfc3339(until),
                    })
                }
                None => Value::Null,
            };
            let plugin_sets: Vec<ExportedPluginSet> = sqlx::query_as(PLUGIN_SETS_SQL)
                .bind(org_id).bind("").bind("").fetch_all(&mut *tx).await?;
            let export = json!({
                "kind": "org",
                "path": org_slug,
                "deleted_at": to_rfc3339(now),
                "license": license,
                "workspaces": workspaces,
                "environments": environments,
                "gateways": gateways,
                "plugin_sets": plugin_sets,
                "role_bindings": bindings,
            });
            let event = Event::new(AuditAction::OrgDelete, org_slug, json!({
                "workspaces": workspaces.len(), "environments": environments.len(),
                "gateways": gateways.len(),
            }));
            tx.append_audit(org_id, &actor, &[event], now).await?;
            let restore = super::archives::read_restore_rows!(tx, org_id);
            let chain = super::archives::read_chain!(tx, org_id);
            let mut archive = export.clone();
            archive["audit"] = serde_json::to_value(&chain)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            archive["restore"] = serde_json::to_value(&restore)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query("INSERT INTO deleted_exports (id, org_slug, kind, path, export, \
                         deleted_at, org_id) VALUES ($1, $2, 'org', $2, $3, $4, $5)")
                .bind(new_id()).bind(org_slug).bind(to_json_text(&archive)?).bind(now)
                .bind(org_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM orgs WHERE id = $1").bind(org_id).execute(&mut *tx).await?;
            export
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_refuses_the_create_that_would_pass_the_limit() {
        let limits = r#"{"max_workspaces": 2}"#;
        assert!(check_quota(Some(limits), LimitKey::MaxWorkspaces, 1).is_ok());
        assert!(matches!(
            check_quota(Some(limits), LimitKey::MaxWorkspaces, 2),
            Err(StoreError::Quota {
                limit: 2,
                usage: 2,
                ..
            })
        ));
        assert!(check_quota(Some(limits), LimitKey::MaxGateways, 100).is_ok());
        assert!(check_quota(None, LimitKey::MaxGateways, 100).is_ok());
    }
}
