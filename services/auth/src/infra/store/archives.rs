//! Archives of deleted orgs: the JSON export an org delete keeps in `deleted_exports`
//! (kind `org`), extended with the org's audit chain (entries and signed checkpoints, up
//! to and including its `org.delete` entry) and the rows needed to restore it. Global
//! admins list, read, verify and restore them; a background job purges them once their
//! retention has passed, leaving an `archive.purge` entry in the `_system` chain.
//!
//! The org's live chain rows (`audit_entries`, `audit_checkpoints`) are append-only and
//! stay in place after the delete: a restore with the same org id continues that chain.

use mcpg_license_core::audit::{AuditRecord, SYSTEM_CHAIN};
use mcpg_license_core::clock::to_rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::FromRow;

use super::audit_log::{Actor, AuditAction, Event};
use super::gateways::{NamedGateway, rename_live_duplicates};
use super::{Store, StoreError, from_json_text, in_tx, on_pool};

/// One archive in a listing.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct ArchiveSummary {
    /// The archive's id (the `deleted_exports` row).
    pub(crate) id: String,
    /// The deleted org's slug.
    pub(crate) org_slug: String,
    /// The deleted org's id (`NULL` for exports older than migration 0009).
    pub(crate) org_id: Option<String>,
    /// When the org was deleted (Unix seconds).
    pub(crate) deleted_at: i64,
    /// The archive's size in bytes (its JSON text).
    pub(crate) size: i64,
}

const SUMMARY_SELECT: &str = "SELECT id, org_slug, org_id, deleted_at, \
     CAST(LENGTH(export) AS BIGINT) AS size FROM deleted_exports WHERE kind = 'org'";

/// A signed checkpoint as archived.
#[derive(Debug, Clone, FromRow, Serialize, Deserialize)]
pub(crate) struct ArchivedCheckpoint {
    /// The head seq it signs.
    pub(crate) seq: i64,
    /// The head hash (hex).
    pub(crate) hash: String,
    /// The signed note.
    pub(crate) note: String,
    /// When it was made (Unix seconds).
    pub(crate) created_at: i64,
}

/// An org's audit chain as archived.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ArchivedChain {
    /// Every entry, by seq.
    pub(crate) entries: Vec<AuditRecord>,
    /// Every signed checkpoint, by seq.
    pub(crate) checkpoints: Vec<ArchivedCheckpoint>,
}

/// Reads the chain of `$org` on the transaction's connection `$conn`.
macro_rules! read_chain {
    ($conn:expr, $org:expr) => {{
        use mcpg_license_core::audit::AuditRecord;
        use $crate::infra::store::archives::ArchivedCheckpoint;
        use $crate::infra::store::audit_log::{AUDIT_COLUMNS, AuditRow};
        let rows: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_entries WHERE org_id = $1 ORDER BY seq"
        ))
        .bind($org)
        .fetch_all(&mut *$conn)
        .await?;
        let checkpoints: Vec<ArchivedCheckpoint> = sqlx::query_as(
            "SELECT seq, hash, note, created_at FROM audit_checkpoints WHERE org_id = $1 \
             ORDER BY seq, created_at",
        )
        .bind($org)
        .fetch_all(&mut *$conn)
        .await?;
        $crate::infra::store::archives::ArchivedChain {
            entries: rows.into_iter().map(AuditRecord::from).collect(),
            checkpoints,
        }
    }};
}
pub(super) use read_chain;

impl Store {
    /// Every org archive, oldest deletion first.
    pub(crate) async fn archives(&self) -> Result<Vec<ArchiveSummary>, StoreError> {
        Ok(on_pool!(self.global(), pool => sqlx::query_as(
            &format!("{SUMMARY_SELECT} ORDER BY deleted_at, id"))
            .fetch_all(pool).await?))
    }

    /// One org archive and its JSON.
    pub(crate) async fn archive(
        &self,
        id: &str,
    ) -> Result<Option<(ArchiveSummary, Value)>, StoreError> {
        let row: Option<(String,)> = on_pool!(self.global(), pool => sqlx::query_as(
            "SELECT export FROM deleted_exports WHERE kind = 'org' AND id = $1")
            .bind(id).fetch_optional(pool).await?);
        let Some((text,)) = row else {
            return Ok(None);
        };
        let summary: Option<ArchiveSummary> = on_pool!(self.global(), pool => sqlx::query_as(
            &format!("{SUMMARY_SELECT} AND id = $1"))
            .bind(id).fetch_optional(pool).await?);
        let Some(summary) = summary else {
            return Ok(None);
        };
        Ok(Some((summary, from_json_text(&text)?)))
    }

