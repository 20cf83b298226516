//! The console's fleet queries: an environment's live gateways, filtered by when they last
//! got a token (the console turns a gateway health into a time range), a keyset page at a
//! time; the org counts of the overview and the vendor's org list.

use sqlx::FromRow;

use super::hierarchy::GATEWAY_SELECT;
use super::{GatewayRecord, Store, StoreError, TenantStore, on_pool};

/// How many workspaces, environments and live gateways an org has.
#[derive(Debug, Clone, Copy, Default, FromRow)]
pub(crate) struct LiveCounts {
    /// Workspaces.
    pub(crate) workspaces: i64,
    /// Environments.
    pub(crate) environments: i64,
    /// Unrevoked gateways.
    pub(crate) gateways: i64,
}

/// One row of the vendor's org list.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct OrgSummary {
    /// Slug.
    pub(crate) slug: String,
    /// Display name.
    pub(crate) display_name: String,
    /// Status (`active`, `suspended`, `trial`).
    pub(crate) status: String,
    /// The license's tier, if the org has a license.
    pub(crate) tier: Option<String>,
    /// The license's end.
    pub(crate) valid_until: Option<i64>,
    /// When the license was revoked.
    pub(crate) revoked_at: Option<i64>,
    /// Unrevoked gateways.
    pub(crate) gateways: i64,
}

/// Which gateways of an environment a fleet page lists, by their last token time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenTimeFilter {
    /// Every live gateway.
    Any,
    /// Those whose last token was issued in `[from, before)` (open ends: `None`).
    Between(Option<i64>, Option<i64>),
    /// Those never issued a token.
    Never,
}

impl Store {
    /// Every org with its license and live gateway count, by slug: the vendor's org list
    /// (a cross-tenant read, global admins only).
    pub(crate) async fn org_summaries(&self) -> Result<Vec<OrgSummary>, StoreError> {
        let sql = "SELECT o.slug, o.display_name, o.status, l.tier, l.valid_until, \
                   l.revoked_at, \
                   (SELECT COUNT(*) FROM gateways g WHERE g.org_id = o.id \
                    AND g.revoked_at IS NULL) AS gateways \
                   FROM orgs o LEFT JOIN licenses l ON l.org_id = o.id ORDER BY o.slug";
        Ok(on_pool!(self.global(), pool => sqlx::query_as(sql).fetch_all(pool).await?))
    }
}

/// One day of an org's federated usage: tokens issued, gateways that got one.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub(crate) struct UsageDay {
    /// `YYYY-MM-DD`.
    pub(crate) day: String,
    /// Tokens issued that day.
    pub(crate) tokens: i64,
    /// Gateways that got at least one token that day.
    pub(crate) gateways: i64,
}

impl TenantStore<'_> {
    /// The org's tokens and active gateways per day in `[first, last]` (`YYYY-MM-DD`), from
    /// the daily usage rows (months rolled up after the retention are left out); days
    /// without a token are absent.
    pub(crate) async fn usage_per_day(
        &self,
        first: &str,
        last: &str,
    ) -> Result<Vec<UsageDay>, StoreError> {
        let sql = "SELECT day, CAST(SUM(tokens) AS BIGINT) AS tokens, COUNT(*) AS gateways \
                   FROM usage_gateway_days WHERE org_id = $1 AND day >= $2 AND day <= $3 \
                   AND length(day) = 10 GROUP BY day ORDER BY day";
        Ok(on_pool!(self.store(), pool => sqlx::query_as(sql)
            .bind(self.org_id())
            .bind(first)
            .bind(last)
            .fetch_all(pool)
            .await?))
    }

    /// The org's workspace, environment and live gateway counts.
    pub(crate) async fn live_counts(&self) -> Result<LiveCounts, StoreError> {
        let sql = "SELECT \
                   (SELECT COUNT(*) FROM workspaces WHERE org_id = $1) AS workspaces, \
                   (SELECT COUNT(*) FROM environments WHERE org_id = $1) AS environments, \
                   (SELECT COUNT(*) FROM gateways WHERE org_id = $1 AND revoked_at IS NULL) \
                   AS gateways";
        Ok(on_pool!(self.store(), pool => sqlx::query_as(sql)
            .bind(self.org_id())
            .fetch_one(pool)
            .await?))
    }

    /// Up to `limit` unrevoked gateways of an environment matching `filter`, after `after`
    /// (creation time and id; `None`: from the first), oldest first.
    pub(crate) async fn fleet_gateways(
        &self,
        workspace: &str,
        environment: &str,
        filter: TokenTimeFilter,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<GatewayRecord>, StoreError> {
        let environment_id = self.environment_id(workspace, environment).await?;
        let (after_time, after_id) = after.unwrap_or((i64::MIN, ""));
        let (mode, from, before) = match filter {
            TokenTimeFilter::Any => (0_i64, i64::MIN, i64::MAX),
            TokenTimeFilter::Between(from, before) => {
                (1, from.unwrap_or(i64::MIN), before.unwrap_or(i64::MAX))
            }
            TokenTimeFilter::Never => (2, i64::MIN, i64::MAX),
        };
        let sql = format!(
            "{GATEWAY_SELECT} WHERE g.org_id = $1 AND g.environment_id = $2 \
             AND g.revoked_at IS NULL \
             AND ($3 = 0 \
                  OR ($3 = 1 AND g.last_token_at >= $4 AND g.last_token_at < $5) \
                  OR ($3 = 2 AND g.last_token_at IS NULL)) \
             AND (g.created_at > $6 OR (g.created_at = $6 AND g.id > $7)) \
             ORDER BY g.created_at, g.id LIMIT $8"
        );
        Ok(on_pool!(self.store(), pool => sqlx::query_as(&sql)
            .bind(self.org_id())
            .bind(&environment_id)
            .bind(mode)
            .bind(from)
            .bind(before)
            .bind(after_time)
            .bind(after_id)
            .bind(limit)
            .fetch_all(pool)
            .await?))
    }
}
