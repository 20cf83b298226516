//! Per-org request rate limits: one governor keyed limiter per distinct rate, keyed by
//! budget (an org's tokens, an org's management requests, one principal inside an org,
//! or, on cross-tenant admin routes, the global admin's token).
//!
//! - An org's rate is its license's `rps` limit, else `--org-rps`. The org has two budgets
//!   of that rate: one for its gateways' token requests (checked by the issuer once the
//!   credential is known, [`Limiter::check_org`]) and one for its management API
//!   requests (middleware, after tenant resolution and authentication, so an anonymous
//!   flood cannot spend an org's budget, [`Limiter::check_management`]). Operators
//!   reading dashboards never make gateways miss their refresh.
//! - Inside the management budget each principal (a user — all its personal tokens — an
//!   API key, an OIDC subject) has a sub-limit of `--principal-rps-percent` of the rate
//!   (default 50 %, at least 1/s): a request is checked against the principal's bucket
//!   first and is charged to the org's only if the principal's allows it, so one
//!   principal hammering the API spends at most its share and the others of the org still
//!   get through.
//! - Cross-tenant admin routes (`/v1/admin/…`, `GET`/`POST /v1/orgs`) get the stricter
//!   `--admin-rps` per global admin token.
//! - Every limited response carries `RateLimit-Limit`, `RateLimit-Remaining` and
//!   `RateLimit-Reset`; a refusal is 429 `rate_limited` with `Retry-After`.
//! - A refused token request is given its own time to come back: the org's refused
//!   requests queue at its rate behind [`RETRY_FLOOR`] (the shortest `Retry-After` a
//!   gateway honours), and each `Retry-After` says when its place in that queue comes up
//!   ([`Limiter::check_org`]). A fleet refused at once (a refresh storm after an outage)
//!   comes back spread over exactly the time the org's rate needs for it, instead of all at
//!   once after the same second — when it would find a burst's worth of room again — or, at
//!   the gateways' own backoff, spread over up to 30 minutes.
//! - Every rate is cluster-wide: with `n` replicas alive (the heartbeat's count, see
//!   `infra::replicas`) each replica enforces its share `ceil(rate / n)` (at least 1/s),
//!   burst likewise, and reports that share as `RateLimit-Limit`. The count is read on
//!   every check, so a change applies at once: the limiters are keyed by the per-replica
//!   rate, a new share uses (or creates) the limiter of that rate with full buckets, and
//!   the old limiter empties and is dropped by the pruner.
//! - Keys idle long enough to be back at a full bucket are pruned every minute
//!   (`retain_recent`), so memory follows active orgs, not every org ever seen; a limiter
//!   left without keys (a rate no longer in use) is dropped too.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use mcpg_runtime::every::{FirstTick, every};
use tokio::task::JoinHandle;

use crate::domain::settings::RateLimitSettings;
use crate::infra::replicas::AliveCount;
use crate::infra::store::{Store, StoreError};

type Keyed = DefaultKeyedRateLimiter<String, StateInformationMiddleware>;

/// How often idle keys are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// How long an org's licensed rate is cached.
const RATE_CACHE_TTL: Duration = Duration::from_secs(5);
/// The earliest a refused token request is told to come back: the shortest `Retry-After`
/// `mcpg-entitlements` honours (a shorter one is waited as this long anyway).
pub(crate) const RETRY_FLOOR: Duration = Duration::from_secs(30);
/// The latest: the longest `Retry-After` a gateway honours. A queue longer than this
/// (more refused requests than the rate serves in 30 minutes) sends its overflow back at
/// the ceiling, to queue again.
pub(crate) const RETRY_CEILING: Duration = Duration::from_secs(30 * 60);

/// The outcome of one check, as the response headers tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Requests per second (also the burst) this replica allows: its share of the rate.
    pub(crate) limit: u32,
    /// Requests left in the current burst.
    pub(crate) remaining: u32,
    /// Seconds until the burst is full again.
    pub(crate) reset: u64,
    /// Seconds to wait when the request was refused; `None` when it was allowed.
    pub(crate) retry_after: Option<u64>,
}

impl Decision {
    /// Whether the request may proceed.
    pub(crate) fn allowed(&self) -> bool {
        self.retry_after.is_none()
    }
}

