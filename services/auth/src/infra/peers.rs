//! Changes made by the other replicas, heard through PostgreSQL's LISTEN/NOTIFY.
//!
//! Every write transaction on PostgreSQL queues a notification per change it records
//! (`store::WriteTx::notify_peers`); PostgreSQL delivers them to every listening session
//! when, and only if, the transaction commits. Each replica keeps one session listening on
//! [`CHANNEL`] and publishes what the others announce through the store's own change
//! events, so a suspension, revocation, license or key change made on one replica reaches
//! the caches of all of them within the notification's round trip.
//!
//! While the listening session is down, nothing is heard: the replica falls back on its
//! caches' time-to-live (the grant cache's `--grant-cache-ttl`, the key reload interval),
//! says so in `/readyz` and in [`CHANGE_LISTENER_UP`], and reconnects with a capped
//! exponential backoff. Once listening again it drops every cache ([`Change::All`]), since
//! what was announced in between is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::task::JoinHandle;

use crate::infra::store::{CHANNEL, Change, Store};
use crate::infra::telemetry::{CHANGE_LISTENER_UP, PEER_CHANGES};

/// The first wait before reconnecting; doubled after each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts to listen again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A session must stay up this long before the backoff starts over: one that the network
/// or a pooler cuts right after it connects must not reconnect (and drop every cache) ten
/// times a second.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How often an idle listening session is checked with a query: a connection a NAT or a
/// failover dropped without a reset would otherwise look alive forever.
const PING_EVERY: Duration = Duration::from_secs(30);
/// How long that check may take before the session is given up.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for the listening session to close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How the listening session names itself in `pg_stat_activity`.
pub(crate) const APPLICATION_NAME: &str = "mcpg-auth change listener";

/// Where this replica's listener stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenerState {
    /// SQLite: one process, nobody else to hear from.
    NotApplicable,
    /// Connecting for the first time.
    Starting,
    /// Listening: other replicas' changes arrive within the notification's round trip.
    Listening,
    /// Cannot listen: other replicas' changes arrive when caches expire.
    Down,
}

impl ListenerState {
    /// The word `/readyz` shows.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::NotApplicable => "not_applicable",
            Self::Starting => "starting",
            Self::Listening => "listening",
            Self::Down => "down",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Starting,
            2 => Self::Listening,
            3 => Self::Down,
            _ => Self::NotApplicable,
        }
    }
}

/// The listener's state, shared with `/readyz`.
#[derive(Debug)]
pub(crate) struct PeerStatus(AtomicU8);

impl PeerStatus {
    /// The initial state for a store: [`ListenerState::NotApplicable`] on SQLite.
    pub(crate) fn for_store(store: &Store) -> Self {
        let state = match store.postgres_pool() {
            Some(_) => ListenerState::Starting,
            None => ListenerState::NotApplicable,
        };
        Self(AtomicU8::new(state as u8))
    }

    /// A status in `state` (tests).
    #[cfg(test)]
    pub(crate) fn with_state(state: ListenerState) -> Self {
        Self(AtomicU8::new(state as u8))
    }

    /// Sets the state (tests).
    #[cfg(test)]
    pub(crate) fn set_for_test(&self, state: ListenerState) {
        self.0.store(state as u8, Ordering::Release);
    }

    /// The current state.
    pub(crate) fn get(&self) -> ListenerState {
        // Acquire/Release: whoever sees "listening" also sees the marks made before it.
        ListenerState::from_u8(self.0.load(Ordering::Acquire))
    }

    fn set(&self, state: ListenerState) {
        self.0.store(state as u8, Ordering::Release);
        let up = if state == ListenerState::Listening {
            1.0
        } else {
            0.0
        };
        metrics::gauge!(CHANGE_LISTENER_UP).set(up);
    }
}

/// The running listener.
#[derive(Debug)]
pub(crate) struct PeerListener {
    task: JoinHandle<()>,
    pool: PgPool,
}

