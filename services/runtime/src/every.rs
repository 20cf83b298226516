//! Background work on a fixed period: key reloads, cache pruning, flushes, file polling.
//!
//! Every such loop wants the same things, easy to get subtly wrong by hand: runs never
//! overlap; a late run is followed by a full period of rest rather than a burst that
//! catches up (`MissedTickBehavior::Delay`; tokio's default is `Burst`); a zero period
//! does not panic; and the events a run logs say which loop they come from.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

/// The shortest period [`every`] runs at: tokio panics on a zero period.
pub const MIN_PERIOD: Duration = Duration::from_millis(1);

/// When the first run of a periodic task happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstTick {
    /// At once, then every period.
    Now,
    /// One period from now: for work that start-up has just done itself.
    AfterPeriod,
}

/// Spawns a task that runs `tick` every `period` (first as `first` says) until the returned
/// handle is aborted or the runtime shuts down. A run that takes longer than the period
/// delays the next one: runs never overlap and never bunch up. Each run is inside a
/// `tracing` span `every{task = name}`. A period under [`MIN_PERIOD`] is raised to it;
/// callers with a floor of their own (say, a configured reload interval of at least a
/// second) apply it before.
///
/// Must be called within a tokio runtime.
pub fn every<F, Fut>(
    period: Duration,
    name: &'static str,
    first: FirstTick,
    mut tick: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    every_with(period, name, first, (), move |()| tick())
}

/// [`every`] for a loop that carries state from one run to the next (what it applied last,
/// what failed and when): each run takes the state and returns it for the next run.
pub fn every_with<S, F, Fut>(
    period: Duration,
    name: &'static str,
    first: FirstTick,
    state: S,
    mut tick: F,
) -> JoinHandle<()>
where
    S: Send + 'static,
    F: FnMut(S) -> Fut + Send + 'static,
    Fut: Future<Output = S> + Send + 'static,
{
    let period = period.max(MIN_PERIOD);
    tokio::spawn(async move {
        let start = match first {
            FirstTick::Now => Instant::now(),
            FirstTick::AfterPeriod => Instant::now() + period,
        };
        let mut ticker = tokio::time::interval_at(start, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut state = state;
        loop {
            ticker.tick().await;
            state = tick(state)
                .instrument(tracing::info_span!("every", task = name))
                .await;
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Lets the spawned task run everything that is ready at the current (paused) time.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn counter() -> (
        Arc<AtomicU32>,
        impl FnMut() -> std::future::Ready<()> + Send + 'static,
    ) {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let tick = move || {
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::ready(())
        };
        (runs, tick)
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_once_then_every_period() {
        let (runs, tick) = counter();
        let task = every(Duration::from_secs(60), "test", FirstTick::Now, tick);
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the first run is at once");
        tokio::time::advance(Duration::from_secs(59)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "not before a period");
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(60 * 10)).await;
        settle().await;
        // Ten periods went by in one jump: `Delay` runs once for them, not ten times.
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn after_period_waits_one_period_first() {
        let (runs, tick) = counter();
        let task = every(
            Duration::from_secs(30),
            "test",
            FirstTick::AfterPeriod,
            tick,
        );
        settle().await;
        tokio::time::advance(Duration::from_secs(29)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 0, "no run at start");
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_run_delays_the_next_instead_of_overlapping_it() {
        let started = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = started.clone();
        let task = every(Duration::from_secs(10), "test", FirstTick::Now, move || {
            let seen = seen.clone();
            async move {
                seen.lock().expect("not poisoned").push(Instant::now());
                // Runs for 25 s, two and a half periods.
                tokio::time::sleep(Duration::from_secs(25)).await;
            }
        });
        let origin = Instant::now();
        tokio::time::sleep(Duration::from_secs(90)).await;
        task.abort();
        let offsets: Vec<u64> = started
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|t| t.duration_since(origin).as_secs())
            .collect();
        // Each run starts when the previous one ended (0, 25, 50, 75): no overlap, no burst.
        assert_eq!(offsets, vec![0, 25, 50, 75]);
    }

    #[tokio::test(start_paused = true)]
    async fn state_passes_from_one_run_to_the_next() {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let task = every_with(
            Duration::from_secs(1),
            "test",
            FirstTick::Now,
            0u32,
            move |n| {
                let sender = sender.clone();
                async move {
                    let _ = sender.send(n);
                    n + 1
                }
            },
        );
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(receiver.recv().await.expect("a run"));
        }
        task.abort();
        assert_eq!(got, vec![0, 1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_period_does_not_panic() {
        let (runs, tick) = counter();
        let task = every(Duration::ZERO, "test", FirstTick::Now, tick);
        tokio::time::sleep(Duration::from_millis(5)).await;
        settle().await;
        assert!(!task.is_finished(), "the task is alive");
        assert!(
            runs.load(Ordering::SeqCst) >= 5,
            "it runs every millisecond"
        );
        task.abort();
    }
}