/// The limiters of one process.
#[derive(Debug)]
pub(crate) struct Limiter {
    settings: RateLimitSettings,
    by_rate: RwLock<HashMap<NonZeroU32, Arc<Keyed>>>,
    org_rates: moka::future::Cache<String, Option<u64>>,
    clock: DefaultClock,
    alive: Arc<AliveCount>,
    /// Per org: when the last refused token request was told to come back.
    retry_tails: Mutex<HashMap<String, Instant>>,
}

/// One replica's share of a cluster-wide `rate` when `alive` replicas share it:
/// `ceil(rate / alive)`, at least 1 (an `alive` of 0 counts as 1). Rounding up keeps a
/// small rate usable on many replicas; it adds at most `alive - 1` per second cluster-wide.
fn share(rate: NonZeroU32, alive: u32) -> NonZeroU32 {
    let part = rate.get().div_ceil(alive.max(1));
    NonZeroU32::new(part).unwrap_or(NonZeroU32::MIN)
}

impl Limiter {
    /// Limiters with these settings, dividing every rate by the replicas `alive`.
    pub(crate) fn new(settings: RateLimitSettings, alive: Arc<AliveCount>) -> Self {
        Self {
            settings,
            by_rate: RwLock::new(HashMap::new()),
            org_rates: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(RATE_CACHE_TTL)
                .build(),
            clock: DefaultClock::default(),
            alive,
            retry_tails: Mutex::new(HashMap::new()),
        }
    }

    /// This replica's share of the cluster-wide `rate`.
    fn local(&self, rate: NonZeroU32) -> NonZeroU32 {
        share(rate, self.alive.get())
    }

    /// This replica's share of the org's rate (its license's `rps`, else the default).
    /// `None`: unlimited.
    fn org_rate(&self, licensed_rps: Option<u64>) -> Option<NonZeroU32> {
        let rps = licensed_rps.map_or(self.settings.org_rps, |rps| {
            u32::try_from(rps).unwrap_or(u32::MAX)
        });
        NonZeroU32::new(rps).map(|rate| self.local(rate))
    }

