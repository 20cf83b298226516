//! Time as the verifiers see it: Unix seconds from an injectable [`Clock`].
//!
//! Every check that depends on "now" takes the time from a `Clock`, so tests can move
//! it by days without sleeping and gateways can refuse a clock that moves backwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch (UTC). Signed so that arithmetic near 0 cannot wrap.
pub type UnixTime = i64;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time in Unix seconds.
    fn now(&self) -> UnixTime;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        chrono::Utc::now().timestamp()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: UnixTime) -> Self {
        Self {
            now: Arc::new(AtomicI64::new(start)),
        }
    }

    /// Moves the clock to `at` (backwards too, to test clock rollback).
    pub fn set(&self, at: UnixTime) {
        self.now.store(at, Ordering::SeqCst);
    }

    /// Moves the clock by `seconds` (negative moves it back).
    pub fn advance(&self, seconds: i64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        self.now.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> UnixTime {
        (**self).now()
    }
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-23T10:30:00Z`).
pub fn to_rfc3339(at: UnixTime) -> String {
    match chrono::DateTime::from_timestamp(at, 0) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => at.to_string(),
    }
}

/// Parses an RFC 3339 timestamp into Unix seconds (sub-second parts are truncated).
pub fn parse_rfc3339(text: &str) -> Option<UnixTime> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let clock = ManualClock::new(1_000);
        let other = clock.clone();
        clock.advance(7 * 86_400);
        assert_eq!(other.now(), 1_000 + 7 * 86_400);
        other.set(5);
        assert_eq!(clock.now(), 5);
    }

    #[test]
    fn rfc3339_round_trips() {
        let t = 1_795_000_000;
        assert_eq!(parse_rfc3339(&to_rfc3339(t)), Some(t));
        assert_eq!(
            parse_rfc3339("2026-11-23T10:30:00+01:00"),
            Some(1_795_426_200)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