    /// Removes the org archives deleted at or before `deleted_before`; each leaves an
    /// `archive.purge` entry in the `_system` chain. Returns what was purged.
    pub(crate) async fn purge_archives(
        &self,
        deleted_before: i64,
        now: i64,
    ) -> Result<Vec<ArchiveSummary>, StoreError> {
        let actor = Actor::system();
        Ok(in_tx!(self.global(), tx => {
            let due: Vec<ArchiveSummary> = sqlx::query_as(
                &format!("{SUMMARY_SELECT} AND deleted_at <= $1 ORDER BY deleted_at, id"))
                .bind(deleted_before).fetch_all(&mut *tx).await?;
            let mut events = Vec::with_capacity(due.len());
            let mut purged = Vec::with_capacity(due.len());
            for archive in due {
                // Another replica's purge may have taken it meanwhile: one entry per purge.
                let gone = sqlx::query("DELETE FROM deleted_exports WHERE id = $1")
                    .bind(&archive.id).execute(&mut *tx).await?.rows_affected();
                if gone == 0 {
                    continue;
                }
                events.push(Event::new(AuditAction::ArchivePurge, archive.org_slug.as_str(), json!({
                    "archive_id": archive.id,
                    "org_id": archive.org_id,
                    "deleted_at": to_rfc3339(archive.deleted_at),
                    "size": archive.size,
                })));
                purged.push(archive);
            }
            if !events.is_empty() {
                tx.append_audit(SYSTEM_CHAIN, &actor, &events, now).await?;
            }
            purged
        }))
    }
}

/// The org row as archived (restored as `active`, or `trial` with its trial end).
#[derive(Debug, Clone, FromRow, Serialize, Deserialize)]
pub(crate) struct ArchivedOrg {
    id: String,
    slug: String,
    display_name: String,
    trial_expires_at: Option<i64>,
    created_at: i64,
}

#[derive(Debug, Clone, FromRow, Serialize, Deserialize)]
pub(crate) struct ArchivedWorkspace {
    id: String,
    slug: String,
    created_at: i64,
}

#[derive(Debug, Clone, FromRow, Serialize, Deserialize)]
pub(crate) struct ArchivedEnvironment {
    id: String,
    workspace_id: String,
    slug: String,
    created_at: i64,
}

/// A gateway as archived, with its credential hash (never the credential) so that a
/// restored gateway authenticates with the credential it had.
#[derive(Debug, Clone, FromRow, Serialize, Deserialize)]
pub(crate) struct ArchivedGateway {
    id: String,
    workspace_id: String,
    environment_id: String,
    name: String,
    credential_hash: String,
    credential_prefix: String,
    created_at: i64,
    last_token_at: Option<i64>,
    revoked_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow, Serialize, Deserialize)]
pub(crate) struct ArchivedUser {
    id: String,
    email: String,
    created_at: i64,
}

#[derive(Debug, Clone, FromRow, Serialize, Deserialize)]
pub(crate) struct ArchivedBinding {
    id: String,
    user_id: String,
    role: String,
    workspace_id: Option<String>,
    environment_id: Option<String>,
    scope_key: String,
    created_at: i64,
}

/// A plugin set as archived.
#[derive(Debug, Clone, FromRow, Serialize, Deserialize)]
pub(crate) struct ArchivedPluginSet {
    scope_id: String,
    workspace_id: String,
    environment_id: Option<String>,
    plugins: String,
    digest: String,
    revision: i64,
    updated_at: i64,
}

/// The rows a restore writes back (API tokens, personal tokens and OIDC settings are not
/// kept: they are issued again after a restore).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RestoreRows {
    pub(super) org: ArchivedOrg,
    pub(super) license: Option<super::grants::LicenseRow>,
    pub(super) workspaces: Vec<ArchivedWorkspace>,
    pub(super) environments: Vec<ArchivedEnvironment>,
    pub(super) gateways: Vec<ArchivedGateway>,
    pub(super) users: Vec<ArchivedUser>,
    pub(super) role_bindings: Vec<ArchivedBinding>,
    /// Absent from archives made before plugin sets existed.
    #[serde(default)]
    pub(super) plugin_sets: Vec<ArchivedPluginSet>,
}

