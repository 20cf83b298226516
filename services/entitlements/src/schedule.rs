//! When to refresh: at `rfa` ± 10 % jitter after a success; after failures, exponential
//! backoff with full jitter from 30 s to 30 min, never sooner than the server's Retry-After.

use std::time::Duration;

use mcpg_license_core::UnixTime;

/// The first backoff step.
pub const BACKOFF_BASE: Duration = Duration::from_secs(30);
/// The longest backoff step.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30 * 60);
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
    let rfa = rfa.unwrap_or(iat + (exp - iat) / 3);
    let interval = (rfa - iat).max(0) as f64;
    let jitter = (rng.f64() * 2.0 - 1.0) * REFRESH_JITTER * interval;
    let at = (rfa as f64 + jitter).round() as UnixTime;
    at.min(exp).max(now + 1)
}

/// The wait after `failures` consecutive failures (1 for the first): a uniformly random
/// delay in `[1 s, min(cap, base · 2^(failures-1))]`, at least `retry_after`.
pub fn backoff(failures: u32, retry_after: Option<Duration>, rng: &mut fastrand::Rng) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << exponent)
        .min(BACKOFF_CAP)
        .as_secs();
    let delay = Duration::from_secs(rng.u64(1..=ceiling.max(1)));
    match retry_after {
        Some(server) => delay.max(server),
        None => delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let server = Duration::from_secs(7_200);
        assert_eq!(backoff(1, Some(server), &mut rng), server);
    }
}
