//! The token hot path's one query (credential hash → gateway, org and license), the
//! batched `last_token_at` flush, and the figures behind the per-org gauges.

use sqlx::FromRow;

use super::{Store, StoreError, from_json_text, in_tx, on_pool};
use crate::domain::OrgStatus;

pub(crate) use crate::domain::LicenseRecord;

pub(super) const LICENSE_COLUMNS: &str = "id, org_id, tier, entitlements_add, entitlements_remove, \
     limits, valid_from, valid_until, revoked_at, revision, created_at, updated_at";

/// A `licenses` row as stored (also what an org's archive keeps of its license).
#[derive(Debug, Clone, FromRow, serde::Serialize, serde::Deserialize)]
pub(super) struct LicenseRow {
    pub(super) id: String,
    pub(super) tier: String,
    pub(super) entitlements_add: String,
    pub(super) entitlements_remove: String,
    pub(super) limits: String,
    pub(super) valid_from: i64,
    pub(super) valid_until: i64,
    pub(super) revoked_at: Option<i64>,
    pub(super) revision: i64,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

impl TryFrom<LicenseRow> for LicenseRecord {
    type Error = StoreError;
    fn try_from(row: LicenseRow) -> Result<Self, StoreError> {
        Ok(Self {
            tier: row
                .tier
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("tier {:?}", row.tier)))?,
            add: from_json_text(&row.entitlements_add)?,
            remove: from_json_text(&row.entitlements_remove)?,
            limits: from_json_text(&row.limits)?,
            id: row.id,
            valid_from: row.valid_from,
            valid_until: row.valid_until,
            revoked_at: row.revoked_at,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Everything the token endpoint needs to know about one gateway credential.
#[derive(Debug, Clone)]
pub(crate) struct GatewayGrant {
    /// Gateway id.
    pub(crate) gateway_id: String,
    /// Stored SHA-256 hex of the credential (compared again in constant time).
    pub(crate) credential_hash: String,
    /// Whether the gateway's credential was revoked.
    pub(crate) revoked: bool,
    /// Org id.
    pub(crate) org_id: String,
    /// Org slug.
    pub(crate) org_slug: String,
    /// Org status.
    pub(crate) org_status: OrgStatus,
    /// End of the org's trial.
    pub(crate) trial_expires_at: Option<i64>,
    /// Workspace slug.
    pub(crate) workspace: String,
    /// Environment slug.
    pub(crate) environment: String,
    /// The org's license, if any.
    pub(crate) license: Option<LicenseRecord>,
    /// The gateway's effective plugin set as stored (`plugin_sets.plugins`): its
    /// environment's, else its workspace's, else none. Parsed and prepared once per
    /// distinct set by the issuer's `PluginSetCache`, not once per gateway.
    pub(crate) plugin_set: Option<String>,
}

/// The license columns of a `LEFT JOIN licenses`: all `NULL` when the org has none.
#[derive(FromRow)]
pub(super) struct OptionalLicense {
    id: Option<String>,
    tier: Option<String>,
    entitlements_add: Option<String>,
    entitlements_remove: Option<String>,
    limits: Option<String>,
    valid_from: Option<i64>,
    valid_until: Option<i64>,
    revoked_at: Option<i64>,
    revision: Option<i64>,
    created_at: Option<i64>,
    updated_at: Option<i64>,
}

impl OptionalLicense {
    /// The license, if the join found one.
    pub(super) fn into_license(self) -> Result<Option<LicenseRecord>, StoreError> {
        let (
            Some(id),
            Some(tier),
            Some(entitlements_add),
            Some(entitlements_remove),
            Some(limits),
            Some(valid_from),
            Some(valid_until),
            Some(revision),
            Some(created_at),
            Some(updated_at),
        ) = (
            self.id,
            self.tier,
            self.entitlements_add,
            self.entitlements_remove,
            self.limits,
            self.valid_from,
            self.valid_until,
            self.revision,
            self.created_at,
            self.updated_at,
        )
        else {
            return Ok(None);
        };
        LicenseRecord::try_from(LicenseRow {
            id,
            tier,
            entitlements_add,
            entitlements_remove,
            limits,
            valid_from,
            valid_until,
            revoked_at: self.revoked_at,
            revision,
            created_at,
            updated_at,
        })
        .map(Some)
    }
}

#[derive(FromRow)]
struct GrantRow {
    gateway_id: String,
    credential_hash: String,
    gateway_revoked_at: Option<i64>,
    org_id: String,
    org_slug: String,
    org_status: String,
    trial_expires_at: Option<i64>,
    workspace: String,
    environment: String,
    #[sqlx(flatten)]
    license: OptionalLicense,
    plugin_set: Option<String>,
}

const GRANT_SQL: &str = "SELECT g.id AS gateway_id, g.credential_hash, \
     g.revoked_at AS gateway_revoked_at, o.id AS org_id, o.slug AS org_slug, \
     o.status AS org_status, o.trial_expires_at, w.slug AS workspace, e.slug AS environment, \
     l.id, l.tier, l.entitlements_add, l.entitlements_remove, l.limits, l.valid_from, \
     l.valid_until, l.revoked_at, l.revision, l.created_at, l.updated_at, \
     COALESCE(pe.plugins, pw.plugins) AS plugin_set \
     FROM gateways g JOIN orgs o ON o.id = g.org_id \
     JOIN workspaces w ON w.id = g.workspace_id JOIN environments e ON e.id = g.environment_id \
     LEFT JOIN licenses l ON l.org_id = g.org_id \
     LEFT JOIN plugin_sets pe ON pe.scope_id = g.environment_id \
     LEFT JOIN plugin_sets pw ON pw.scope_id = g.workspace_id \
     WHERE g.credential_hash = $1";

impl GrantRow {
    fn into_grant(self) -> Result<GatewayGrant, StoreError> {
        let license = self.license.into_license()?;
        Ok(GatewayGrant {
            gateway_id: self.gateway_id,
            credential_hash: self.credential_hash,
            revoked: self.gateway_revoked_at.is_some(),
            org_id: self.org_id,
            org_slug: self.org_slug,
            org_status: self
                .org_status
                .parse()
                .map_err(|e: crate::domain::UnknownValue| StoreError::Corrupt(e.to_string()))?,
            trial_expires_at: self.trial_expires_at,
            workspace: self.workspace,
            environment: self.environment,
            license,
            plugin_set: self.plugin_set,
        })
    }
}

impl Store {
    /// The grant behind a credential hash (hex), if a gateway has it.
    pub(crate) async fn gateway_grant(
        &self,
        credential_hash: &str,
    ) -> Result<Option<GatewayGrant>, StoreError> {
        let row: Option<GrantRow> = on_pool!(self.global(), pool => sqlx::query_as(GRANT_SQL)
            .bind(credential_hash)
            .fetch_optional(pool)
            .await?);
        row.map(GrantRow::into_grant).transpose()
    }

    /// Records when gateways last got a token, in one transaction.
    pub(crate) async fn record_token_times(
        &self,
        seen: &[(String, i64)],
    ) -> Result<(), StoreError> {
        if seen.is_empty() {
            return Ok(());
        }
        let sql = "UPDATE gateways SET last_token_at = $2 \
                   WHERE id = $1 AND (last_token_at IS NULL OR last_token_at < $2)";
        in_tx!(self.global(), tx => {
            for (id, at) in seen {
                sqlx::query(sql).bind(id).bind(at).execute(&mut *tx).await?;
            }
        });
        Ok(())
    }

    /// Per org slug: gateways that got a token since `since`.
    pub(crate) async fn gateways_seen_since(
        &self,
        since: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = "SELECT o.slug, COUNT(*) FROM gateways g JOIN orgs o ON o.id = g.org_id \
                   WHERE g.last_token_at >= $1 AND g.revoked_at IS NULL GROUP BY o.slug";
        Ok(on_pool!(self.global(), pool => sqlx::query_as(sql).bind(since).fetch_all(pool).await?))
    }

    /// Per org slug: the end of its unrevoked license.
    pub(crate) async fn license_ends(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = "SELECT o.slug, l.valid_until FROM licenses l JOIN orgs o ON o.id = l.org_id \
                   WHERE l.revoked_at IS NULL";
        Ok(on_pool!(self.global(), pool => sqlx::query_as(sql).fetch_all(pool).await?))
    }
}