/// Reads the restore rows of `$org` on the transaction's connection `$conn`.
macro_rules! read_restore_rows {
    ($conn:expr, $org:expr) => {{
        use $crate::infra::store::archives::*;
        let org: ArchivedOrg = sqlx::query_as(
            "SELECT id, slug, display_name, trial_expires_at, created_at FROM orgs WHERE id = $1",
        )
        .bind($org)
        .fetch_one(&mut *$conn)
        .await?;
        let license: Option<$crate::infra::store::grants::LicenseRow> = sqlx::query_as(
            "SELECT id, tier, entitlements_add, entitlements_remove, limits, valid_from, \
             valid_until, revoked_at, revision, created_at, updated_at FROM licenses \
             WHERE org_id = $1",
        )
        .bind($org)
        .fetch_optional(&mut *$conn)
        .await?;
        let workspaces: Vec<ArchivedWorkspace> = sqlx::query_as(
            "SELECT id, slug, created_at FROM workspaces WHERE org_id = $1 ORDER BY id",
        )
        .bind($org)
        .fetch_all(&mut *$conn)
        .await?;
        let environments: Vec<ArchivedEnvironment> = sqlx::query_as(
            "SELECT id, workspace_id, slug, created_at FROM environments WHERE org_id = $1 \
             ORDER BY id",
        )
        .bind($org)
        .fetch_all(&mut *$conn)
        .await?;
        let gateways: Vec<ArchivedGateway> = sqlx::query_as(
            "SELECT id, workspace_id, environment_id, name, credential_hash, \
             credential_prefix, created_at, last_token_at, revoked_at FROM gateways \
             WHERE org_id = $1 ORDER BY id",
        )
        .bind($org)
        .fetch_all(&mut *$conn)
        .await?;
        let users: Vec<ArchivedUser> =
            sqlx::query_as("SELECT id, email, created_at FROM users WHERE org_id = $1 ORDER BY id")
                .bind($org)
                .fetch_all(&mut *$conn)
                .await?;
        let role_bindings: Vec<ArchivedBinding> = sqlx::query_as(
            "SELECT id, user_id, role, workspace_id, environment_id, scope_key, created_at \
             FROM role_bindings WHERE org_id = $1 ORDER BY id",
        )
        .bind($org)
        .fetch_all(&mut *$conn)
        .await?;
        let plugin_sets: Vec<ArchivedPluginSet> = sqlx::query_as(
            "SELECT scope_id, workspace_id, environment_id, plugins, digest, revision, \
             updated_at FROM plugin_sets WHERE org_id = $1 ORDER BY scope_id",
        )
        .bind($org)
        .fetch_all(&mut *$conn)
        .await?;
        RestoreRows {
            org,
            license,
            workspaces,
            environments,
            gateways,
            users,
            role_bindings,
            plugin_sets,
        }
    }};
}
pub(super) use read_restore_rows;

/// Why an archive was not restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RestoreRefusal {
    /// No such archive (or purged).
    NotFound,
    /// The archive's retention has passed.
    Expired,
    /// Another org has the slug (or the id) now.
    SlugTaken,
    /// The archive predates restore support (no `restore` rows).
    NotRestorable,
}

