//! When to refresh: at `rfa` ± 10 % jitter after a success; after failures, exponential
//! backoff with full jitter from 30 s to 30 min, never sooner than the server's Retry-After
//! clamped to the same bounds. The first answer that carries a `Retry-After` after failures
//! that did not (the service is back and says when to return) starts the backoff again at
//! its first step ([`Backoff`]), so a fleet returning from an outage comes back when the
//! service asks rather than up to 30 minutes later. Time arithmetic saturates: no answer of
//! the server and no persisted time can overflow or wrap a due time.

use std::time::Duration;

use mcpg_license_core::UnixTime;

/// The first backoff step.
pub const BACKOFF_BASE: Duration = Duration::from_secs(30);
/// The longest backoff step.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30 * 60);
/// The longest server `Retry-After` honoured: the backoff's cap. A server (or any proxy
/// answering in its name) cannot suspend refreshing for longer, so a gateway in grace retries
/// at least every 30 minutes and recovers soon after the federation answers again.
pub const MAX_RETRY_AFTER: Duration = BACKOFF_CAP;
/// The shortest server `Retry-After` honoured as such: the backoff's base.
pub const MIN_RETRY_AFTER: Duration = BACKOFF_BASE;
/// The refresh jitter, as a fraction of the refresh interval.
pub const REFRESH_JITTER: f64 = 0.10;

/// When to refresh a token issued at `iat` that says "refresh after `rfa`" and expires at
/// `exp`: `rfa` moved by up to ±10 % of `rfa - iat`, kept within `(now, exp]`.
pub fn next_refresh(
    iat: UnixTime,
    rfa: Option<UnixTime>,
    exp: UnixTime,
    now: UnixTime,
    rng: &mut fastrand::Rng,
) -> UnixTime {
    // Tokens without rfa are refreshed a third of the way through their life.
    let rfa = rfa.unwrap_or_else(|| iat.saturating_add(exp.saturating_sub(iat).max(0) / 3));
    let interval = rfa.saturating_sub(iat).max(0) as f64;
    let jitter = (rng.f64() * 2.0 - 1.0) * REFRESH_JITTER * interval;
    // `as` from f64 saturates at the i64 bounds.
    let at = (rfa as f64 + jitter).round() as UnixTime;
    at.min(exp).max(now.saturating_add(1))
}

/// `now` plus `wait`, saturating (a wait longer than `i64::MAX` seconds is not a time in the
/// past).
pub fn after(now: UnixTime, wait: Duration) -> UnixTime {
    now.saturating_add(UnixTime::try_from(wait.as_secs()).unwrap_or(UnixTime::MAX))
}

/// The backoff's step: consecutive failures since the last success, except that an answer
/// with a `Retry-After` after failures without one starts again at the first step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    step: u32,
    told: bool,
}

impl Backoff {
    /// Counts one failure whose answer carried `retry_after`; returns the step to back off
    /// by (1 for the first).
    pub fn fail(&mut self, retry_after: Option<Duration>) -> u32 {
        let told = retry_after.is_some();
        self.step = match told && !self.told {
            true => 1,
            false => self.step.saturating_add(1),
        };
        self.told = told;
        self.step
    }

