//! The database's development root: at most one row, stored by whichever replica gets
//! there first, so every replica sharing the database certifies with the same root.
//! Replicas starting together queue on a transaction-level advisory lock (PostgreSQL) or
//! on `BEGIN IMMEDIATE` (SQLite); the second finds the first's root and uses it.

use serde_json::json;
use sqlx::FromRow;

use mcpg_license_core::audit::SYSTEM_CHAIN;

use super::audit_log::{Actor, AuditAction, Event};
use super::{BackendKind, Store, StoreError, in_tx};

/// Serialises the development root's creation and certificate renewals across replicas
/// (an arbitrary constant, distinct from the tenants file's).
pub(super) const KEYS_LOCK: &str = "SELECT pg_advisory_xact_lock(7007002)";

/// A development root as stored: public, and its secret sealed under the KEK.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct StoredRoot {
    /// PASERK k4.pid.
    pub(crate) kid: String,
    /// PASERK k4.public.
    pub(crate) public_key: String,
    /// The secret key sealed with the key-encryption key (the kid is the associated data).
    pub(crate) secret_sealed: String,
}

const SELECT: &str =
    "SELECT kid, public_key, secret_sealed FROM development_root WHERE singleton = 1";

impl Store {
    /// Stores `candidate` as the database's development root unless one is stored
    /// already. Returns the root in force and whether it is `candidate`.
    pub(crate) async fn claim_dev_root(
        &self,
        candidate: &StoredRoot,
        now: i64,
    ) -> Result<(StoredRoot, bool), StoreError> {
        let kind = self.kind();
        let actor = Actor::system();
        Ok(in_tx!(self.global(), tx => {
            if kind == BackendKind::Postgres {
                sqlx::query(KEYS_LOCK).execute(&mut *tx).await?;
            }
            let stored: Option<StoredRoot> =
                sqlx::query_as(SELECT).fetch_optional(&mut *tx).await?;
            match stored {
                Some(stored) => (stored, false),
                None => {
                    sqlx::query(
                        "INSERT INTO development_root \
                         (singleton, kid, public_key, secret_sealed, created_at) \
                         VALUES (1, $1, $2, $3, $4)")
                        .bind(&candidate.kid)
                        .bind(&candidate.public_key)
                        .bind(&candidate.secret_sealed)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    let event = Event::new(AuditAction::KeyRoot, candidate.kid.as_str(),
                        json!({"public_key": candidate.public_key}));
                    tx.append_audit(SYSTEM_CHAIN, &actor, &[event], now).await?;
                    (candidate.clone(), true)
                }
            }
        }))
    }
}
