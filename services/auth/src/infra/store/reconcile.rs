//! Applying a `tenants.yaml`: one transaction (global scope: it spans orgs) reads the
//! current state, computes the plan and writes it, so a document is applied all or
//! nothing and a failure leaves the previous state. Replicas that reconcile the same file
//! at once queue on a transaction-level advisory lock (PostgreSQL) or on `BEGIN
//! IMMEDIATE` (SQLite), so the second computes its plan from the first's result.

use std::collections::{BTreeMap, HashMap};

use sqlx::FromRow;

use super::audit_log::{Actor, AuditAction, Event};
use super::grants::{LICENSE_COLUMNS, LicenseRow};
use super::orgs::{COLUMNS as ORG_COLUMNS, OrgRow};
use super::{BackendKind, LicenseRecord, OrgRecord, Store, StoreError, in_tx, to_json_text};
use crate::domain::new_id;
use crate::domain::tenants_file::{
    ApplyOptions, ChangeAction, Current, CurrentEnvironment, CurrentKey, CurrentOrg,
    CurrentWorkspace, MANAGED_BY, Op, Plan, TenantsDoc, TenantsError, diff,
};

/// Why a document was not applied: the document, or the database (nothing was changed
/// either way).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// The document is refused (invalid, too large, conflicting with the current state).
    #[error(transparent)]
    Refused(#[from] TenantsError),
    /// The database failed.
    #[error("cannot apply tenants: {0}")]
    Store(#[from] StoreError),
}

/// A create that met a row made meanwhile through the API (nothing was applied).
const CREATED_MEANWHILE: &str =
    "an object of the document was created meanwhile through the API; apply again";

/// Serialises reconciliations across replicas (an arbitrary constant).
const ADVISORY_LOCK: &str = "SELECT pg_advisory_xact_lock(7007001)";

/// An org with its mark.
#[derive(FromRow)]
struct ManagedOrgRow {
    managed_by: Option<String>,
    #[sqlx(flatten)]
    org: OrgRow,
}

/// A license with its org.
#[derive(FromRow)]
struct OrgLicenseRow {
    org_id: String,
    #[sqlx(flatten)]
    license: LicenseRow,
}

#[derive(FromRow)]
struct WorkspaceRow {
    id: String,
    org_id: String,
    slug: String,
    managed_by: Option<String>,
    created_at: i64,
}

#[derive(FromRow)]
struct EnvironmentRow {
    id: String,
    org_id: String,
    workspace_id: String,
    slug: String,
    managed_by: Option<String>,
    created_at: i64,
    gateways: i64,
}

#[derive(FromRow)]
struct KeyRow {
    id: String,
    org_id: Option<String>,
    name: String,
    token_hash: String,
    revoked_at: Option<i64>,
    managed_by: Option<String>,
}

const USERS: &str = "SELECT org_id, COUNT(*) FROM users GROUP BY org_id";
const WORKSPACES: &str = "SELECT id, org_id, slug, managed_by, created_at FROM workspaces";
const ENVIRONMENTS: &str = "SELECT e.id, e.org_id, e.workspace_id, e.slug, e.managed_by, \
     e.created_at, (SELECT COUNT(*) FROM gateways g WHERE g.environment_id = e.id) AS gateways \
     FROM environments e";
/// Every API token (a key hash in the file must not be another credential's).
const KEYS: &str = "SELECT id, org_id, name, token_hash, revoked_at, managed_by FROM api_tokens";

fn managed(mark: &Option<String>) -> bool {
    mark.as_deref() == Some(MANAGED_BY)
}

/// The rows read in the transaction, turned into the plan's view.
fn current(
    orgs: Vec<ManagedOrgRow>,
    users: Vec<(String, i64)>,
    licenses: Vec<OrgLicenseRow>,
    workspaces: Vec<WorkspaceRow>,
    environments: Vec<EnvironmentRow>,
    keys: Vec<KeyRow>,
) -> Result<Current, ApplyError> {
    let users: HashMap<String, i64> = users.into_iter().collect();
    let mut current = Current::default();
    for row in orgs {
        let org = OrgRecord::try_from(row.org)?;
        current.orgs.push(CurrentOrg {
            users: users.get(&org.id).copied().unwrap_or(0),
            managed: managed(&row.managed_by),
            status: org.status,
            id: org.id,
            slug: org.slug,
            display_name: org.display_name,
        });
    }
    for row in licenses {
        let mut license = LicenseRecord::try_from(row.license)?;
        // Stored in the order they were given; the file's are sorted.
        license.add.sort();
        license.remove.sort();
        current.licenses.insert(row.org_id, license);
    }
    current.workspaces = workspaces
        .into_iter()
        .map(|w| CurrentWorkspace {
            managed: managed(&w.managed_by),
            id: w.id,
            org_id: w.org_id,
            slug: w.slug,
            created_at: w.created_at,
        })
        .collect();
    current.environments = environments
        .into_iter()
        .map(|e| CurrentEnvironment {
            managed: managed(&e.managed_by),
            id: e.id,
            org_id: e.org_id,
            workspace_id: e.workspace_id,
            slug: e.slug,
            created_at: e.created_at,
            gateways: e.gateways,
        })
        .collect();
    current.keys = keys
        .into_iter()
        .map(|k| CurrentKey {
            managed: managed(&k.managed_by),
            revoked: k.revoked_at.is_some(),
            id: k.id,
            org_id: k.org_id,
            name: k.name,
            hash: k.token_hash,
        })
        .collect();
    Ok(current)
}

impl From<sqlx::Error> for ApplyError {
    fn from(error: sqlx::Error) -> Self {
        ApplyError::Store(error.into())
    }
}

impl Store {
    /// Reads the current state, computes the plan of `doc` and (unless a dry run) applies
    /// it, in one transaction.
    pub(crate) async fn reconcile_tenants(
        &self,
        doc: &TenantsDoc,
        options: ApplyOptions,
        actor: &Actor,
        now: i64,
    ) -> Result<Plan, ApplyError> {
        let kind = self.kind();
        let store = self.global();
        let orgs_sql = format!("SELECT {ORG_COLUMNS}, managed_by FROM orgs");
        let licenses_sql = format!("SELECT {LICENSE_COLUMNS} FROM licenses");
        Ok(in_tx!(store, tx => {
            if kind == BackendKind::Postgres {
                sqlx::query(ADVISORY_LOCK).execute(&mut *tx).await?;
            }
            let state = current(
                sqlx::query_as(&orgs_sql).fetch_all(&mut *tx).await?,
                sqlx::query_as(USERS).fetch_all(&mut *tx).await?,
                sqlx::query_as(&licenses_sql).fetch_all(&mut *tx).await?,
                sqlx::query_as(WORKSPACES).fetch_all(&mut *tx).await?,
                sqlx::query_as(ENVIRONMENTS).fetch_all(&mut *tx).await?,
                sqlx::query_as(KEYS).fetch_all(&mut *tx).await?,
            )?;
            let plan = diff(doc, &state, options.prune, options.dry_run, now)?;
            if plan.changes.len() > options.max_changes() {
                return Err(ApplyError::Refused(TenantsError::TooLarge(format!(
                    "the plan lists {} changes; at most {} (twice tenants_max_objects) are \
                     applied at once",
                    plan.changes.len(),
                    options.max_changes()
                ))));
            }
            if !options.dry_run {
                // Org ids by slug, before deletions, for the audit entries below.
                let mut org_ids: BTreeMap<String, String> =
                    sqlx::query_as::<_, (String, String)>("SELECT slug, id FROM orgs")
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .collect();
                for op in &plan.ops {
                    if let Op::CreateOrg { id, slug, .. } = op {
                        org_ids.insert(slug.clone(), id.clone());
                    }
                }
                for op in &plan.ops {
                    match op {
                        Op::CreateOrg { id, slug, display_name, status } => {
                            sqlx::query("INSERT INTO orgs (id, slug, display_name, status, \
                                         trial_expires_at, created_at, updated_at, managed_by) \
                                         VALUES ($1, $2, $3, $4, NULL, $5, $5, $6)")
                                .bind(id).bind(slug).bind(display_name).bind(status.as_str())
                                .bind(now).bind(MANAGED_BY).execute(&mut *tx).await
                                .map_err(StoreError::unique(CREATED_MEANWHILE))?;
                        }
                        Op::UpdateOrg { id, display_name, status } => {
                            sqlx::query("UPDATE orgs SET display_name = $2, status = $3, \
                                         managed_by = $4, updated_at = $5 WHERE id = $1")
                                .bind(id).bind(display_name).bind(status.as_str())
                                .bind(MANAGED_BY).bind(now).execute(&mut *tx).await?;
                        }
                        Op::SetLicense { org_id, tier, add, remove, limits, valid_from, valid_until } => {
                            // Like PUT …/license (a new license id, revision + 1), except that
                            // a revocation made through the API stays in force.
                            sqlx::query("INSERT INTO licenses (id, org_id, tier, entitlements_add, \
                                         entitlements_remove, limits, valid_from, valid_until, \
                                         revoked_at, revision, created_at, updated_at) \
                                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 1, $9, $9) \
                                         ON CONFLICT (org_id) DO UPDATE SET id = excluded.id, \
                                         tier = excluded.tier, \
                                         entitlements_add = excluded.entitlements_add, \
                                         entitlements_remove = excluded.entitlements_remove, \
                                         limits = excluded.limits, valid_from = excluded.valid_from, \
                                         valid_until = excluded.valid_until, \
                                         revision = licenses.revision + 1, \
                                         updated_at = excluded.updated_at")
                                .bind(new_id()).bind(org_id).bind(tier.as_str())
                                .bind(to_json_text(add)?).bind(to_json_text(remove)?)
                                .bind(to_json_text(limits)?).bind(valid_from).bind(valid_until)
                                .bind(now).execute(&mut *tx).await?;
                        }
                        Op::CreateWorkspace { id, org_id, slug } => {
                            sqlx::query("INSERT INTO workspaces (id, org_id, slug, created_at, \
                                         managed_by) VALUES ($1, $2, $3, $4, $5)")
                                .bind(id).bind(org_id).bind(slug).bind(now).bind(MANAGED_BY)
                                .execute(&mut *tx).await
                                .map_err(StoreError::unique(CREATED_MEANWHILE))?;
                        }
                        Op::AdoptWorkspace { id } => {
                            sqlx::query("UPDATE workspaces SET managed_by = $2 WHERE id = $1")
                                .bind(id).bind(MANAGED_BY).execute(&mut *tx).await?;
                        }
                        Op::CreateEnvironment { org_id, workspace_id, slug } => {
                            sqlx::query("INSERT INTO environments (id, org_id, workspace_id, slug, \
                                         created_at, managed_by) VALUES ($1, $2, $3, $4, $5, $6)")
                                .bind(new_id()).bind(org_id).bind(workspace_id).bind(slug)
                                .bind(now).bind(MANAGED_BY).execute(&mut *tx).await
                                .map_err(StoreError::unique(CREATED_MEANWHILE))?;
                        }
                        Op::AdoptEnvironment { id } => {
                            sqlx::query("UPDATE environments SET managed_by = $2 WHERE id = $1")
                                .bind(id).bind(MANAGED_BY).execute(&mut *tx).await?;
                        }
                        Op::CreateKey { org_id, name, hash } => {
                            sqlx::query("INSERT INTO api_tokens (id, org_id, name, token_hash, \
                                         token_prefix, created_at, managed_by) \
                                         VALUES ($1, $2, $3, $4, $5, $6, $7)")
                                .bind(new_id()).bind(org_id).bind(name).bind(hash)
                                .bind(format!("sha256:{}", hash.get(..8).unwrap_or_default()))
                                .bind(now).bind(MANAGED_BY).execute(&mut *tx).await
                                .map_err(StoreError::unique(CREATED_MEANWHILE))?;
                        }
                        Op::RenameKey { id, name } => {
                            sqlx::query("UPDATE api_tokens SET name = $2 WHERE id = $1")
                                .bind(id).bind(name).execute(&mut *tx).await?;
                        }
                        Op::RevokeKey { id } => {
                            sqlx::query("UPDATE api_tokens SET revoked_at = $2 \
                                         WHERE id = $1 AND revoked_at IS NULL")
                                .bind(id).bind(now).execute(&mut *tx).await?;
                        }
                        Op::Delete { table, id, org_slug, path, export } => {
                            sqlx::query("INSERT INTO deleted_exports (id, org_slug, kind, path, \
                                         export, deleted_at, org_id) \
                                         VALUES ($1, $2, $3, $4, $5, $6, $7)")
                                .bind(new_id()).bind(org_slug).bind(table.kind()).bind(path)
                                .bind(to_json_text(export)?).bind(now)
                                .bind(org_ids.get(org_slug.as_str()))
                                .execute(&mut *tx).await?;
                            let sql = match table {
                                crate::domain::tenants_file::DeleteTable::Org => "DELETE FROM orgs WHERE id = $1",
                                crate::domain::tenants_file::DeleteTable::Workspace => {
                                    "DELETE FROM workspaces WHERE id = $1"
                                }
                                crate::domain::tenants_file::DeleteTable::Environment => {
                                    "DELETE FROM environments WHERE id = $1"
                                }
                            };
                            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                        }
                    }
                }
                // One entry per changed org, in the same transaction: what the file did.
                let mut by_org: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
                for change in plan.changes.iter().filter(|c| c.action != ChangeAction::Keep) {
                    let slug = change.path.split('/').next().unwrap_or_default();
                    by_org
                        .entry(slug)
                        .or_default()
                        .push(serde_json::to_value(change).unwrap_or_default());
                }
                for (slug, changes) in by_org {
                    let Some(org_id) = org_ids.get(slug) else { continue };
                    let event = Event::new(AuditAction::TenantsApply, format!("org:{slug}"),
                        serde_json::json!({"prune": options.prune, "changes": changes}));
                    tx.append_audit(org_id, actor, &[event], now).await?;
                }
            }
            plan
        }))
    }
}
