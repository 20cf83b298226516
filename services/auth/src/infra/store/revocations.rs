//! Uploaded revocation lists (global, no `org_id`): the highest serial is the list in
//! force, served to gateways and applied to this service's own signing keys.

use mcpg_license_core::RevocationList;
use mcpg_license_core::audit::SYSTEM_CHAIN;
use serde_json::json;

use super::audit_log::{Actor, AuditAction, Event};
use super::{Store, StoreError, in_tx, on_pool};

/// A stored revocation list.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct StoredRevocations {
    /// Its serial.
    pub(crate) serial: i64,
    /// The PASETO text as uploaded.
    pub(crate) list: String,
    /// When it was uploaded.
    pub(crate) uploaded_at: i64,
}

impl Store {
    /// The list in force (highest serial), if any was uploaded.
    pub(crate) async fn revocation_list(&self) -> Result<Option<StoredRevocations>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, StoredRevocations>(
                "SELECT serial, list, uploaded_at FROM revocation_lists \
                 ORDER BY serial DESC LIMIT 1")
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Stores a verified list unless one with the same or a higher serial is stored;
    /// returns whether it was stored.
    pub(crate) async fn insert_revocation_list(
        &self,
        list: &RevocationList,
        text: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<bool, StoreError> {
        let serial = i64::try_from(list.serial)
            .map_err(|_| StoreError::Corrupt("revocation serial out of range".into()))?;
        let mut certificates: Vec<&String> = list.certificates.iter().collect();
        let mut licenses: Vec<&String> = list.licenses.iter().collect();
        certificates.sort();
        licenses.sort();
        let event = Event::new(
            AuditAction::RevocationsUpload,
            format!("revocations:{serial}"),
            json!({"serial": serial, "certificates": certificates, "licenses": licenses}),
        );
        Ok(in_tx!(self.global(), tx => {
            let stored = sqlx::query(
                "INSERT INTO revocation_lists (serial, list, uploaded_at) \
                 SELECT $1, $2, $3 WHERE NOT EXISTS \
                 (SELECT 1 FROM revocation_lists WHERE serial >= $1)")
                .bind(serial)
                .bind(text)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::unique("a revocation list with this serial is stored"))?
                .rows_affected() == 1;
            if stored {
                tx.append_audit(SYSTEM_CHAIN, actor, &[event], now).await?;
            }
            stored
        }))
    }
}
