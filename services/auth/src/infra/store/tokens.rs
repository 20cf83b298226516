//! API tokens for the management API (`mcpg_pat_…`), stored as SHA-256 only. A token
//! without an org is a global admin token (the bootstrap token is one).

use mcpg_license_core::audit::SYSTEM_CHAIN;
use serde_json::json;
use sqlx::FromRow;

use super::audit_log::{Actor, AuditAction, Event};
use super::{Store, StoreError, in_tx, on_pool};
use crate::domain::new_id;

/// An API token as stored (never the token itself).
#[derive(Debug, Clone, FromRow)]
pub(crate) struct ApiTokenRecord {
    /// Id.
    pub(crate) id: String,
    /// The org it is scoped to; `None` for a global admin token.
    pub(crate) org_id: Option<String>,
    /// Name.
    pub(crate) name: String,
    /// SHA-256 hex.
    pub(crate) token_hash: String,
    /// Display prefix.
    pub(crate) token_prefix: String,
    /// Created.
    pub(crate) created_at: i64,
    /// The user it belongs to (personal tokens).
    pub(crate) user_id: Option<String>,
    /// The global admin token that impersonates the org with it.
    pub(crate) impersonator_id: Option<String>,
}

const INSERT: &str = "INSERT INTO api_tokens (id, org_id, name, token_hash, token_prefix, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

impl Store {
    /// Whether the bootstrap admin token was issued already (by any replica).
    pub(crate) async fn bootstrap_token_issued(&self) -> Result<bool, StoreError> {
        let found: Option<String> = on_pool!(self.global(), pool => sqlx::query_scalar(
                "SELECT value FROM service_meta WHERE name = 'bootstrap_token'")
            .fetch_optional(pool)
            .await?);
        Ok(found.is_some())
    }

    /// Stores the bootstrap admin token unless one was issued before; returns whether
    /// this call stored it (only then may the caller reveal it).
    pub(crate) async fn insert_bootstrap_token(
        &self,
        hash: &str,
        prefix: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let id = new_id();
        Ok(in_tx!(self.global(), tx => {
            let claimed = sqlx::query(
                "INSERT INTO service_meta (name, value) VALUES ('bootstrap_token', $1) \
                 ON CONFLICT (name) DO NOTHING")
                .bind(&id)
                .execute(&mut *tx)
                .await?
                .rows_affected() == 1;
            if claimed {
                sqlx::query(INSERT)
                    .bind(&id)
                    .bind(None::<String>)
                    .bind("bootstrap")
                    .bind(hash)
                    .bind(prefix)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let event = Event::new(AuditAction::BootstrapToken, format!("token:{id}"),
                    json!({"token_prefix": prefix}));
                tx.append_audit(SYSTEM_CHAIN, &Actor::system(), &[event], now)
                    .await?;
            }
            claimed
        }))
    }

    /// Stores a new API token.
    pub(crate) async fn insert_api_token(
        &self,
        org_id: Option<&str>,
        name: &str,
        hash: &str,
        prefix: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<ApiTokenRecord, StoreError> {
        let id = new_id();
        in_tx!(self.global(), tx => {
            sqlx::query(INSERT)
                .bind(&id)
                .bind(org_id)
                .bind(name)
                .bind(hash)
                .bind(prefix)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::unique("token collision; retry"))?;
            let event = Event::new(AuditAction::ApiTokenCreate, format!("token:{id}"), json!({
                "name": name, "token_prefix": prefix, "global": org_id.is_none(),
            }));
            let chain = org_id.unwrap_or(SYSTEM_CHAIN);
            tx.append_audit(chain, actor, &[event], now).await?;
        });
        Ok(ApiTokenRecord {
            id,
            org_id: org_id.map(str::to_owned),
            name: name.to_owned(),
            token_hash: hash.to_owned(),
            token_prefix: prefix.to_owned(),
            created_at: now,
            user_id: None,
            impersonator_id: None,
        })
    }

