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
    // Years 1970–9999 are written directly (three per token response, on the hot path);
    // others go through chrono.
    if (0..253_402_300_800).contains(&at) {
        return format_utc(at);
    }
    match chrono::DateTime::from_timestamp(at, 0) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => at.to_string(),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for `0 <= at` before the year 10000.
fn format_utc(at: UnixTime) -> String {
    let (days, seconds) = (at / 86_400, at % 86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = *b"0000-00-00T00:00:00Z";
    let digits = [
        (0, year / 100),
        (2, year % 100),
        (5, month),
        (8, day),
        (11, seconds / 3_600),
        (14, seconds / 60 % 60),
        (17, seconds % 60),
    ];
    for (at, value) in digits {
        text[at] = b'0' + (value / 10) as u8;
        text[at + 1] = b'0' + (value % 10) as u8;
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// `YYYY-MM-DDTHH:MM:SSZ` (a real date, seconds 0–59) as Unix seconds; `None` for any
/// other text, which may still be RFC 3339 in another form (a leap second, an offset, a
/// fraction, a lower-case `t`/`z`).
fn parse_utc(text: &[u8]) -> Option<UnixTime> {
    let &[
        y1,
        y2,
        y3,
        y4,
        b'-',
        m1,
        m2,
        b'-',
        d1,
        d2,
        b'T',
        h1,
        h2,
        b':',
        n1,
        n2,
        b':',
        s1,
        s2,
        b'Z',
    ] = text
    else {
        return None;
    };
    let value = |digits: &[u8]| {
        digits.iter().try_fold(0_i64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    };
    let year = value(&[y1, y2, y3, y4])?;
    let month = value(&[m1, m2])?;
    let day = value(&[d1, d2])?;
    let (hour, minute, second) = (value(&[h1, h2])?, value(&[n1, n2])?, value(&[s1, s2])?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// [`civil_from_days`], by the same 400-year eras from 0000-03-01).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (`days >= 0`), by counting
/// 400-year eras from 0000-03-01 so that each leap day ends its year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses an RFC 3339 timestamp into Unix seconds (sub-second parts are truncated).
pub fn parse_rfc3339(text: &str) -> Option<UnixTime> {
    // The shape this service and its gateways write (`YYYY-MM-DDTHH:MM:SSZ`, two per usage
    // report on the token path) is read directly; every other form goes through chrono.
    if let Some(at) = parse_utc(text.as_bytes()) {
        return Some(at);
    }
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
    fn the_direct_rfc3339_parser_matches_chrono() {
        let chrono = |text: &str| {
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.timestamp())
        };
        // Every day of years around the edges (leap years, centuries, 1970, 9999) at a few
        // times of day, written as this service writes them.
        let mut at: UnixTime = -62_135_596_800; // 0001-01-01
        let mut checked = 0;
        while at < 253_402_300_800 {
            for seconds in [0, 59, 3_599, 86_399] {
                let text = chrono::DateTime::from_timestamp(at + seconds, 0)
                    .expect("in range")
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                assert_eq!(parse_utc(text.as_bytes()), Some(at + seconds), "{text}");
                checked += 1;
            }
            // Whole years near 1970, 2000 and 9999, else a stride that still lands on
            // every month and both kinds of leap year over the run.
            let near = |year_start: UnixTime| (at - year_start).abs() < 400 * 86_400;
            at += if near(0) || near(946_684_800) || near(253_370_764_800) {
                86_400
            } else {
                86_400 * 37
            };
        }
        assert!(checked > 10_000);
        for text in [
            "2024-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2000-02-29T12:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T23:60:00Z",
            "2026-06-30T23:59:60Z",
            "2026-01-01t00:00:00z",
            "2026-01-01T00:00:00+01:00",
            "2026-01-01T00:00:00.5Z",
            "2026-01-01 00:00:00Z",
            "+026-01-01T00:00:00Z",
            "2026-01-01T00:00:0xZ",
            "",
        ] {
            assert_eq!(parse_rfc3339(text), chrono(text), "{text}");
        }
    }

    #[test]
    fn the_direct_rfc3339_matches_chrono() {
        let chrono = |at: UnixTime| {
            chrono::DateTime::from_timestamp(at, 0)
                .expect("in range")
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let edges = [
            0,
            59,
            86_399,
            86_400,
            951_782_400,   // 2000-02-29
            1_709_164_800, // 2024-02-29
            4_107_456_000, // 2100-02-28 (not a leap year)
            253_402_300_799,
        ];
        for at in edges {
            assert_eq!(to_rfc3339(at), chrono(at), "{at}");
        }
        let mut at: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            at = at
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let t = (at % 253_402_300_800) as UnixTime;
            assert_eq!(to_rfc3339(t), chrono(t), "{t}");
        }
        assert_eq!(to_rfc3339(-1), "1969-12-31T23:59:59Z");
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
