//! Per-org usage against the license's quotas, for the tenant-scoped gauges. A
//! cross-tenant read ([`Store::global`]): one row per org.

use mcpg_license_core::Limits;
use sqlx::FromRow;

use super::{Store, StoreError, from_json_text, on_pool};

/// One org's usage and limits.
#[derive(Debug, Clone)]
pub(crate) struct OrgUsage {
    /// Org slug (the metrics label).
    pub(crate) org: String,
    /// The license's limits (default when the org has no license).
    pub(crate) limits: Limits,
    /// Workspaces.
    pub(crate) workspaces: i64,
    /// Environments.
    pub(crate) environments: i64,
    /// Unrevoked gateways.
    pub(crate) gateways: i64,
}

#[derive(FromRow)]
struct UsageRow {
    org: String,
    limits: Option<String>,
    workspaces: i64,
    environments: i64,
    gateways: i64,
}

const USAGE_SQL: &str = "SELECT o.slug AS org, l.limits, \
     (SELECT COUNT(*) FROM workspaces w WHERE w.org_id = o.id) AS workspaces, \
     (SELECT COUNT(*) FROM environments e WHERE e.org_id = o.id) AS environments, \
     (SELECT COUNT(*) FROM gateways g WHERE g.org_id = o.id AND g.revoked_at IS NULL) \
     AS gateways \
     FROM orgs o LEFT JOIN licenses l ON l.org_id = o.id ORDER BY o.slug";

impl Store {
    /// Every org's usage against its license's limits.
    pub(crate) async fn usage(&self) -> Result<Vec<OrgUsage>, StoreError> {
        let rows: Vec<UsageRow> =
            on_pool!(self.global(), pool => sqlx::query_as(USAGE_SQL).fetch_all(pool).await?);
        rows.into_iter()
            .map(|row| {
                Ok(OrgUsage {
                    limits: match row.limits.as_deref() {
                        Some(text) => from_json_text(text)?,
                        None => Limits::default(),
                    },
                    org: row.org,
                    workspaces: row.workspaces,
                    environments: row.environments,
                    gateways: row.gateways,
                })
            })
            .collect()
    }
}