    /// The unrevoked, unexpired API token with this hash.
    pub(crate) async fn api_token_by_hash(
        &self,
        hash: &str,
        now: i64,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        let sql = "SELECT id, org_id, name, token_hash, token_prefix, created_at, user_id, \
                   impersonator_id \
                   FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
                   AND (expires_at IS NULL OR expires_at > $2)";
        Ok(on_pool!(self.global(), pool => sqlx::query_as(sql)
            .bind(hash)
            .bind(now)
            .fetch_optional(pool)
            .await?))
    }
}

/// An API token issued by a global admin (`/v1/admin/tokens`, or the bootstrap token), as
/// listed: never its hash.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct AdminTokenRecord {
    /// Id.
    pub(crate) id: String,
    /// The org's slug for an org API key; `None` for a global admin token.
    pub(crate) org: Option<String>,
    /// Name.
    pub(crate) name: String,
    /// Display prefix.
    pub(crate) token_prefix: String,
    /// Created.
    pub(crate) created_at: i64,
    /// Revoked.
    pub(crate) revoked_at: Option<i64>,
}

impl Store {
    /// Up to `limit` global admin tokens and org API keys (not personal or impersonation
    /// tokens) after `after` (creation time and id; `None`: from the first), oldest first.
    pub(crate) async fn admin_tokens(
        &self,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<AdminTokenRecord>, StoreError> {
        let sql = "SELECT t.id, o.slug AS org, t.name, t.token_prefix, t.created_at, t.revoked_at \
                   FROM api_tokens t LEFT JOIN orgs o ON o.id = t.org_id \
                   WHERE t.user_id IS NULL AND t.impersonator_id IS NULL \
                   AND (t.created_at > $1 OR (t.created_at = $1 AND t.id > $2)) \
                   ORDER BY t.created_at, t.id LIMIT $3";
        let (after_time, after_id) = after.unwrap_or((i64::MIN, ""));
        Ok(on_pool!(self.global(), pool => sqlx::query_as(sql)
            .bind(after_time).bind(after_id).bind(limit).fetch_all(pool).await?))
    }

    /// Revokes a global admin token or org API key (idempotent). The last working global
    /// admin token cannot be revoked: nobody could then administer the service.
    pub(crate) async fn revoke_admin_token(
        &self,
        id: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<(), StoreError> {
        in_tx!(self.global(), tx => {
            // Locks the working global admin tokens (a no-op write; SQLite's write
            // transaction is exclusive anyway), so two admins revoking each other's tokens
            // at once cannot both pass the last-token check below.
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = revoked_at WHERE org_id IS NULL \
                 AND user_id IS NULL AND impersonator_id IS NULL AND revoked_at IS NULL")
                .execute(&mut *tx)
                .await?;
            let target: Option<(Option<String>, Option<i64>)> = sqlx::query_as(
                "SELECT org_id, revoked_at FROM api_tokens \
                 WHERE id = $1 AND user_id IS NULL AND impersonator_id IS NULL")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((org_id, revoked_at)) = target else {
                return Err(StoreError::NotFound("token"));
            };
            if revoked_at.is_none() {
                if org_id.is_none() {
                    let others: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM api_tokens WHERE org_id IS NULL AND user_id IS NULL \
                         AND impersonator_id IS NULL AND revoked_at IS NULL AND id <> $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                    if others == 0 {
                        return Err(StoreError::Conflict(
                            "this is the last global admin token; create another before revoking it",
                        ));
                    }
                }
                sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let event = Event::new(AuditAction::ApiTokenRevoke, format!("token:{id}"),
                    json!({"global": org_id.is_none()}));
                let chain = org_id.as_deref().unwrap_or(SYSTEM_CHAIN);
                tx.append_audit(chain, actor, &[event], now).await?;
            }
        });
        Ok(())
    }
}