    /// Checks one token request of a gateway of `org_id` whose license allows
    /// `licensed_rps` (`None`: the default applies), against the org's token budget.
    /// `None` when the org is unlimited.
    /// A refusal's `Retry-After` is the refused request's place in the org's retry queue
    /// (see the module's documentation).
    pub(crate) fn check_org(&self, org_id: &str, licensed_rps: Option<u64>) -> Option<Decision> {
        let rate = self.org_rate(licensed_rps)?;
        let mut decision = self.check(format!("tokens:{org_id}"), rate)?;
        if decision.retry_after.is_some() {
            let wait = self.queue_retry(org_id, rate, Instant::now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            decision.retry_after = Some(seconds);
            decision.reset = decision.reset.max(seconds);
        }
        Some(decision)
    }

    /// The wait of a token request of `org_id` refused at `now`: one place (`1 / rate`)
    /// after the org's last refused request, and no sooner than [`RETRY_FLOOR`], no later
    /// than [`RETRY_CEILING`].
    fn queue_retry(&self, org_id: &str, rate: NonZeroU32, now: Instant) -> Duration {
        let spacing = Duration::from_secs(1) / rate.get();
        let floor = now + RETRY_FLOOR;
        let Ok(mut tails) = self.retry_tails.lock() else {
            return RETRY_FLOOR;
        };
        let tail = match tails.get_mut(org_id) {
            Some(tail) => tail,
            None => tails.entry(org_id.to_owned()).or_insert(floor),
        };
        let at = (*tail).max(floor) + spacing;
        if at > now + RETRY_CEILING {
            // The queue is full: back at the ceiling, without taking a place.
            return RETRY_CEILING;
        }
        *tail = at;
        at - now
    }

    /// Checks one management request of `principal` in `org_id`: first against the
    /// principal's share, then (only if that allows it) against the org's management
    /// budget. The decision reports the org's rate as the limit and the smaller of the
    /// two remainders. `None` when the org is unlimited.
    pub(crate) fn check_management(
        &self,
        org_id: &str,
        principal: &str,
        licensed_rps: Option<u64>,
    ) -> Option<Decision> {
        let rate = self.org_rate(licensed_rps)?;
        let percent = self.settings.principal_percent.clamp(1, 100);
        let own = if percent < 100 {
            let share = (u64::from(rate.get()) * u64::from(percent)).div_ceil(100);
            let share = NonZeroU32::new(u32::try_from(share).unwrap_or(u32::MAX))
                .unwrap_or(NonZeroU32::MIN);
            self.check(format!("principal:{org_id}:{principal}"), share)
        } else {
            None
        };
        if let Some(refused) = own.filter(|d| !d.allowed()) {
            return Some(Decision {
                limit: rate.get(),
                ..refused
            });
        }
        let org = self.check(format!("org:{org_id}"), rate)?;
        Some(match own {
            Some(own) => Decision {
                remaining: org.remaining.min(own.remaining),
                reset: org.reset.max(own.reset),
                ..org
            },
            None => org,
        })
    }

    /// Checks one cross-tenant admin request by the global admin token `token_id`.
    pub(crate) fn check_admin(&self, token_id: &str) -> Option<Decision> {
        self.check(
            format!("admin:{token_id}"),
            self.local(NonZeroU32::new(self.settings.admin_rps)?),
        )
    }

    fn check(&self, key: String, rate: NonZeroU32) -> Option<Decision> {
        let limiter = self.limiter(rate);
        let limit = rate.get();
        Some(match limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    limit,
                    remaining,
                    reset: u64::from(limit.saturating_sub(remaining)).div_ceil(u64::from(limit)),
                    retry_after: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Decision {
                    limit,
                    remaining: 0,
                    reset: seconds.max(1),
                    retry_after: Some(seconds.max(1)),
                }
            }
        })
    }

    fn limiter(&self, rate: NonZeroU32) -> Arc<Keyed> {
        if let Some(found) = self.by_rate.read().ok().and_then(|m| m.get(&rate).cloned()) {
            return found;
        }
        let fresh = || {
            Arc::new(
                RateLimiter::keyed(Quota::per_second(rate))
                    .with_middleware::<StateInformationMiddleware>(),
            )
        };
        match self.by_rate.write() {
            Ok(mut map) => map.entry(rate).or_insert_with(fresh).clone(),
            Err(_) => fresh(),
        }
    }

    /// Forgets keys whose bucket is full again (they behave exactly like new keys), and
    /// retry queues whose last place has come up.
    pub(crate) fn prune(&self) {
        let now = Instant::now();
        if let Ok(mut tails) = self.retry_tails.lock() {
            tails.retain(|_, tail| *tail > now);
        }
        let limiters: Vec<Arc<Keyed>> = match self.by_rate.read() {
            Ok(map) => map.values().cloned().collect(),
            Err(_) => return,
        };
        for limiter in limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        // A limiter nobody holds and without keys (its rate is no longer anyone's share)
        // goes: under the write lock no check can be between taking it and using it.
        if let Ok(mut map) = self.by_rate.write() {
            map.retain(|_, limiter| Arc::strong_count(limiter) > 1 || !limiter.is_empty());
        }
    }

    /// Limiters kept (one per rate in use).
    #[cfg(test)]
    pub(crate) fn rates(&self) -> usize {
        self.by_rate.read().map(|map| map.len()).unwrap_or(0)
    }

    /// Live keys across all limiters.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_rate
            .read()
            .map(|map| map.values().map(|l| l.len()).sum())
            .unwrap_or(0)
    }

    /// Whether no key is tracked.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the cached licensed rates (after a license change).
    pub(crate) fn invalidate(&self) {
        self.org_rates.invalidate_all();
    }

    /// The org's licensed `rps` (cached for a few seconds); `None` when it sets none.
    pub(crate) async fn licensed_rps(&self, store: &Store, org_id: &str) -> Option<u64> {
        let store = store.clone();
        let id = org_id.to_owned();
        self.org_rates
            .try_get_with(id.clone(), async move {
                match store.tenant(&id).license().await {
                    Ok(license) => Ok(license.limits.rps),
                    Err(StoreError::NotFound(_)) => Ok(None),
                    Err(error) => Err(error),
                }
            })
            .await
            .ok()
            .flatten()
    }
}

