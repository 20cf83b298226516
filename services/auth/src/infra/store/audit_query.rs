//! Reading an org's audit chain (list with filters, pages for verify and export), its
//! checkpoints, and the appends that are not part of another change (issuance batches,
//! the service-wide system chain).

use mcpg_license_core::audit::AuditRecord;
use sqlx::FromRow;

use super::audit_log::{AUDIT_COLUMNS, AuditRow, Event};
use super::{Store, StoreError, TenantStore, in_tx, on_pool};
use crate::domain::new_id;

/// Filters of the audit list; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditFilter {
    /// Only entries after this seq (the cursor).
    pub(crate) after_seq: i64,
    /// At most this many.
    pub(crate) limit: i64,
    /// Only this action.
    pub(crate) action: Option<String>,
    /// Only this actor.
    pub(crate) actor: Option<String>,
    /// Only at or after this time (RFC 3339 UTC, as stored).
    pub(crate) since: Option<String>,
    /// Only before this time (RFC 3339 UTC, as stored).
    pub(crate) until: Option<String>,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct CheckpointRecord {
    /// The head seq it signs.
    pub(crate) seq: i64,
    /// The head hash (hex).
    pub(crate) hash: String,
    /// The signed note.
    pub(crate) note: String,
    /// When it was made (Unix seconds).
    pub(crate) created_at: i64,
}

impl TenantStore<'_> {
    /// Entries matching `filter`, by seq.
    pub(crate) async fn audit_entries(
        &self,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_entries WHERE org_id = $1 AND seq > $2 \
             AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR actor = $4) \
             AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at < $6) \
             ORDER BY seq LIMIT $7"
        );
        let rows: Vec<AuditRow> = on_pool!(self.store(), pool => sqlx::query_as(&sql)
            .bind(self.org_id())
            .bind(filter.after_seq)
            .bind(filter.action.as_deref())
            .bind(filter.actor.as_deref())
            .bind(filter.since.as_deref())
            .bind(filter.until.as_deref())
            .bind(filter.limit)
            .fetch_all(pool)
            .await?);
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }

    /// The last `limit` entries of the chain, newest first (the console's overview).
    pub(crate) async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_entries WHERE org_id = $1 \
             ORDER BY seq DESC LIMIT $2"
        );
        let rows: Vec<AuditRow> = on_pool!(self.store(), pool => sqlx::query_as(&sql)
            .bind(self.org_id())
            .bind(limit)
            .fetch_all(pool)
            .await?);
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }

    /// Up to `limit` entries after `after_seq`, by seq, unfiltered (verify, export).
    pub(crate) async fn audit_page(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.audit_entries(&AuditFilter {
            after_seq,
            limit,
            ..AuditFilter::default()
        })
        .await
    }

    /// Appends `events` in a transaction of their own.
    pub async fn append_audit(&self, events: &[Event], now: i64) -> Result<i64, StoreError> {
        let actor = self.actor();
        let org = self.org_id();
        Ok(in_tx!(self.store(), tx => tx.append_audit(org, &actor, events, now).await?))
    }

    /// Stores a signed checkpoint.
    pub(crate) async fn insert_checkpoint(
        &self,
        seq: i64,
        hash: &str,
        note: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        in_tx!(self.store(), tx => {
            sqlx::query("INSERT INTO audit_checkpoints (id, org_id, seq, hash, note, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(new_id()).bind(self.org_id()).bind(seq).bind(hash).bind(note).bind(now)
                .execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// The newest checkpoint.
    pub(crate) async fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>, StoreError> {
        Ok(on_pool!(self.store(), pool => sqlx::query_as(
            "SELECT seq, hash, note, created_at FROM audit_checkpoints WHERE org_id = $1 \
             ORDER BY seq DESC, created_at DESC LIMIT 1")
            .bind(self.org_id())
            .fetch_optional(pool)
            .await?))
    }
}

impl Store {
    /// Chains whose head moved past their newest checkpoint: `(org id, seq)`.
    pub(crate) async fn audit_heads_unsigned(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self.global(), pool => sqlx::query_as(
            "SELECT h.org_id, h.seq FROM audit_heads h WHERE h.seq > COALESCE(\
             (SELECT MAX(c.seq) FROM audit_checkpoints c WHERE c.org_id = h.org_id), 0) \
             ORDER BY h.org_id")
            .fetch_all(pool)
            .await?))
    }
}
