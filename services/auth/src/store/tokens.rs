//! API tokens for the management API (`mcpg_pat_…`), stored as SHA-256 only. A token
//! without an org is a global admin token (the bootstrap token is one).

use sqlx::FromRow;

use super::{Store, StoreError, in_tx, on_pool};
use crate::domain::new_id;

/// An API token as stored (never the token itself).
#[derive(Debug, Clone, FromRow)]
pub struct ApiTokenRecord {
    /// Id.
    pub id: String,
    /// The org it is scoped to; `None` for a global admin token.
    pub org_id: Option<String>,
    /// Name.
    pub name: String,
    /// SHA-256 hex.
    pub token_hash: String,
    /// Display prefix.
    pub token_prefix: String,
    /// Created.
    pub created_at: i64,
    /// Revoked.
    pub revoked_at: Option<i64>,
    /// The user it belongs to (personal tokens).
    pub user_id: Option<String>,
    /// When it stops working (impersonation tokens).
    pub expires_at: Option<i64>,
    /// The global admin token that impersonates the org with it.
    pub impersonator_id: Option<String>,
}

const INSERT: &str = "INSERT INTO api_tokens (id, org_id, name, token_hash, token_prefix, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

impl Store {
    /// Stores the bootstrap admin token unless one was issued before; returns whether
    /// this call stored it (only then may the caller reveal it).
    pub async fn insert_bootstrap_token(
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
            }
            claimed
        }))
    }

    /// Stores a new API token.
    pub async fn insert_api_token(
        &self,
        org_id: Option<&str>,
        name: &str,
        hash: &str,
        prefix: &str,
        now: i64,
    ) -> Result<ApiTokenRecord, StoreError> {
        let id = new_id();
        on_pool!(self.global(), pool => {
            sqlx::query(INSERT)
                .bind(&id)
                .bind(org_id)
                .bind(name)
                .bind(hash)
                .bind(prefix)
                .bind(now)
                .execute(pool)
                .await
                .map_err(StoreError::unique("token collision; retry"))?;
        });
        Ok(ApiTokenRecord {
            id,
            org_id: org_id.map(str::to_owned),
            name: name.to_owned(),
            token_hash: hash.to_owned(),
            token_prefix: prefix.to_owned(),
            created_at: now,
            revoked_at: None,
            user_id: None,
            expires_at: None,
            impersonator_id: None,
        })
    }

    /// The unrevoked, unexpired API token with this hash.
    pub async fn api_token_by_hash(
        &self,
        hash: &str,
        now: i64,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        let sql = "SELECT id, org_id, name, token_hash, token_prefix, created_at, revoked_at, \
                   user_id, expires_at, impersonator_id \
                   FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
                   AND (expires_at IS NULL OR expires_at > $2)";
        Ok(on_pool!(self.global(), pool => sqlx::query_as(sql)
            .bind(hash)
            .bind(now)
            .fetch_optional(pool)
            .await?))
    }
}
