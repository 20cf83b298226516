//! Applying a `tenants.yaml`: one transaction (global scope: it spans orgs) reads the
//! current state, computes the plan and writes it, so a document is applied all or
//! nothing and a failure leaves the previous state. Replicas that reconcile the same file
//! at once queue on a transaction-level advisory lock (PostgreSQL) or on `BEGIN
//! IMMEDIATE` (SQLite), so the second computes its plan from the first's result.

use std::collections::{BTreeMap, HashMap};

use sqlx::{FromRow, PgConnection, SqliteConnection};

use super::audit_log::{Actor, AuditAction, Event};
use super::grants::{LICENSE_COLUMNS, LicenseRow};
use super::orgs::{COLUMNS as ORG_COLUMNS, OrgRow};
use super::{BackendKind, LicenseRecord, OrgRecord, Store, StoreError, in_tx, to_json_text};
use crate::domain::new_id;
use crate::domain::tenants_file::{
    ApplyOptions, ChangeAction, Current, CurrentEnvironment, CurrentKey, CurrentOrg,
    CurrentPluginSet, CurrentWorkspace, DeleteTable, GatewaySettings, MANAGED_BY, Op, Plan,
    TenantsDoc, TenantsError, diff,
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
const SLUG_IS_A_ROUTING_NAME: &str =
    "a tenant's id is another organization's routing name (one host label names one organization)";
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

#[derive(FromRow)]
struct PluginSetRow {
    org_id: String,
    workspace_id: String,
    environment_id: Option<String>,
    place: String,
    plugins: String,
    digest: String,
    managed_by: Option<String>,
}

const PLUGIN_SETS: &str = "SELECT p.org_id, p.workspace_id, p.environment_id, \
     CASE WHEN e.slug IS NULL THEN w.slug ELSE w.slug || '/' || e.slug END AS place, \
     p.plugins, p.digest, p.managed_by FROM plugin_sets p \
     JOIN workspaces w ON w.id = p.workspace_id \
     LEFT JOIN environments e ON e.id = p.environment_id";
/// Like PUT …/plugin-set, marked managed by the file.
const PUT_PLUGIN_SET: &str = "INSERT INTO plugin_sets (scope_id, org_id, workspace_id, \
     environment_id, plugins, digest, revision, updated_at, managed_by) \
     VALUES ($1, $2, $1, NULL, $3, $4, 1, $5, $6) \
     ON CONFLICT (scope_id) DO UPDATE SET plugins = excluded.plugins, \
     digest = excluded.digest, revision = plugin_sets.revision + 1, \
     updated_at = excluded.updated_at, managed_by = excluded.managed_by";
const DELETE_PLUGIN_SET: &str = "DELETE FROM plugin_sets WHERE scope_id = $1";

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
    plugin_sets: Vec<PluginSetRow>,
) -> Result<Current, ApplyError> {
    let users: HashMap<String, i64> = users.into_iter().collect();
    let mut current = Current::default();
    for row in orgs {
        let org = OrgRecord::try_from(row.org)?;
        current.orgs.push(CurrentOrg {
            users: users.get(&org.id).copied().unwrap_or(0),
            managed: managed(&row.managed_by),
            status: org.status,
            trial_expires_at: org.trial_expires_at,
            gateway: GatewaySettings {
                namespace: org.namespace,
                catalog_file: org.catalog_file,
            },
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
    for p in plugin_sets {
        current.plugin_sets.push(CurrentPluginSet {
            set: super::from_json_text(&p.plugins)?,
            managed: managed(&p.managed_by),
            org_id: p.org_id,
            workspace_id: p.workspace_id,
            environment_id: p.environment_id,
            place: p.place,
            digest: p.digest,
        });
    }
    Ok(current)
}

impl From<sqlx::Error> for ApplyError {
    fn from(error: sqlx::Error) -> Self {
        ApplyError::Store(error.into())
    }
}

/// The plan of `doc` over `state`, refused when it lists more changes than one apply may
/// make.
fn checked_plan(
    doc: &TenantsDoc,
    state: &Current,
    options: &ApplyOptions,
    now: i64,
) -> Result<Plan, ApplyError> {
    let plan = diff(doc, state, options.prune, options.dry_run, now)?;
    if plan.changes.len() > options.max_changes() {
        return Err(ApplyError::Refused(TenantsError::TooLarge(format!(
            "the plan lists {} changes; at most {} (twice tenants_max_objects) are applied at \
             once",
            plan.changes.len(),
            options.max_changes()
        ))));
    }
    Ok(plan)
}

/// One audit entry per org the plan changes (keeps change nothing), by org slug, in slug
/// order: what the file did to it.
fn audit_events(plan: &Plan, prune: bool) -> BTreeMap<&str, Event> {
    let mut by_org: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
    for change in plan
        .changes
        .iter()
        .filter(|c| c.action != ChangeAction::Keep)
    {
        let slug = change.path.split('/').next().unwrap_or_default();
        by_org
            .entry(slug)
            .or_default()
            .push(serde_json::to_value(change).unwrap_or_default());
    }
    by_org
        .into_iter()
        .map(|(slug, changes)| {
            let details = serde_json::json!({"prune": prune, "changes": changes});
            let event = Event::new(AuditAction::TenantsApply, format!("org:{slug}"), details);
            (slug, event)
        })
        .collect()
}

/// Inserts nothing when the slug is another org's routing name (one host label names one
/// org, as `POST /v1/orgs` enforces).
const INSERT_ORG: &str = "INSERT INTO orgs (id, slug, display_name, status, \
     trial_expires_at, namespace, catalog_file, created_at, updated_at, managed_by) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $8, $9 \
     WHERE NOT EXISTS (SELECT 1 FROM orgs WHERE routing_name = $2)";
const UPDATE_ORG: &str = "UPDATE orgs SET display_name = $2, status = $3, \
     trial_expires_at = $4, namespace = $5, catalog_file = $6, \
     managed_by = $7, updated_at = $8 WHERE id = $1";
/// Like PUT …/license (a new license id, revision + 1), except that a revocation made
/// through the API stays in force.
const SET_LICENSE: &str = "INSERT INTO licenses (id, org_id, tier, entitlements_add, \
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
     updated_at = excluded.updated_at";
const INSERT_WORKSPACE: &str = "INSERT INTO workspaces (id, org_id, slug, created_at, \
     managed_by) VALUES ($1, $2, $3, $4, $5)";
const ADOPT_WORKSPACE: &str = "UPDATE workspaces SET managed_by = $2 WHERE id = $1";
const INSERT_ENVIRONMENT: &str = "INSERT INTO environments (id, org_id, workspace_id, slug, \
     created_at, managed_by) VALUES ($1, $2, $3, $4, $5, $6)";
const ADOPT_ENVIRONMENT: &str = "UPDATE environments SET managed_by = $2 WHERE id = $1";
const INSERT_KEY: &str = "INSERT INTO api_tokens (id, org_id, name, token_hash, \
     token_prefix, created_at, managed_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
const RENAME_KEY: &str = "UPDATE api_tokens SET name = $2 WHERE id = $1";
const REVOKE_KEY: &str = "UPDATE api_tokens SET revoked_at = $2 \
     WHERE id = $1 AND revoked_at IS NULL";
/// What a delete removed, kept so that it can be looked at or restored.
const INSERT_EXPORT: &str = "INSERT INTO deleted_exports (id, org_slug, kind, path, \
     export, deleted_at, org_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

fn delete_sql(table: DeleteTable) -> &'static str {
    match table {
        DeleteTable::Org => "DELETE FROM orgs WHERE id = $1",
        DeleteTable::Workspace => "DELETE FROM workspaces WHERE id = $1",
        DeleteTable::Environment => "DELETE FROM environments WHERE id = $1",
    }
}

/// The reads and writes of a reconciliation on its transaction's connection. The SQL is
/// the same on both backends and only the connection type differs, so `reconcile_conn!`
/// writes both impls from one body.
trait ReconcileConn {
    /// The orgs, licenses, workspaces, environments and API keys as they are.
    async fn read_current(&mut self) -> Result<Current, ApplyError>;

    /// Org ids by slug, read before any deletion (the audit entries of a deleted org still
    /// go to its chain), with the ids of the orgs the plan creates.
    async fn org_ids(&mut self, ops: &[Op]) -> Result<BTreeMap<String, String>, ApplyError>;

    /// Writes one op of the plan.
    async fn apply_op(
        &mut self,
        op: &Op,
        org_ids: &BTreeMap<String, String>,
        now: i64,
    ) -> Result<(), ApplyError>;
}

/// Runs `$sql` on the connection `$conn` with the `$arg`s bound in order (a macro: the
/// query type differs per backend).
macro_rules! execute {
    ($conn:expr, $sql:expr; $($arg:expr),+ $(,)?) => {
        sqlx::query($sql)$(.bind($arg))+.execute(&mut *$conn).await
    };
}

macro_rules! reconcile_conn {
    ($conn:ty) => {
        impl ReconcileConn for $conn {
            async fn read_current(&mut self) -> Result<Current, ApplyError> {
                let orgs_sql = format!("SELECT {ORG_COLUMNS}, managed_by FROM orgs");
                let licenses_sql = format!("SELECT {LICENSE_COLUMNS} FROM licenses");
                current(
                    sqlx::query_as(&orgs_sql).fetch_all(&mut *self).await?,
                    sqlx::query_as(USERS).fetch_all(&mut *self).await?,
                    sqlx::query_as(&licenses_sql).fetch_all(&mut *self).await?,
                    sqlx::query_as(WORKSPACES).fetch_all(&mut *self).await?,
                    sqlx::query_as(ENVIRONMENTS).fetch_all(&mut *self).await?,
                    sqlx::query_as(KEYS).fetch_all(&mut *self).await?,
                    sqlx::query_as(PLUGIN_SETS).fetch_all(&mut *self).await?,
                )
            }

            async fn org_ids(
                &mut self,
                ops: &[Op],
            ) -> Result<BTreeMap<String, String>, ApplyError> {
                let mut org_ids: BTreeMap<String, String> =
                    sqlx::query_as::<_, (String, String)>("SELECT slug, id FROM orgs")
                        .fetch_all(&mut *self)
                        .await?
                        .into_iter()
                        .collect();
                for op in ops {
                    if let Op::CreateOrg { id, slug, .. } = op {
                        org_ids.insert(slug.clone(), id.clone());
                    }
                }
                Ok(org_ids)
            }

            async fn apply_op(
                &mut self,
                op: &Op,
                org_ids: &BTreeMap<String, String>,
                now: i64,
            ) -> Result<(), ApplyError> {
                let created = StoreError::unique(CREATED_MEANWHILE);
                match op {
                    Op::CreateOrg { id, slug, display_name, status, trial_expires_at, gateway } => {
                        let inserted = execute!(self, INSERT_ORG; id, slug, display_name,
                            status.as_str(), trial_expires_at, &gateway.namespace,
                            &gateway.catalog_file, now, MANAGED_BY).map_err(created)?;
                        if inserted.rows_affected() == 0 {
                            return Err(StoreError::Conflict(SLUG_IS_A_ROUTING_NAME).into());
                        }
                    }
                    Op::UpdateOrg { id, display_name, status, trial_expires_at, gateway } => {
                        execute!(self, UPDATE_ORG; id, display_name, status.as_str(),
                            trial_expires_at, &gateway.namespace, &gateway.catalog_file,
                            MANAGED_BY, now)?;
                    }
                    Op::SetLicense {
                        org_id, tier, add, remove, limits, valid_from, valid_until,
                    } => {
                        execute!(self, SET_LICENSE; new_id(), org_id, tier.as_str(),
                            to_json_text(add)?, to_json_text(remove)?, to_json_text(limits)?,
                            valid_from, valid_until, now)?;
                    }
                    Op::CreateWorkspace { id, org_id, slug } => {
                        execute!(self, INSERT_WORKSPACE; id, org_id, slug, now, MANAGED_BY)
                            .map_err(created)?;
                    }
                    Op::AdoptWorkspace { id } => {
                        execute!(self, ADOPT_WORKSPACE; id, MANAGED_BY)?;
                    }
                    Op::CreateEnvironment { org_id, workspace_id, slug } => {
                        execute!(self, INSERT_ENVIRONMENT; new_id(), org_id, workspace_id, slug,
                            now, MANAGED_BY).map_err(created)?;
                    }
                    Op::AdoptEnvironment { id } => {
                        execute!(self, ADOPT_ENVIRONMENT; id, MANAGED_BY)?;
                    }
                    Op::CreateKey { org_id, name, hash } => {
                        let prefix = format!("sha256:{}", hash.get(..8).unwrap_or_default());
                        execute!(self, INSERT_KEY; new_id(), org_id, name, hash, prefix, now,
                            MANAGED_BY).map_err(created)?;
                    }
                    Op::RenameKey { id, name } => {
                        execute!(self, RENAME_KEY; id, name)?;
                    }
                    Op::RevokeKey { id } => {
                        execute!(self, REVOKE_KEY; id, now)?;
                    }
                    Op::PutPluginSet { org_id, workspace_id, plugins, digest } => {
                        execute!(self, PUT_PLUGIN_SET; workspace_id, org_id, plugins, digest,
                            now, MANAGED_BY)?;
                    }
                    Op::DeletePluginSet { scope_id } => {
                        execute!(self, DELETE_PLUGIN_SET; scope_id)?;
                    }
                    Op::Delete { table, id, org_slug, path, export } => {
                        // The export keeps the org's id, read before any deletion.
                        let org_id = org_ids.get(org_slug.as_str());
                        execute!(self, INSERT_EXPORT; new_id(), org_slug, table.kind(), path,
                            to_json_text(export)?, now, org_id)?;
                        execute!(self, delete_sql(*table); id)?;
                    }
                }
                Ok(())
            }
        }
    };
}

reconcile_conn!(SqliteConnection);
reconcile_conn!(PgConnection);

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
        Ok(in_tx!(store, tx => {
            if kind == BackendKind::Postgres {
                sqlx::query(ADVISORY_LOCK).execute(&mut *tx).await?;
                // The API's license and plugin-set writes serialise on the org row; so does
                // an apply, on every org's (in id order: API writes lock one row and take no
                // other lock, so this cannot deadlock with them). Without it an apply and an
                // API write could each pass the set-vs-license check against a state the
                // other was about to change. SQLite's BEGIN IMMEDIATE already serialises.
                sqlx::query("SELECT id FROM orgs ORDER BY id FOR UPDATE")
                    .execute(&mut *tx)
                    .await?;
            }
            let state = tx.read_current().await?;
            let plan = checked_plan(doc, &state, &options, now)?;
            if !options.dry_run {
                let org_ids = tx.org_ids(&plan.ops).await?;
                for op in &plan.ops {
                    tx.apply_op(op, &org_ids, now).await?;
                }
                // In the same transaction: the entries commit with what they record.
                for (slug, event) in audit_events(&plan, options.prune) {
                    let Some(org_id) = org_ids.get(slug) else { continue };
                    tx.append_audit(org_id, actor, &[event], now).await?;
                }
            }
            plan
        }))
    }
}
