//! A token's life drawn on one line for `mcpg-entitlements status`: issued (`iat`) →
//! refresh after (`rfa`) → expires (`exp`) → grace ends (`grc`), with a marker for now,
//! and the same instants as figures ("in 3h 12m", "2d ago").
//!
//! Pure functions of the instants and `now`: no clock, no terminal; the caller says whether
//! to colour (only when stdout is a terminal).

use mcpg_license_core::UnixTime;
use mcpg_license_core::clock::to_rfc3339;
use serde::Serialize;

use crate::entitlements::LicenseDetails;

/// Columns of the bar itself; with its frame and indent a line stays well within 80.
pub const BAR_WIDTH: usize = 60;

/// Where a token is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before refresh-after: nothing to do.
    Fresh,
    /// Past refresh-after, before expiry: the gateway should be refreshing.
    RefreshDue,
    /// Past expiry, before the grace bound: entitlements kept through an outage.
    Grace,
    /// Past the grace bound: Tier-0 until a refresh succeeds.
    Lapsed,
}

impl Phase {
    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Fresh => "fresh",
            Phase::RefreshDue => "refresh_due",
            Phase::Grace => "grace",
            Phase::Lapsed => "lapsed",
        }
    }
}

/// The instants of a token (or an offline license, which has no `rfa` or `grc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    /// Issued (`iat`).
    pub issued_at: UnixTime,
    /// Refresh after (`rfa`).
    pub refresh_after: Option<UnixTime>,
    /// Expires (`exp`).
    pub expires_at: UnixTime,
    /// Grace ends (`grc`).
    pub grace_ends: Option<UnixTime>,
}

/// A timeline as `status --json` and `/v1/status` show it: the instants (Unix seconds and
/// RFC 3339) and the phase at the snapshot's `now`.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineSnapshot {
    /// The phase now.
    pub phase: Phase,
    /// Issued, Unix seconds.
    pub issued_at: UnixTime,
    /// Issued, RFC 3339.
    pub issued_at_rfc3339: String,
    /// Refresh after, Unix seconds.
    pub refresh_after: Option<UnixTime>,
    /// Refresh after, RFC 3339.
    pub refresh_after_rfc3339: Option<String>,
    /// Expires, Unix seconds.
    pub expires_at: UnixTime,
    /// Expires, RFC 3339.
    pub expires_at_rfc3339: String,
    /// Grace ends, Unix seconds.
    pub grace_ends: Option<UnixTime>,
    /// Grace ends, RFC 3339.
    pub grace_ends_rfc3339: Option<String>,
}

impl Timeline {
    /// The instants of a token or license.
    pub fn of(details: &LicenseDetails) -> Self {
        Self {
            issued_at: details.issued_at,
            refresh_after: details.refresh_after,
            expires_at: details.expires_at,
            grace_ends: details.grace_until,
        }
    }

    /// The phase at `now`.
    pub fn phase(&self, now: UnixTime) -> Phase {
        if now >= self.grace_end() {
            Phase::Lapsed
        } else if now >= self.expires_at {
            Phase::Grace
        } else if self.refresh_after.is_some_and(|rfa| now >= rfa) {
            Phase::RefreshDue
        } else {
            Phase::Fresh
        }
    }

    /// The grace bound, or expiry when there is none.
    fn grace_end(&self) -> UnixTime {
        self.grace_ends
            .unwrap_or(self.expires_at)
            .max(self.expires_at)
    }

    /// For JSON.
    pub fn snapshot(&self, now: UnixTime) -> TimelineSnapshot {
        TimelineSnapshot {
            phase: self.phase(now),
            issued_at: self.issued_at,
            issued_at_rfc3339: to_rfc3339(self.issued_at),
            refresh_after: self.refresh_after,
            refresh_after_rfc3339: self.refresh_after.map(to_rfc3339),
            expires_at: self.expires_at,
            expires_at_rfc3339: to_rfc3339(self.expires_at),
            grace_ends: self.grace_ends,
            grace_ends_rfc3339: self.grace_ends.map(to_rfc3339),
        }
    }

    /// The column (0-based, below `width`) of `at` on a bar of `width` columns spanning
    /// from the earliest to the latest of the instants and `now`.
    pub fn column(&self, at: UnixTime, now: UnixTime, width: usize) -> usize {
        let start = self.issued_at.min(now);
        let end = self.grace_end().max(now);
        let last = width.saturating_sub(1);
        if end <= start {
            return 0;
        }
        let offset = (at.clamp(start, end) - start) as i128;
        let column = (offset * last as i128 + (end - start) as i128 / 2) / (end - start) as i128;
        column as usize
    }

