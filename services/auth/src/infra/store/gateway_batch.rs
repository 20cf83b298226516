//! Registering many gateways of one environment at once (fleets of thousands): one
//! transaction, one quota check, multi-row inserts, and one audit entry per gateway, so
//! the chain says exactly what a one-by-one registration would have said.

use mcpg_license_core::LimitKey;
use serde_json::json;

use super::audit_log::{AuditAction, Event};
use super::lifecycle::{LIMITS_SQL, check_quota, lock_org_sql};
use super::{GatewayRecord, StoreError, TenantStore, in_tx};
use crate::domain::new_id;

/// The most gateways one batch registers.
pub(crate) const MAX_BATCH: usize = 1_000;

/// Rows per `INSERT` (8 parameters each, well inside SQLite's 32,766).
const ROWS_PER_INSERT: usize = 250;

/// One gateway of a batch: its name and its credential's hash and display prefix.
#[derive(Debug, Clone)]
pub(crate) struct BatchGateway {
    /// Name (checked display text).
    pub(crate) name: String,
    /// SHA-256 hex of the credential.
    pub(crate) credential_hash: String,
    /// Display prefix of the credential.
    pub(crate) credential_prefix: String,
}

impl TenantStore<'_> {
    /// Registers `gateways` in `workspace`/`environment`, all or none: refused whole when
    /// the license's `max_gateways` cannot take them all.
    pub(crate) async fn register_gateways(
        &self,
        workspace: &str,
        environment: &str,
        gateways: &[BatchGateway],
        now: i64,
    ) -> Result<Vec<GatewayRecord>, StoreError> {
        let org = self.org_id();
        let store = self.store();
        let actor = self.actor();
        let count = i64::try_from(gateways.len()).unwrap_or(i64::MAX);
        let ids: Vec<String> = gateways.iter().map(|_| new_id()).collect();
        in_tx!(store, tx => {
            sqlx::query(lock_org_sql(store.kind())).bind(org).execute(&mut *tx).await?;
            let place: Option<(String, String)> = sqlx::query_as(
                "SELECT e.id, e.workspace_id FROM environments e \
                 JOIN workspaces w ON w.id = e.workspace_id \
                 WHERE e.org_id = $1 AND w.slug = $2 AND e.slug = $3")
                .bind(org).bind(workspace).bind(environment)
                .fetch_optional(&mut *tx).await?;
            // A missing environment is 404 whatever the quota says.
            let (environment_id, workspace_id) = place.ok_or(StoreError::NotFound("environment"))?;
            let limits: Option<String> = sqlx::query_scalar(LIMITS_SQL).bind(org)
                .fetch_optional(&mut *tx).await?;
            let used: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM gateways WHERE org_id = $1 AND revoked_at IS NULL")
                .bind(org).fetch_one(&mut *tx).await?;
            // The last one of the batch must still fit.
            check_quota(limits.as_deref(), LimitKey::MaxGateways, used + count - 1)
                .map_err(|error| match error {
                    StoreError::Quota { key, limit, .. } => StoreError::Quota { key, limit, usage: used },
                    other => other,
                })?;
            for (chunk, chunk_ids) in gateways.chunks(ROWS_PER_INSERT).zip(ids.chunks(ROWS_PER_INSERT)) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO gateways (id, org_id, workspace_id, environment_id, name, \
                     credential_hash, credential_prefix, created_at) ");
                insert.push_values(chunk.iter().zip(chunk_ids), |mut row, (gateway, id)| {
                    row.push_bind(id)
                        .push_bind(org)
                        .push_bind(&workspace_id)
                        .push_bind(&environment_id)
                        .push_bind(&gateway.name)
                        .push_bind(&gateway.credential_hash)
                        .push_bind(&gateway.credential_prefix)
                        .push_bind(now);
                });
                insert.build().execute(&mut *tx).await
                    .map_err(StoreError::unique("credential collision; retry"))?;
            }
            let events: Vec<Event> = gateways.iter().zip(&ids).map(|(gateway, id)| {
                Event::new(AuditAction::GatewayRegister,
                    format!("{workspace}/{environment}/{id}"),
                    json!({"gateway_id": id, "name": gateway.name,
                           "credential_prefix": gateway.credential_prefix}))
            }).collect();
            tx.append_audit(org, &actor, &events, now).await?;
        });
        Ok(gateways
            .iter()
            .zip(ids)
            .map(|(gateway, id)| GatewayRecord {
                id,
                name: gateway.name.clone(),
                workspace: workspace.to_owned(),
                environment: environment.to_owned(),
                credential_prefix: gateway.credential_prefix.clone(),
                created_at: now,
                last_token_at: None,
                revoked_at: None,
            })
            .collect())
    }
}
