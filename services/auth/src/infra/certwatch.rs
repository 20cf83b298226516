//! The daily warning before the signing key's issuer certificate expires. A BYOC issuer's
//! certificate comes from the vendor's offline ceremony, so the operator needs weeks of
//! notice; the warning repeats once a day (by the service's clock) until a new key and
//! certificate are installed.

use std::sync::Mutex;

/// Warnings start this long before the certificate expires.
pub(crate) const WARN_BEFORE: i64 = 30 * 86_400;
/// The warning repeats at most this often.
pub(crate) const WARN_EVERY: i64 = 86_400;

/// Remembers when the last expiry warning was logged, and for which expiry.
#[derive(Debug, Default)]
pub(crate) struct ExpiryWatch {
    last: Mutex<Option<(i64, i64)>>,
}

impl ExpiryWatch {
    /// Whether a warning is due at `now` for a certificate expiring at `exp`; when it is,
    /// records it and returns the whole days left. A new certificate (another `exp`) is
    /// warned about afresh.
    pub(crate) fn due(&self, now: i64, exp: i64) -> Option<i64> {
        if exp - now > WARN_BEFORE {
            return None;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((warned_at, warned_exp)) = *last
            && warned_exp == exp
            && now - warned_at < WARN_EVERY
        {
            return None;
        }
        *last = Some((now, exp));
        Some((exp - now).max(0) / 86_400)
    }
}

#[cfg(test)]
mod tests {
    use mcpg_license_core::{Clock, ManualClock};

    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn the_warning_starts_thirty_days_ahead_and_repeats_daily() {
        let clock = ManualClock::new(1_800_000_000);
        let exp = clock.now() + 40 * DAY;
        let watch = ExpiryWatch::default();
        assert_eq!(watch.due(clock.now(), exp), None, "40 days left: quiet");
        clock.set(exp - 30 * DAY);
        assert_eq!(watch.due(clock.now(), exp), Some(30));
        clock.set(exp - 30 * DAY + 3_600);
        assert_eq!(watch.due(clock.now(), exp), None, "once a day");
        clock.set(exp - 29 * DAY);
        assert_eq!(watch.due(clock.now(), exp), Some(29));
        clock.set(exp - 29 * DAY + 10);
        let renewed = exp + 90 * DAY;
        assert_eq!(watch.due(clock.now(), renewed), None, "a new certificate");
        clock.set(exp + DAY);
        assert_eq!(
            watch.due(clock.now(), exp),
            Some(0),
            "expired: still warned"
        );
    }
}