/// Prunes idle keys every minute.
pub(crate) fn spawn_pruner(limiter: Arc<Limiter>) -> JoinHandle<()> {
    every(
        PRUNE_INTERVAL,
        "rate-limit-prune",
        FirstTick::Now,
        move || {
            limiter.prune();
            std::future::ready(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_org_past_its_burst_is_refused_with_a_wait() {
        let limits = Limiter::new(RateLimitSettings::default(), Arc::default());
        for expected in (0..3).rev() {
            let decision = limits.check_org("a", Some(3)).expect("limited");
            assert_eq!((decision.limit, decision.remaining), (3, expected));
            assert!(decision.allowed());
        }
        let refused = limits.check_org("a", Some(3)).expect("limited");
        // The first place in the org's retry queue: 30 s + 1/3 s, rounded up.
        assert_eq!(refused.retry_after, Some(31));
        assert!(refused.reset >= 31);
        assert!(limits.check_org("b", Some(3)).expect("limited").allowed());
    }

    #[test]
    fn refused_token_requests_queue_at_the_orgs_rate_behind_the_floor() {
        let limits = Limiter::new(RateLimitSettings::default(), Arc::default());
        let now = Instant::now();
        let rate = nz(100);
        let waits: Vec<Duration> = (0..250)
            .map(|_| limits.queue_retry("big", rate, now))
            .collect();
        // One place per 10 ms, starting 10 ms after the 30 s floor.
        for (i, wait) in waits.iter().enumerate() {
            assert_eq!(
                *wait,
                RETRY_FLOOR + Duration::from_millis(10 * (i as u64 + 1))
            );
        }
        // Another org's queue is its own.
        assert_eq!(
            limits.queue_retry("small", rate, now),
            RETRY_FLOOR + Duration::from_millis(10)
        );
        // Later refusals queue behind the earlier ones, not at the floor.
        let later = now + Duration::from_secs(1);
        assert_eq!(
            limits.queue_retry("big", rate, later),
            RETRY_FLOOR + Duration::from_millis(2_510) - Duration::from_secs(1)
        );
        // Once the queue has come up, a refusal starts again at the floor.
        let much_later = now + Duration::from_secs(60);
        assert_eq!(
            limits.queue_retry("big", rate, much_later),
            RETRY_FLOOR + Duration::from_millis(10)
        );
    }

    #[test]
    fn a_queue_longer_than_the_ceiling_sends_its_overflow_back_at_the_ceiling() {
        let limits = Limiter::new(RateLimitSettings::default(), Arc::default());
        let now = Instant::now();
        // At 1/s, places run from 31 s to 1,800 s: 1,770 of them.
        let waits: Vec<Duration> = (0..1_800)
            .map(|_| limits.queue_retry("big", nz(1), now))
            .collect();
        assert_eq!(waits[1_769], RETRY_CEILING);
        assert!(waits[1_770..].iter().all(|w| *w == RETRY_CEILING));
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn retry_queues_that_came_up_are_pruned() {
        let limits = Limiter::new(RateLimitSettings::default(), Arc::default());
        let _ = limits.queue_retry("a", nz(100), Instant::now() - Duration::from_secs(60));
        let _ = limits.queue_retry("b", nz(100), Instant::now());
        limits.prune();
        let tails = limits.retry_tails.lock().expect("lock");
        assert_eq!(tails.keys().collect::<Vec<_>>(), [&"b".to_owned()]);
    }

    #[test]
    fn zero_means_unlimited() {
        let limits = Limiter::new(
            RateLimitSettings {
                org_rps: 0,
                admin_rps: 0,
                principal_percent: 50,
            },
            Arc::new(AliveCount::new()),
        );
        assert_eq!(limits.check_management("a", "p", None), None);
        assert_eq!(limits.check_org("a", None), None);
        assert_eq!(limits.check_admin("t"), None);
        assert!(limits.check_org("a", Some(1)).is_some());
    }

    #[test]
    fn a_principal_spends_its_share_and_leaves_the_rest_to_the_org() {
        let limits = Limiter::new(RateLimitSettings::default(), Arc::default());
        let allowed = (0..10)
            .filter(|_| {
                limits
                    .check_management("a", "p", Some(10))
                    .expect("limited")
                    .allowed()
            })
            .count();
        assert_eq!(allowed, 5, "half of a burst of 10");
        let refused = limits
            .check_management("a", "p", Some(10))
            .expect("limited");
        assert_eq!((refused.limit, refused.remaining), (10, 0));
        for expected in (0..5).rev() {
            let other = limits
                .check_management("a", "q", Some(10))
                .expect("limited");
            assert_eq!((other.limit, other.remaining), (10, expected.min(4)));
        }
        // The org's management budget is spent; its token budget is not.
        assert!(
            !limits
                .check_management("a", "r", Some(10))
                .expect("limited")
                .allowed()
        );
        assert!(limits.check_org("a", Some(10)).expect("limited").allowed());
    }

    #[test]
    fn idle_keys_are_pruned() {
        let limits = Limiter::new(RateLimitSettings::default(), Arc::default());
        let _ = limits.check_org("a", Some(1000));
        assert_eq!(limits.len(), 1);
        std::thread::sleep(Duration::from_millis(20));
        limits.prune();
        assert!(limits.is_empty());
    }

    fn nz(rate: u32) -> NonZeroU32 {
        NonZeroU32::new(rate).expect("non-zero")
    }

    #[test]
    fn a_share_is_the_rate_divided_by_the_replicas_rounded_up() {
        assert_eq!(share(nz(20), 1), nz(20));
        assert_eq!(share(nz(20), 3), nz(7));
        assert_eq!(share(nz(21), 3), nz(7));
        assert_eq!(share(nz(100), 4), nz(25));
        // At least 1/s, however many replicas share it; no replica count is taken as one.
        assert_eq!(share(nz(2), 5), nz(1));
        assert_eq!(share(nz(20), 0), nz(20));
        assert_eq!(share(nz(u32::MAX), 1), nz(u32::MAX));
    }

    #[test]
    fn every_budget_is_divided_by_the_replicas_alive() {
        let alive = Arc::new(AliveCount::new());
        let limits = Limiter::new(
            RateLimitSettings {
                org_rps: 100,
                admin_rps: 20,
                principal_percent: 50,
            },
            alive.clone(),
        );
        alive.set(3);
        assert_eq!(limits.check_org("a", Some(20)).expect("limited").limit, 7);
        assert_eq!(limits.check_org("b", None).expect("limited").limit, 34);
        assert_eq!(limits.check_admin("t").expect("limited").limit, 7);
        // The principal's share is 50 % of the replica's 7: 4 of the org's burst of 7.
        let allowed = (0..10)
            .filter(|_| {
                limits
                    .check_management("a", "p", Some(20))
                    .expect("limited")
                    .allowed()
            })
            .count();
        assert_eq!(allowed, 4);
    }

    #[test]
    fn zero_stays_unlimited_on_any_number_of_replicas() {
        let alive = Arc::new(AliveCount::new());
        alive.set(7);
        let limits = Limiter::new(
            RateLimitSettings {
                org_rps: 0,
                admin_rps: 0,
                principal_percent: 50,
            },
            alive,
        );
        assert_eq!(limits.check_org("a", None), None);
        assert_eq!(limits.check_org("a", Some(0)), None);
        assert_eq!(limits.check_management("a", "p", None), None);
        assert_eq!(limits.check_admin("t"), None);
    }

    #[test]
    fn a_new_count_applies_at_the_next_check_and_the_old_rate_is_pruned() {
        let alive = Arc::new(AliveCount::new());
        let limits = Limiter::new(RateLimitSettings::default(), alive.clone());
        assert_eq!(
            limits.check_org("a", Some(1000)).expect("limited").limit,
            1000
        );
        alive.set(2);
        assert_eq!(
            limits.check_org("a", Some(1000)).expect("limited").limit,
            500
        );
        assert_eq!(limits.rates(), 2);
        std::thread::sleep(Duration::from_millis(20));
        limits.prune();
        assert_eq!(
            limits.rates(),
            0,
            "both buckets are full again: nothing is kept"
        );
        assert_eq!(
            limits.check_org("a", Some(1000)).expect("limited").limit,
            500
        );
        assert_eq!(limits.rates(), 1);
    }
}
