//! Gateway-side limits: `lim.max_servers` and `lim.max_concurrent_requests` of the token
//! (or offline license) in force, enforced by the gateway that embeds this library.
//!
//! The limits are read from the current entitlements on every call, so a refresh that
//! changes them applies at once; requests already admitted keep their permits. Without a
//! license (unlicensed, lapsed, revoked, offline expired) the Tier-0 limits apply, and
//! Tier-0 defines none: [`TIER0_LIMITS`] is empty.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mcpg_license_core::{LimitKey, Limits};
use serde::Serialize;

use crate::decision::State;
use crate::entitlements::{HandleInner, TenantHandle};

/// The limits of a tenant without a license. Tier-0 defines none, so nothing is limited.
pub const TIER0_LIMITS: Limits = Limits {
    max_gateways: None,
    max_workspaces: None,
    max_environments: None,
    rps: None,
    max_servers: None,
    max_concurrent_requests: None,
};

/// Whether a limit admits what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitReason {
    /// Within the limit (or no limit is set).
    Allowed,
    /// Over the limit.
    OverLimit,
}

impl LimitReason {
    /// The snake_case code (`allowed`, `over_limit`).
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitReason::Allowed => "allowed",
            LimitReason::OverLimit => "over_limit",
        }
    }
}

/// The answer of a limit check. `Copy`: answering allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LimitDecision {
    /// Whether it is admitted.
    pub allowed: bool,
    /// Why.
    pub reason: LimitReason,
    /// The limit that decided.
    #[serde(serialize_with = "serialize_key")]
    pub limit: LimitKey,
    /// Its value; `None`: no limit.
    pub max: Option<u64>,
    /// What was asked: the server count, or the requests in flight with the new one.
    pub requested: u64,
    /// The tenant's state (which decides whose limits apply).
    pub state: State,
}

/// Counts a refusal on `mcpg_entitlements_limit_refusals_total{limit}` ([`crate::observe::LIMIT_REFUSALS`]).
/// The name and labels are literals, so each arm's key is static: a refusal, which comes
/// under overload, allocates nothing to name its series.
fn count_refusal(limit: LimitKey) {
    let counter = match limit {
        LimitKey::MaxServers => {
            metrics::counter!("mcpg_entitlements_limit_refusals_total", "limit" => "max_servers")
        }
        LimitKey::MaxConcurrentRequests => metrics::counter!(
            "mcpg_entitlements_limit_refusals_total",
            "limit" => "max_concurrent_requests"
        ),
        // Only the two gateway-side limits are checked here.
        _ => metrics::counter!("mcpg_entitlements_limit_refusals_total", "limit" => "other"),
    };
    counter.increment(1);
}

fn serialize_key<S: serde::Serializer>(key: &LimitKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(key.as_str())
}

impl LimitDecision {
    fn of(limit: LimitKey, max: Option<u64>, requested: u64, state: State) -> Self {
        let allowed = max.is_none_or(|max| requested <= max);
        if !allowed {
            count_refusal(limit);
        }
        Self {
            allowed,
            reason: match allowed {
                true => LimitReason::Allowed,
                false => LimitReason::OverLimit,
            },
            limit,
            max,
            requested,
            state,
        }
    }
}

/// One admitted request: holding it counts against `max_concurrent_requests`; dropping it
/// ends the request. Cheap to create (no allocation), `Send`, not `Clone`.
#[derive(Debug)]
#[must_use = "the request counts as in flight only while the permit is held"]
pub struct RequestPermit {
    inner: Arc<HandleInner>,
}

impl Drop for RequestPermit {
    fn drop(&mut self) {
        self.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl TenantHandle {
    /// The limits in force now (see [`TIER0_LIMITS`] for tenants without a license).
    pub fn limits(&self) -> Limits {
        let now = self.inner.time.now();
        self.inner.current.load().limits_at(now)
    }

    /// Whether the gateway may run `count` MCP servers for this tenant: allowed when
    /// `count <= max_servers` or no limit is set, else `over_limit`.
    pub fn check_servers(&self, count: u64) -> LimitDecision {
        let now = self.inner.time.now();
        let current = self.inner.current.load();
        let max = current.limits_at(now).max_servers;
        LimitDecision::of(LimitKey::MaxServers, max, count, current.state_at(now))
    }

    /// Admits one more request against `max_concurrent_requests`, or says why not. The
    /// count is atomic and shared by every clone of the handle; the limit is read from the
    /// token in force, so a refresh that lowers it refuses new requests until enough
    /// permits are dropped. Allocation-free.
    pub fn try_begin_request(&self) -> Result<RequestPermit, LimitDecision> {
        let now = self.inner.time.now();
        let (max, state) = {
            let current = self.inner.current.load();
            (
                current.limits_at(now).max_concurrent_requests,
                current.state_at(now),
            )
        };
        let admitted =
            self.inner
                .in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    let next = n.saturating_add(1);
                    max.is_none_or(|max| next <= max).then_some(next)
                });
        match admitted {
            Ok(_) => Ok(RequestPermit {
                inner: self.inner.clone(),
            }),
            Err(n) => Err(LimitDecision::of(
                LimitKey::MaxConcurrentRequests,
                max,
                n.saturating_add(1),
                state,
            )),
        }
    }

    /// Requests admitted by [`TenantHandle::try_begin_request`] whose permit is still held.
    pub fn requests_in_flight(&self) -> u64 {
        self.inner.in_flight.load(Ordering::Acquire)
    }
}