impl Store {
    /// Recreates the org of archive `id` with its rows as archived (its chain rows never
    /// left), appends `archive.restore` to its chain, and drops the archive. Refused when
    /// the archive was deleted at or before `deleted_before` (its retention has passed).
    pub(crate) async fn restore_archive(
        &self,
        id: &str,
        deleted_before: i64,
        actor: &Actor,
        now: i64,
    ) -> Result<Result<(String, String), RestoreRefusal>, StoreError> {
        Ok(in_tx!(self.global(), tx => 'body: {
            let row: Option<(String, i64)> = sqlx::query_as(
                "SELECT export, deleted_at FROM deleted_exports WHERE kind = 'org' AND id = $1")
                .bind(id).fetch_optional(&mut *tx).await?;
            let Some((text, deleted_at)) = row else {
                break 'body Err(RestoreRefusal::NotFound);
            };
            if deleted_at <= deleted_before {
                break 'body Err(RestoreRefusal::Expired);
            }
            let export: Value = from_json_text(&text)?;
            let Some(rows) = export.get("restore").cloned() else {
                break 'body Err(RestoreRefusal::NotRestorable);
            };
            let rows: RestoreRows = serde_json::from_value(rows)
                .map_err(|e| StoreError::Corrupt(format!("archive {id}: {e}")))?;
            let taken: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM orgs WHERE slug = $1 OR id = $2 OR routing_name = $1")
                .bind(&rows.org.slug).bind(&rows.org.id).fetch_one(&mut *tx).await?;
            if taken > 0 {
                break 'body Err(RestoreRefusal::SlugTaken);
            }
            let org = &rows.org;
            let status = if org.trial_expires_at.is_some() { "trial" } else { "active" };
            sqlx::query("INSERT INTO orgs (id, slug, display_name, status, trial_expires_at, \
                         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(&org.id).bind(&org.slug).bind(&org.display_name).bind(status)
                .bind(org.trial_expires_at).bind(org.created_at).bind(now)
                .execute(&mut *tx).await?;
            if let Some(l) = &rows.license {
                sqlx::query("INSERT INTO licenses (id, org_id, tier, entitlements_add, \
                             entitlements_remove, limits, valid_from, valid_until, revoked_at, \
                             revision, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                    .bind(&l.id).bind(&org.id).bind(&l.tier).bind(&l.entitlements_add)
                    .bind(&l.entitlements_remove).bind(&l.limits).bind(l.valid_from)
                    .bind(l.valid_until).bind(l.revoked_at).bind(l.revision)
                    .bind(l.created_at).bind(l.updated_at)
                    .execute(&mut *tx).await?;
            }
            for w in &rows.workspaces {
                sqlx::query("INSERT INTO workspaces (id, org_id, slug, created_at) \
                             VALUES ($1, $2, $3, $4)")
                    .bind(&w.id).bind(&org.id).bind(&w.slug).bind(w.created_at)
                    .execute(&mut *tx).await?;
            }
            for e in &rows.environments {
                sqlx::query("INSERT INTO environments (id, org_id, workspace_id, slug, \
                             created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&e.id).bind(&org.id).bind(&e.workspace_id).bind(&e.slug)
                    .bind(e.created_at).execute(&mut *tx).await?;
            }
            let named: Vec<NamedGateway<'_>> = rows.gateways.iter().map(|g| NamedGateway {
                id: &g.id,
                environment_id: &g.environment_id,
                name: &g.name,
                created_at: g.created_at,
                revoked: g.revoked_at.is_some(),
            }).collect();
            // An archive made before names were unique may repeat one (migration 0017).
            let renames = rename_live_duplicates(&named);
            for g in &rows.gateways {
                let name = renames.get(&g.id).unwrap_or(&g.name);
                sqlx::query("INSERT INTO gateways (id, org_id, workspace_id, environment_id, \
                             name, credential_hash, credential_prefix, created_at, \
                             last_token_at, revoked_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                    .bind(&g.id).bind(&org.id).bind(&g.workspace_id).bind(&g.environment_id)
                    .bind(name).bind(&g.credential_hash).bind(&g.credential_prefix)
                    .bind(g.created_at).bind(g.last_token_at).bind(g.revoked_at)
                    .execute(&mut *tx).await
                    .map_err(StoreError::unique("a gateway credential is in use again"))?;
            }
            for u in &rows.users {
                sqlx::query("INSERT INTO users (id, org_id, email, created_at) \
                             VALUES ($1, $2, $3, $4)")
                    .bind(&u.id).bind(&org.id).bind(&u.email).bind(u.created_at)
                    .execute(&mut *tx).await?;
            }
            for b in &rows.role_bindings {
                sqlx::query("INSERT INTO role_bindings (id, org_id, user_id, role, \
                             workspace_id, environment_id, scope_key, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(&b.id).bind(&org.id).bind(&b.user_id).bind(&b.role)
                    .bind(&b.workspace_id).bind(&b.environment_id).bind(&b.scope_key)
                    .bind(b.created_at).execute(&mut *tx).await?;
            }
            for p in &rows.plugin_sets {
                sqlx::query("INSERT INTO plugin_sets (scope_id, org_id, workspace_id, \
                             environment_id, plugins, digest, revision, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(&p.scope_id).bind(&org.id).bind(&p.workspace_id)
                    .bind(&p.environment_id).bind(&p.plugins).bind(&p.digest)
                    .bind(p.revision).bind(p.updated_at).execute(&mut *tx).await?;
            }
            sqlx::query("DELETE FROM deleted_exports WHERE id = $1")
                .bind(id).execute(&mut *tx).await?;
            let event = Event::new(AuditAction::ArchiveRestore, org.slug.as_str(), json!({
                "archive_id": id,
                "deleted_at": to_rfc3339(deleted_at),
                "workspaces": rows.workspaces.len(),
                "environments": rows.environments.len(),
                "gateways": rows.gateways.len(),
            }));
            tx.append_audit(&org.id, actor, &[event], now).await?;
            Ok((org.id.clone(), org.slug.clone()))
        }))
    }
}