impl PeerListener {
    /// Starts listening for the other replicas' changes; `None` on SQLite.
    pub(crate) fn spawn(store: Store, status: Arc<PeerStatus>) -> Option<Self> {
        let pool = listener_pool(store.postgres_pool()?);
        let task = tokio::spawn(listen_forever(store, pool.clone(), status));
        Some(Self { task, pool })
    }

    /// Stops listening and closes the listening session (giving up after a moment when
    /// the database does not answer: shutdown must go on to flush its buffers).
    pub(crate) async fn stop(self) {
        self.task.abort();
        // Cancelled: the listener, and with it the session, is dropped back to the pool.
        let _ = self.task.await;
        if tokio::time::timeout(CLOSE_TIMEOUT, self.pool.close())
            .await
            .is_err()
        {
            tracing::debug!("the change listener's session did not close in time");
        }
    }
}

/// A small pool for the listener's session, named for `pg_stat_activity`, so that it never
/// takes a connection from the request path.
fn listener_pool(pool: &PgPool) -> PgPool {
    let options = pool
        .connect_options()
        .as_ref()
        .clone()
        .application_name(APPLICATION_NAME);
    // Two: dropping a listener sends UNLISTEN on its session in the background, which must
    // not hold the only slot the next attempt needs.
    PgPoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options)
}

async fn listen_forever(store: Store, pool: PgPool, status: Arc<PeerStatus>) {
    let mut backoff = MIN_BACKOFF;
    let mut was_down = false;
    loop {
        match subscribe(&pool).await {
            Ok(mut listener) => {
                // Whatever was announced while this replica was not listening is lost: every
                // cache starts over. Announced before the state says "listening", so that
                // nothing trusts a cache (the credential directory) as current in between;
                // changes from now on are already buffered on the session.
                store.changes().publish(&[Change::All]);
                status.set(ListenerState::Listening);
                if was_down {
                    tracing::info!("listening for other replicas' changes again");
                }
                let since = tokio::time::Instant::now();
                let reason = receive(&store, &mut listener).await;
                tracing::warn!(
                    reason = %reason,
                    "stopped hearing other replicas' changes; relying on cache expiry until listening again"
                );
                if since.elapsed() >= STABLE_AFTER {
                    backoff = MIN_BACKOFF;
                }
            }
            Err(error) if !was_down => tracing::warn!(
                error = %error,
                "cannot listen for other replicas' changes; relying on cache expiry until it can"
            ),
            Err(error) => tracing::debug!(error = %error, "still cannot listen"),
        }
        // From now on other replicas' changes go unheard: the credential directory stops
        // answering (it reads this state), and is loaded in full once listening again.
        status.set(ListenerState::Down);
        was_down = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost session is reported (`Ok(None)`), not silently replaced: this module
    // reconnects itself, so that it knows when notifications may have been missed.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Applies notifications until the session is lost; returns why it ended. An idle session
/// is checked every [`PING_EVERY`] (notifications arriving meanwhile are buffered).
async fn receive(store: &Store, listener: &mut PgListener) -> String {
    let own = store.changes().sender().to_owned();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        let received = tokio::select! {
            received = listener.try_recv() => received,
            _ = ping.tick() => {
                let check = sqlx::query("SELECT 1").execute(&mut *listener);
                match tokio::time::timeout(PING_TIMEOUT, check).await {
                    Ok(Ok(_)) => continue,
                    Ok(Err(error)) => return format!("the session failed a check: {error}"),
                    Err(_) => return "the session did not answer a check in time".to_owned(),
                }
            }
        };
        match received {
            Ok(Some(notification)) => {
                let payload = notification.payload();
                let change = match Change::from_payload(payload) {
                    Some((sender, _)) if sender == own => continue,
                    Some((_, change)) => change,
                    // A newer replica's announcement: assume the worst.
                    None => {
                        tracing::debug!(
                            payload,
                            "unknown change announcement; dropping every cache"
                        );
                        Change::All
                    }
                };
                metrics::counter!(PEER_CHANGES).increment(1);
                store.changes().publish(&[change]);
            }
            Ok(None) => return "the database closed the listening session".to_owned(),
            Err(error) => return error.to_string(),
        }
    }
}
