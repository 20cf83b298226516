//! Each org's OIDC configuration (`org_oidc`, one row per org): set, read and removed
//! through the org's tenant handle; looked up by issuer across orgs only by the login path.

use sqlx::FromRow;

use serde_json::json;

use super::audit_log::{AuditAction, Event};
use super::{Store, StoreError, TenantStore, from_json_text, in_tx, on_pool, to_json_text};
use crate::domain::oidc_config::OidcConfig;

/// An org's OIDC configuration as stored.
#[derive(Debug, Clone)]
pub(crate) struct OidcConfigRecord {
    /// The org's id.
    pub(crate) org_id: String,
    /// The org's slug.
    pub(crate) org_slug: String,
    /// The configuration.
    pub(crate) config: OidcConfig,
    /// First set (Unix seconds).
    pub(crate) created_at: i64,
    /// Last changed (Unix seconds).
    pub(crate) updated_at: i64,
}

#[derive(FromRow)]
struct OidcRow {
    org_id: String,
    org_slug: String,
    issuer: String,
    audience: String,
    jwks_uri: String,
    tenant_claim: String,
    tenant_value: String,
    role_claim: String,
    role_map: String,
    algorithms: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<OidcRow> for OidcConfigRecord {
    type Error = StoreError;
    fn try_from(row: OidcRow) -> Result<Self, StoreError> {
        Ok(Self {
            config: OidcConfig {
                issuer: row.issuer,
                audience: row.audience,
                jwks_uri: row.jwks_uri,
                tenant_claim: row.tenant_claim,
                tenant_value: row.tenant_value,
                role_claim: row.role_claim,
                role_map: from_json_text(&row.role_map)?,
                algorithms: from_json_text(&row.algorithms)?,
            },
            org_id: row.org_id,
            org_slug: row.org_slug,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const SELECT: &str = "SELECT c.org_id, o.slug AS org_slug, c.issuer, c.audience, c.jwks_uri, \
     c.tenant_claim, c.tenant_value, c.role_claim, c.role_map, c.algorithms, c.created_at, \
     c.updated_at FROM org_oidc c JOIN orgs o ON o.id = c.org_id";

impl TenantStore<'_> {
    /// The org's OIDC configuration, if it has one.
    pub(crate) async fn oidc_config(&self) -> Result<Option<OidcConfigRecord>, StoreError> {
        let sql = format!("{SELECT} WHERE c.org_id = $1");
        let row: Option<OidcRow> = on_pool!(self.store(), pool => sqlx::query_as(&sql)
            .bind(self.org_id()).fetch_optional(pool).await?);
        row.map(OidcConfigRecord::try_from).transpose()
    }

    /// Sets (creates or replaces) the org's OIDC configuration.
    pub(crate) async fn set_oidc_config(
        &self,
        config: &OidcConfig,
        now: i64,
    ) -> Result<OidcConfigRecord, StoreError> {
        let sql = "INSERT INTO org_oidc (org_id, issuer, audience, jwks_uri, tenant_claim, \
                   tenant_value, role_claim, role_map, algorithms, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                   ON CONFLICT (org_id) DO UPDATE SET issuer = excluded.issuer, \
                   audience = excluded.audience, jwks_uri = excluded.jwks_uri, \
                   tenant_claim = excluded.tenant_claim, tenant_value = excluded.tenant_value, \
                   role_claim = excluded.role_claim, role_map = excluded.role_map, \
                   algorithms = excluded.algorithms, updated_at = excluded.updated_at";
        let role_map = to_json_text(&config.role_map)?;
        let algorithms = to_json_text(&config.algorithms)?;
        let event = Event::new(
            AuditAction::OidcSet,
            "oidc",
            json!({
                "issuer": config.issuer, "audience": config.audience,
                "jwks_uri": config.jwks_uri, "tenant_claim": config.tenant_claim,
                "tenant_value": config.tenant_value, "role_claim": config.role_claim,
                "role_map": role_map, "algorithms": algorithms,
            }),
        );
        let actor = self.actor();
        in_tx!(self.store(), tx => {
            sqlx::query(sql)
                .bind(self.org_id()).bind(&config.issuer).bind(&config.audience)
                .bind(&config.jwks_uri).bind(&config.tenant_claim).bind(&config.tenant_value)
                .bind(&config.role_claim).bind(&role_map).bind(&algorithms).bind(now)
                .execute(&mut *tx).await?;
            tx.append_audit(self.org_id(), &actor, &[event], now).await?;
        });
        self.oidc_config()
            .await?
            .ok_or(StoreError::NotFound("OIDC configuration"))
    }

    /// Removes the org's OIDC configuration.
    pub(crate) async fn delete_oidc_config(&self, now: i64) -> Result<(), StoreError> {
        let actor = self.actor();
        in_tx!(self.store(), tx => {
            let done = sqlx::query("DELETE FROM org_oidc WHERE org_id = $1")
                .bind(self.org_id()).execute(&mut *tx).await?.rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound("OIDC configuration"));
            }
            let event = Event::new(AuditAction::OidcDelete, "oidc", json!({}));
            tx.append_audit(self.org_id(), &actor, &[event], now).await?;
        });
        Ok(())
    }
}

impl Store {
    /// Every org's configuration for `issuer` — the cross-tenant lookup of the login path:
    /// the token's issuer selects the candidates, its verified claims then pick the org.
    pub(crate) async fn oidc_configs_for_issuer(
        &self,
        issuer: &str,
    ) -> Result<Vec<OidcConfigRecord>, StoreError> {
        let sql = format!("{SELECT} WHERE c.issuer = $1 ORDER BY c.org_id");
        let rows: Vec<OidcRow> = on_pool!(self.global(), pool => sqlx::query_as(&sql)
            .bind(issuer).fetch_all(pool).await?);
        rows.into_iter().map(OidcConfigRecord::try_from).collect()
    }
}