    /// The bar: `I` issued, `R` refresh after, `E` expires, `G` grace ends, `@` now; `=`
    /// while fresh, `-` while a refresh is due, `~` in grace, and spaces past the grace
    /// bound. Exactly `width` characters (`@` wins a shared column).
    pub fn bar(&self, now: UnixTime, width: usize) -> String {
        let mut cells: Vec<char> = (0..width)
            .map(|c| {
                // The phase of the time at the middle of the column.
                let t = self.time_at(c, now, width);
                match self.phase(t) {
                    Phase::Fresh => '=',
                    Phase::RefreshDue => '-',
                    Phase::Grace => '~',
                    Phase::Lapsed => ' ',
                }
            })
            .collect();
        let mut mark = |at: UnixTime, symbol: char| {
            if let Some(cell) = cells.get_mut(self.column(at, now, width)) {
                *cell = symbol;
            }
        };
        mark(self.issued_at, 'I');
        if let Some(rfa) = self.refresh_after {
            mark(rfa, 'R');
        }
        mark(self.expires_at, 'E');
        if let Some(grc) = self.grace_ends.filter(|&g| g > self.expires_at) {
            mark(grc, 'G');
        }
        mark(now, '@');
        cells.into_iter().collect()
    }

    fn time_at(&self, column: usize, now: UnixTime, width: usize) -> UnixTime {
        let start = self.issued_at.min(now);
        let end = self.grace_end().max(now);
        let last = width.saturating_sub(1).max(1) as i128;
        start + ((end - start) as i128 * column as i128 / last) as UnixTime
    }

    /// The lines `status` prints for this timeline: the framed bar, a legend, and each
    /// instant as RFC 3339 and relative to `now`. `colour` highlights the now marker and the
    /// phase with ANSI codes (only for a terminal). Every line fits 80 columns.
    pub fn render(&self, now: UnixTime, colour: bool) -> Vec<String> {
        let phase = self.phase(now);
        let paint = |text: &str| match colour {
            true => format!("\x1b[1;{}m{text}\x1b[0m", phase_colour(phase)),
            false => text.to_owned(),
        };
        let bar = self.bar(now, BAR_WIDTH).replace('@', &paint("@"));
        let mut lines = vec![
            format!("  [{bar}]  {}", paint(phase.as_str())),
            "   I issued  R refresh after  E expires  G grace ends  @ now".to_owned(),
        ];
        let mut figure = |label: &str, at: UnixTime| {
            lines.push(format!(
                "   {label:<15}{}  ({})",
                to_rfc3339(at),
                relative(at, now)
            ));
        };
        figure("issued", self.issued_at);
        if let Some(rfa) = self.refresh_after {
            figure("refresh after", rfa);
        }
        figure("expires", self.expires_at);
        if let Some(grc) = self.grace_ends {
            figure("grace ends", grc);
        }
        lines
    }
}

/// ANSI colour number of a phase.
fn phase_colour(phase: Phase) -> u8 {
    match phase {
        Phase::Fresh => 32,
        Phase::RefreshDue => 33,
        Phase::Grace => 35,
        Phase::Lapsed => 31,
    }
}

