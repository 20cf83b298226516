//! Reading an org's audit chain (list with filters, pages for verify and export), its
//! checkpoints, and the appends that are not part of another change (issuance batches,
//! the service-wide system chain).

use mcpg_license_core::audit::{AuditRecord, SYSTEM_CHAIN};
use sqlx::FromRow;

use super::audit::{AUDIT_COLUMNS, Actor, AuditRow, AuditTx, Event};
use super::scope::Scoped;
use super::{Store, StoreError, TenantStore, in_tx, on_pool};
use crate::domain::new_id;

/// Filters of the audit list; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries after this seq (the cursor).
    pub after_seq: i64,
    /// At most this many.
    pub limit: i64,
    /// Only this action.
    pub action: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only at or after this time (RFC 3339 UTC, as stored).
    pub since: Option<String>,
    /// Only before this time (RFC 3339 UTC, as stored).
    pub until: Option<String>,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, FromRow)]
pub struct CheckpointRecord {
    /// The head seq it signs.
    pub seq: i64,
    /// The head hash (hex).
    pub hash: String,
    /// The signed note.
    pub note: String,
    /// When it was made (Unix seconds).
    pub created_at: i64,
}

impl TenantStore<'_> {
    /// Entries matching `filter`, by seq.
    pub async fn audit_entries(
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

    /// Up to `limit` entries after `after_seq`, by seq, unfiltered (verify, export).
    pub async fn audit_page(
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
        Ok(
            in_tx!(self.store(), tx => AuditTx::append_audit(&mut *tx, org, &actor, events, now).await?),
        )
    }

    /// The chain's head `(seq, hash)`, if it has entries.
    pub async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        Ok(on_pool!(self.store(), pool => sqlx::query_as(
            "SELECT seq, hash FROM audit_heads WHERE org_id = $1 AND seq > 0")
            .bind(self.org_id())
            .fetch_optional(pool)
            .await?))
    }

    /// Stores a signed checkpoint.
    pub async fn insert_checkpoint(
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
    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>, StoreError> {
        Ok(on_pool!(self.store(), pool => sqlx::query_as(
            "SELECT seq, hash, note, created_at FROM audit_checkpoints WHERE org_id = $1 \
             ORDER BY seq DESC, created_at DESC LIMIT 1")
            .bind(self.org_id())
            .fetch_optional(pool)
            .await?))
    }
}

impl Store {
    /// Appends service-wide events to the system chain.
    pub async fn append_system(
        &self,
        actor: &Actor,
        events: &[Event],
        now: i64,
    ) -> Result<i64, StoreError> {
        let scoped = Scoped::org(self, SYSTEM_CHAIN);
        Ok(in_tx!(scoped, tx =>
            AuditTx::append_audit(&mut *tx, SYSTEM_CHAIN, actor, events, now).await?))
    }

    /// Chains whose head moved past their newest checkpoint: `(org id, seq)`.
    pub async fn audit_heads_unsigned(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self.global(), pool => sqlx::query_as(
            "SELECT h.org_id, h.seq FROM audit_heads h WHERE h.seq > COALESCE(\
             (SELECT MAX(c.seq) FROM audit_checkpoints c WHERE c.org_id = h.org_id), 0) \
             ORDER BY h.org_id")
            .fetch_all(pool)
            .await?))
    }
}
