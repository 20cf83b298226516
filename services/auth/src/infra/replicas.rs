//! Cluster membership for the cluster-wide rate limits: every replica upserts its row in
//! the `replicas` table each heartbeat (default every 2 s) and reads, on the same beat, how
//! many replicas beat within the last three beats. That count, at least 1 (itself), is
//! what the limiter divides an org's rate by ([`AliveCount`]). A row expires after three
//! missed beats; a graceful stop deletes it at once.
//!
//! When the database cannot be reached the last known count is kept (warned once until
//! the database answers again): a replica cut off from the database cannot tell whether
//! the others died, and keeping their share is the choice that does not raise the limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use mcpg_runtime::every::{FirstTick, every};
use tokio::task::JoinHandle;

use crate::infra::store::{ReplicaRow, Store};
use crate::infra::telemetry::REPLICAS_ALIVE;

/// How many beats a replica may miss before the others stop counting it.
pub(crate) const MISSED_BEATS: u32 = 3;

/// The number of replicas alive as last read, shared by the heartbeat (which writes it)
/// and the limiter (which divides by it). Never below 1.
#[derive(Debug)]
pub(crate) struct AliveCount(AtomicU32);

impl AliveCount {
    /// One replica: this one.
    pub(crate) fn new() -> Self {
        Self(AtomicU32::new(1))
    }

    /// The count, at least 1.
    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed).max(1)
    }

    /// Records a count read from the database (0 is taken as 1).
    pub(crate) fn set(&self, alive: u32) {
        self.0.store(alive.max(1), Ordering::Relaxed);
    }
}

impl Default for AliveCount {
    fn default() -> Self {
        Self::new()
    }
}

/// This process's membership: its row and its beat.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    row: ReplicaRow,
    interval: Duration,
    alive: Arc<AliveCount>,
    /// Whether the last beat failed (so the warning is logged once per outage).
    unreachable: AtomicBool,
}

impl Heartbeat {
    /// The membership of a process serving on `listen` and beating every `interval`
    /// (at least 10 ms), which publishes the count into `alive`.
    pub(crate) fn new(listen: SocketAddr, interval: Duration, alive: Arc<AliveCount>) -> Self {
        Self {
            row: ReplicaRow {
                id: uuid::Uuid::new_v4().simple().to_string(),
                host: host_name(),
                listen: listen.to_string(),
            },
            interval: interval.max(Duration::from_millis(10)),
            alive,
            unreachable: AtomicBool::new(false),
        }
    }

    /// The replicas alive as last read, at least 1.
    pub(crate) fn alive(&self) -> u32 {
        self.alive.get()
    }

    /// How recent a beat must be to count: three beats.
    fn window_ms(&self) -> i64 {
        let window = self.interval.saturating_mul(MISSED_BEATS);
        i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2)
    }

    /// Beats once: refreshes this replica's row and reads the count alive. On failure the
    /// last count stays.
    pub(crate) async fn beat(&self, store: &Store) {
        match store.replica_beat(&self.row, self.window_ms()).await {
            Ok(alive) => {
                if self.unreachable.swap(false, Ordering::Relaxed) {
                    tracing::info!(alive, "replica heartbeat recovered");
                }
                self.alive.set(alive);
            }
            Err(error) => {
                if !self.unreachable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %error,
                        alive = self.alive(),
                        "replica heartbeat failed: rate limits keep the last known replica count"
                    );
                }
            }
        }
        metrics::gauge!(REPLICAS_ALIVE).set(f64::from(self.alive()));
    }

    /// Deletes this replica's row (graceful stop), so the others re-divide at their next beat.
    pub(crate) async fn leave(&self, store: &Store) {
        if let Err(error) = store.replica_leave(&self.row.id).await {
            tracing::warn!(error = %error, "could not remove this replica's heartbeat row; it expires after {MISSED_BEATS} beats");
        }
    }
}

/// Beats every interval; the first beat is start-up's own (see `Application::run_until`).
pub(crate) fn spawn_heartbeat(heartbeat: Arc<Heartbeat>, store: Store) -> JoinHandle<()> {
    let period = heartbeat.interval;
    every(
        period,
        "replica-heartbeat",
        FirstTick::AfterPeriod,
        move || {
            let heartbeat = heartbeat.clone();
            let store = store.clone();
            async move { heartbeat.beat(&store).await }
        },
    )
}

/// The host's name, for operators reading the table (empty when it cannot be read).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_is_never_below_one() {
        let alive = AliveCount::new();
        assert_eq!(alive.get(), 1);
        alive.set(0);
        assert_eq!(alive.get(), 1);
        alive.set(3);
        assert_eq!(alive.get(), 3);
    }

    #[test]
    fn a_beat_counts_within_three_beats() {
        let beat = Heartbeat::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Duration::from_secs(2),
            Arc::new(AliveCount::new()),
        );
        assert_eq!(beat.window_ms(), 6_000);
    }
}
