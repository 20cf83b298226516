//! A token bucket for log lines: at most `burst` lines at once and `per_second` a second
//! after that, counting what it turns away so a summary line can report it. A flood of
//! refused requests must not fill the disk with one line each.

use std::sync::Mutex;
use std::time::Instant;

/// What [`LogBudget::admit`] decided for one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Write the line; `suppressed` lines were turned away since the last report (report
    /// them first).
    Write {
        /// Lines suppressed since the last report.
        suppressed: u64,
    },
    /// Drop the line (it is counted).
    Suppress,
}

/// A token bucket of log lines with a count of the suppressed ones.
#[derive(Debug)]
pub(crate) struct LogBudget {
    burst: f64,
    per_second: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Option<Instant>,
    suppressed: u64,
}

impl LogBudget {
    /// A budget of `burst` lines at once, refilled at `per_second` lines a second.
    pub(crate) fn new(burst: u32, per_second: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            burst,
            per_second: f64::from(per_second),
            bucket: Mutex::new(Bucket {
                tokens: burst,
                refilled_at: None,
                suppressed: 0,
            }),
        }
    }

    /// Takes one line from the budget at `now`.
    pub(crate) fn admit(&self, now: Instant) -> Admission {
        let mut bucket = self.lock();
        if let Some(then) = bucket.refilled_at {
            let earned = now.saturating_duration_since(then).as_secs_f64() * self.per_second;
            bucket.tokens = (bucket.tokens + earned).min(self.burst);
        }
        bucket.refilled_at = Some(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Admission::Write {
                suppressed: std::mem::take(&mut bucket.suppressed),
            }
        } else {
            bucket.suppressed += 1;
            Admission::Suppress
        }
    }

    /// The lines suppressed since the last report, resetting the count (for the periodic
    /// summary).
    pub(crate) fn take_suppressed(&self) -> u64 {
        std::mem::take(&mut self.lock().suppressed)
    }

    /// The bucket; a panic elsewhere while it was held left nothing half-written (plain
    /// numbers), so a poisoned lock is taken over.
    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Admission, LogBudget};

    fn written(budget: &LogBudget, now: Instant, attempts: usize) -> usize {
        (0..attempts)
            .filter(|_| matches!(budget.admit(now), Admission::Write { .. }))
            .count()
    }

    #[test]
    fn a_flood_writes_the_burst_then_the_rate_and_counts_the_rest() {
        let budget = LogBudget::new(5, 2);
        let start = Instant::now();
        assert_eq!(written(&budget, start, 1000), 5);
        // The first line after the refill carried the 995 suppressed before it.
        assert_eq!(written(&budget, start + Duration::from_secs(1), 1000), 2);
        assert_eq!(budget.take_suppressed(), 998);
        assert_eq!(budget.take_suppressed(), 0);
    }

    #[test]
    fn the_next_written_line_reports_what_was_suppressed_before_it() {
        let budget = LogBudget::new(1, 1);
        let start = Instant::now();
        assert_eq!(budget.admit(start), Admission::Write { suppressed: 0 });
        assert_eq!(budget.admit(start), Admission::Suppress);
        assert_eq!(budget.admit(start), Admission::Suppress);
        assert_eq!(
            budget.admit(start + Duration::from_secs(1)),
            Admission::Write { suppressed: 2 }
        );
    }

    #[test]
    fn a_quiet_period_refills_no_more_than_the_burst() {
        let budget = LogBudget::new(3, 10);
        let start = Instant::now();
        assert_eq!(written(&budget, start, 3), 3);
        assert_eq!(written(&budget, start + Duration::from_secs(3600), 100), 3);
    }
}
