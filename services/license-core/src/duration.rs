//! Human durations for command lines and config files: `90s`, `15m`, `24h`, `7d`, `365d`.

use thiserror::Error;

/// A duration that could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "invalid duration {input:?}: expected a positive whole number followed by s, m, h or d (e.g. 24h, 365d)"
)]
pub struct DurationError {
    input: String,
}

/// Parses `NUMBER UNIT` (units `s`, `m`, `h`, `d`) into seconds. Zero and overflow are errors.
pub fn parse_duration(input: &str) -> Result<i64, DurationError> {
    let err = || DurationError {
        input: input.to_owned(),
    };
    let text = input.trim();
    let split = text.len().checked_sub(1).ok_or_else(err)?;
    if !text.is_char_boundary(split) {
        return Err(err());
    }
    let (number, unit) = text.split_at(split);
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(err()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let n: i64 = number.parse().map_err(|_| err())?;
    match n.checked_mul(unit_seconds) {
        Some(s) if s > 0 => Ok(s),
        _ => Err(err()),
    }
}

/// Formats seconds the way [`parse_duration`] reads them, in the largest exact unit.
pub fn format_duration(seconds: i64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds != 0 && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("365d"), Ok(365 * 86_400));
    }

    #[test]
    fn rejects_garbage_zero_and_overflow() {
        for bad in [
            "",
            "d",
            "10",
            "10w",
            "-5d",
            "0d",
            "1.5h",
            "99999999999999999d",
            "é",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn formats_in_largest_exact_unit() {
        assert_eq!(format_duration(86_400 * 365), "365d");
        assert_eq!(format_duration(28_800), "8h");
        assert_eq!(format_duration(61), "61s");
    }
}
