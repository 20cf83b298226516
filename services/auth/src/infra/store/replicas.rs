//! The `replicas` table: one row per running process on this database, refreshed every
//! heartbeat, so each replica can count the replicas alive and enforce its share of the
//! cluster-wide rate limits (see `infra::replicas`). Times are the database's clock in Unix
//! milliseconds, so hosts whose clocks disagree still agree on who is alive.

use super::{BackendKind, Store, StoreError, on_pool};

/// Rows whose replica has not beaten for this long are deleted (they stay visible to
/// operators for a while after a crash, then stop cluttering the table).
const FORGET_AFTER_MS: i64 = 3_600_000;

/// What one replica says about itself.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaRow {
    /// Random per process start.
    pub(crate) id: String,
    /// The host it runs on, for operators.
    pub(crate) host: String,
    /// Its bound API address, for operators.
    pub(crate) listen: String,
}

/// The database's current time in Unix milliseconds, as SQL of `kind`.
fn now_ms(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        BackendKind::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
    }
}

impl Store {
    /// Records a heartbeat of `replica` (inserting its row at its first beat) and returns
    /// how many replicas beat within the last `window_ms` milliseconds, itself included.
    pub(crate) async fn replica_beat(
        &self,
        replica: &ReplicaRow,
        window_ms: i64,
    ) -> Result<u32, StoreError> {
        let now = now_ms(self.kind());
        let upsert = format!(
            "INSERT INTO replicas (id, host, listen, started_at, beat_at) \
             VALUES ($1, $2, $3, {now}, {now}) \
             ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at"
        );
        on_pool!(self, pool => {
            sqlx::query(&upsert)
                .bind(&replica.id)
                .bind(&replica.host)
                .bind(&replica.listen)
                .execute(pool)
                .await?;
        });
        let count = format!("SELECT COUNT(*) FROM replicas WHERE beat_at > {now} - $1");
        let alive: i64 = on_pool!(self, pool => sqlx::query_scalar(&count)
            .bind(window_ms)
            .fetch_one(pool)
            .await?);
        let forget = format!("DELETE FROM replicas WHERE beat_at < {now} - $1");
        on_pool!(self, pool => {
            sqlx::query(&forget)
                .bind(FORGET_AFTER_MS.max(window_ms))
                .execute(pool)
                .await?;
        });
        Ok(u32::try_from(alive).unwrap_or(u32::MAX))
    }

    /// Deletes `id`'s row (a graceful stop), so the others stop counting it at their next
    /// beat instead of after it expires.
    pub(crate) async fn replica_leave(&self, id: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM replicas WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