/// `at` relative to `now` in words: `in 3h 12m`, `2d ago`, `now` (the two largest units).
pub fn relative(at: UnixTime, now: UnixTime) -> String {
    let seconds = at.abs_diff(now);
    if seconds == 0 {
        return "now".into();
    }
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut rest = seconds;
    let mut parts = Vec::new();
    for (size, name) in units {
        let count = rest / size;
        rest %= size;
        if count > 0 || !parts.is_empty() {
            parts.push((count, name));
        }
    }
    let text = parts
        .iter()
        .take(2)
        .filter(|(count, _)| *count > 0)
        .map(|(count, name)| format!("{count}{name}"))
        .collect::<Vec<_>>()
        .join(" ");
    match at > now {
        true => format!("in {text}"),
        false => format!("{text} ago"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: UnixTime = 3_600;
    const IAT: UnixTime = 1_800_000_000;

    /// A 24 h token refreshing after 16 h with 7 days of grace.
    fn token() -> Timeline {
        Timeline {
            issued_at: IAT,
            refresh_after: Some(IAT + 16 * HOUR),
            expires_at: IAT + 24 * HOUR,
            grace_ends: Some(IAT + 24 * HOUR + 7 * 24 * HOUR),
        }
    }

    fn position(bar: &str, symbol: char) -> Option<usize> {
        bar.chars().position(|c| c == symbol)
    }

    #[test]
    fn a_fresh_token_has_now_just_after_issue_and_every_marker_in_order() {
        let t = token();
        let now = IAT + HOUR;
        assert_eq!(t.phase(now), Phase::Fresh);
        let bar = t.bar(now, BAR_WIDTH);
        assert_eq!(bar.chars().count(), BAR_WIDTH);
        // 8 days over 59 columns: an hour is under half a column, so now rounds to column 0
        // and hides I; R at 16/192 of the way, E at 24/192, G at the end.
        assert_eq!(position(&bar, '@'), Some(0));
        assert_eq!(position(&bar, 'R'), Some(5));
        assert_eq!(position(&bar, 'E'), Some(7));
        assert_eq!(position(&bar, 'G'), Some(59));
        assert_eq!(bar.chars().nth(3), Some('='));
    }

    #[test]
    fn past_refresh_after_the_refresh_is_due_and_now_sits_between_r_and_e() {
        let t = token();
        let now = IAT + 20 * HOUR;
        assert_eq!(t.phase(now), Phase::RefreshDue);
        let bar = t.bar(now, BAR_WIDTH);
        assert_eq!(position(&bar, 'I'), Some(0));
        assert_eq!(position(&bar, 'R'), Some(5));
        assert_eq!(position(&bar, '@'), Some(6));
        assert_eq!(position(&bar, 'E'), Some(7));
    }

    #[test]
    fn in_grace_now_sits_between_e_and_g_on_the_grace_stretch() {
        let t = token();
        let now = IAT + 24 * HOUR + 84 * HOUR; // half way through grace
        assert_eq!(t.phase(now), Phase::Grace);
        let bar = t.bar(now, BAR_WIDTH);
        let at = position(&bar, '@').expect("now marker");
        assert_eq!(at, 33);
        assert_eq!(bar.chars().nth(at - 1), Some('~'));
        assert_eq!(bar.chars().nth(at + 1), Some('~'));
        assert_eq!(position(&bar, 'G'), Some(59));
    }

    #[test]
    fn lapsed_stretches_the_bar_to_now_at_the_right_end_past_g() {
        let t = token();
        let grace_end = IAT + 8 * 24 * HOUR;
        let now = grace_end + 8 * 24 * HOUR; // as long again
        assert_eq!(t.phase(now), Phase::Lapsed);
        assert_eq!(t.phase(grace_end), Phase::Lapsed);
        let bar = t.bar(now, BAR_WIDTH);
        assert_eq!(position(&bar, '@'), Some(59));
        assert_eq!(position(&bar, 'G'), Some(30));
        assert_eq!(bar.chars().nth(45), Some(' '));
    }

    #[test]
    fn the_phase_changes_exactly_at_each_instant() {
        let t = token();
        assert_eq!(t.phase(IAT + 16 * HOUR - 1), Phase::Fresh);
        assert_eq!(t.phase(IAT + 16 * HOUR), Phase::RefreshDue);
        assert_eq!(t.phase(IAT + 24 * HOUR), Phase::Grace);
        let offline = Timeline {
            refresh_after: None,
            grace_ends: None,
            ..t
        };
        assert_eq!(offline.phase(IAT + 20 * HOUR), Phase::Fresh);
        assert_eq!(offline.phase(IAT + 24 * HOUR), Phase::Lapsed);
    }

    #[test]
    fn rendered_lines_fit_80_columns_and_carry_no_escape_codes_without_colour() {
        let now = IAT + 20 * HOUR;
        let lines = token().render(now, false);
        assert!(lines.iter().all(|l| l.chars().count() <= 80), "{lines:#?}");
        assert!(lines.iter().all(|l| !l.contains('\x1b')));
        assert!(lines[0].ends_with("refresh_due"), "{}", lines[0]);
        assert!(
            lines.iter().any(|l| l.contains("refresh after")
                && l.contains("2027-01-16T00:00:00Z")
                && l.contains("(4h ago)")),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l.contains("(in 4h)")), "{lines:#?}");
        let coloured = token().render(now, true);
        assert!(
            coloured[0].contains("\x1b[1;33m@\x1b[0m"),
            "{}",
            coloured[0]
        );
    }

    #[test]
    fn relative_times_read_as_words_with_the_two_largest_units() {
        let now = IAT;
        assert_eq!(relative(now + 3 * HOUR + 12 * 60 + 5, now), "in 3h 12m");
        assert_eq!(relative(now - 2 * 24 * HOUR, now), "2d ago");
        assert_eq!(relative(now - 2 * 24 * HOUR - 5 * 60, now), "2d ago");
        assert_eq!(relative(now + 45, now), "in 45s");
        assert_eq!(relative(now, now), "now");
    }
}
