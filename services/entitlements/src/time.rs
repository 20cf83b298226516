//! "Now" as the gateway sees it: the clock, never earlier than the highest time ever seen.
//!
//! A clock set back (by an operator, or by a site that wants its grace period back) must
//! never revive a lapsed token or an expired license, so every reading is
//! `max(clock, max_seen)` and `max_seen` is persisted across restarts.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use mcpg_license_core::{Clock, UnixTime};

/// A monotonic view of a [`Clock`].
pub struct TimeGuard {
    clock: Arc<dyn Clock>,
    max_seen: AtomicI64,
}

impl std::fmt::Debug for TimeGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeGuard")
            .field("max_seen", &self.max_seen())
            .finish_non_exhaustive()
    }
}

impl TimeGuard {
    /// A guard over `clock` that never reads earlier than `floor`.
    pub fn new(clock: Arc<dyn Clock>, floor: UnixTime) -> Self {
        Self {
            clock,
            max_seen: AtomicI64::new(floor),
        }
    }

    /// `max(clock, highest time seen)`, remembering the clock when it is ahead. Lock-free and
    /// allocation-free: it runs on every `check()`.
    #[inline]
    pub fn now(&self) -> UnixTime {
        let clock = self.clock.now();
        let seen = self.max_seen.load(Ordering::Relaxed);
        if clock > seen {
            // Only written when the clock moved on (at most once a second on a real clock),
            // so concurrent checks do not fight over the cache line.
            self.max_seen.fetch_max(clock, Ordering::Relaxed);
            clock
        } else {
            seen
        }
    }

    /// The highest time seen so far.
    pub fn max_seen(&self) -> UnixTime {
        self.max_seen.load(Ordering::Relaxed)
    }

    /// Raises the floor (from persisted state, or a verified token's issue time).
    pub fn observe(&self, at: UnixTime) {
        self.max_seen.fetch_max(at, Ordering::Relaxed);
    }

    /// Whether the clock reads earlier than the highest time seen (it was set back).
    pub fn clock_is_behind(&self) -> bool {
        self.clock.now() < self.max_seen()
    }
}

/// A clock read from an atomic that a background thread sets from another clock every
/// `every` (100 ms by default). Reading it costs a load instead of a system call, which
/// halves the cost of `check()`; decisions need whole seconds, so nothing is lost.
#[derive(Debug)]
pub struct CoarseClock {
    now: AtomicI64,
}

impl CoarseClock {
    /// How often the default coarse clock is updated.
    pub const DEFAULT_EVERY: Duration = Duration::from_millis(100);

    /// Starts a coarse view of `source`. The updating thread ends when the clock is dropped.
    /// When no thread can be started, `source` itself is returned.
    pub fn start(source: Arc<dyn Clock>, every: Duration) -> Arc<dyn Clock> {
        let clock = Arc::new(CoarseClock {
            now: AtomicI64::new(source.now()),
        });
        let weak = Arc::downgrade(&clock);
        let ticker = source.clone();
        let spawned = std::thread::Builder::new()
            .name("mcpg-coarse-clock".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    match weak.upgrade() {
                        Some(clock) => clock.now.store(ticker.now(), Ordering::Relaxed),
                        None => break,
                    }
                }
            });
        match spawned {
            Ok(_) => clock,
            Err(e) => {
                tracing::warn!(error = %e, "no coarse clock thread; reading the system clock on every check");
                source
            }
        }
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> UnixTime {
        self.now.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpg_license_core::ManualClock;

    #[test]
    fn a_clock_set_back_does_not_move_now_back() {
        let clock = ManualClock::new(1_000);
        let guard = TimeGuard::new(Arc::new(clock.clone()), 0);
        assert_eq!(guard.now(), 1_000);
        clock.set(500);
        assert_eq!(guard.now(), 1_000);
        assert!(guard.clock_is_behind());
        clock.set(2_000);
        assert_eq!(guard.now(), 2_000);
        guard.observe(5_000);
        assert_eq!(guard.now(), 5_000);
    }

    #[test]
    fn the_coarse_clock_follows_its_source() {
        let source = ManualClock::new(1_000);
        let coarse = CoarseClock::start(Arc::new(source.clone()), Duration::from_millis(5));
        assert_eq!(coarse.now(), 1_000);
        source.set(2_000);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while coarse.now() != 2_000 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(coarse.now(), 2_000);
    }
}