    /// After a success.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// When to retry at `now` after one more failure, the server having asked for
/// `retry_after`: `now` plus the [`backoff`] of the step `steps` counts, so within
/// `[now + 1 s, now + 30 min]` (`[now + 30 s, now + 30 min]` when the server sent a
/// `Retry-After`). Returns the time and the wait.
pub fn retry_at(
    now: UnixTime,
    steps: &mut Backoff,
    retry_after: Option<Duration>,
    rng: &mut fastrand::Rng,
) -> (UnixTime, Duration) {
    let wait = backoff(steps.fail(retry_after), retry_after, rng);
    (after(now, wait), wait)
}

/// The wait after `failures` consecutive failures (1 for the first): a uniformly random
/// delay in `[1 s, min(cap, base · 2^(failures-1))]`, at least `retry_after` clamped to
/// [`MIN_RETRY_AFTER`, `MAX_RETRY_AFTER`] (30 s to 30 min).
pub fn backoff(failures: u32, retry_after: Option<Duration>, rng: &mut fastrand::Rng) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << exponent)
        .min(BACKOFF_CAP)
        .as_secs();
    let delay = Duration::from_secs(rng.u64(1..=ceiling.max(1)));
    match retry_after {
        Some(server) => delay.max(server.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER)),
        None => delay,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::client::parse_retry_after;

    /// Any `Retry-After` header: numbers of every size (as sent, padded or not), and text.
    fn header() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            (0_u64..10_000).prop_map(|n| format!(" {n} ")),
            Just(u64::MAX.to_string()),
            Just(i64::MAX.to_string()),
            Just("18446744073709551616".to_owned()),
            Just("-1".to_owned()),
            "\\PC{0,24}",
        ]
    }

    proptest! {
        #[test]
        fn a_retry_is_always_due_within_the_documented_bounds(
            value in header(),
            failures in any::<u32>(),
            now in prop_oneof![0_i64..4_000_000_000, Just(i64::MAX - 1), Just(i64::MAX)],
            seed in any::<u64>(),
        ) {
            let mut rng = fastrand::Rng::with_seed(seed);
            let retry_after = parse_retry_after(&value);
            let mut steps = Backoff { step: failures, told: false };
            let (due, wait) = retry_at(now, &mut steps, retry_after, &mut rng);
            let longest = BACKOFF_CAP.as_secs() as i64;
            prop_assert_eq!(due, after(now, wait));
            prop_assert!(due >= now.saturating_add(1), "{} due at {}", now, due);
            prop_assert!(due <= now.saturating_add(longest), "{} due at {}", now, due);
            match retry_after {
                Some(server) => {
                    let honoured = server.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER).as_secs() as i64;
                    prop_assert!(due >= now.saturating_add(honoured));
                }
                None => prop_assert!(due <= now.saturating_add(BACKOFF_CAP.as_secs() as i64)),
            }
        }
    }

    #[test]
    fn the_first_retry_after_following_an_outage_restarts_the_backoff() {
        let mut steps = Backoff::default();
        // A day of outage: connection refused, no Retry-After.
        for expected in 1..=50 {
            assert_eq!(steps.fail(None), expected);
        }
        // The service answers 429 with a Retry-After: the first step again, so the wait is
        // the server's (a first step's jitter is at most 30 s, the floor of Retry-After).
        let server = Some(Duration::from_secs(95));
        assert_eq!(steps.fail(server), 1);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..100 {
            assert_eq!(backoff(1, server, &mut rng), Duration::from_secs(95));
        }
        // Refused again and again: the steps grow as before.
        assert_eq!(steps.fail(server), 2);
        assert_eq!(steps.fail(server), 3);
        // An outage again (no Retry-After) keeps counting; the next told answer restarts.
        assert_eq!(steps.fail(None), 4);
        assert_eq!(steps.fail(server), 1);
        steps.reset();
        assert_eq!(steps, Backoff::default());
        assert_eq!(steps.fail(server), 1);
    }

    #[test]
    fn refreshes_land_within_ten_percent_of_rfa() {
        let mut rng = fastrand::Rng::with_seed(7);
        let (iat, rfa, exp) = (1_000_000, 1_000_000 + 28_800, 1_000_000 + 86_400);
        for _ in 0..1_000 {
            let at = next_refresh(iat, Some(rfa), exp, iat, &mut rng);
            assert!((rfa - 2_880..=rfa + 2_880).contains(&at), "{at}");
        }
        assert_eq!(
            next_refresh(iat, Some(rfa), exp, exp + 10, &mut rng),
            exp + 11
        );
    }

    #[test]
    fn backoff_grows_to_the_cap_and_honours_retry_after() {
        let mut rng = fastrand::Rng::with_seed(7);
        for failures in 1..40 {
            let ceiling = (30u64 << (failures - 1).min(16)).min(1_800);
            for _ in 0..100 {
                let d = backoff(failures, None, &mut rng).as_secs();
                assert!((1..=ceiling).contains(&d), "{failures}: {d}");
            }
        }
        let server = Duration::from_secs(1_200);
        assert_eq!(backoff(1, Some(server), &mut rng), server);
        // Clamped to the backoff's bounds: 30 s to 30 min.
        assert_eq!(
            backoff(1, Some(Duration::from_secs(7_200)), &mut rng),
            BACKOFF_CAP
        );
        assert!(backoff(1, Some(Duration::from_secs(5)), &mut rng) >= BACKOFF_BASE);
    }
}
