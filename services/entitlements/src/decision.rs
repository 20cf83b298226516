//! What `check()` answers: the tenant's state, a typed reason and the effective tier.

use std::fmt;

use mcpg_license_core::Tier;
use serde::Serialize;

/// Where a tenant stands in the gateway state machine (see DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// No license: Tier-0 (tier0 mode, or a federated tenant without a token yet).
    Unlicensed,
    /// A verified token and `now < exp`.
    Active,
    /// `exp <= now < grc`: refreshing fails, the token's entitlements are kept.
    Grace,
    /// `now >= grc`: Tier-0 until a refresh succeeds.
    Lapsed,
    /// The service said no (revoked, expired, suspended licence or credential): Tier-0.
    Revoked,
    /// A valid offline license.
    Offline,
    /// The offline license has expired: Tier-0.
    OfflineExpired,
}

impl State {
    /// Every state, in declaration order.
    pub const ALL: [State; 7] = [
        State::Unlicensed,
        State::Active,
        State::Grace,
        State::Lapsed,
        State::Revoked,
        State::Offline,
        State::OfflineExpired,
    ];

    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Unlicensed => "unlicensed",
            State::Active => "active",
            State::Grace => "grace",
            State::Lapsed => "lapsed",
            State::Revoked => "revoked",
            State::Offline => "offline",
            State::OfflineExpired => "offline_expired",
        }
    }

    /// A stable number for the state gauge (its position in [`State::ALL`]).
    pub const fn gauge_value(self) -> f64 {
        self as u8 as f64
    }

    /// Whether the tenant holds its licensed entitlements (not Tier-0 behaviour).
    pub const fn is_licensed(self) -> bool {
        matches!(self, State::Active | State::Grace | State::Offline)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a plugin is allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Allowed.
    Allowed,
    /// The license does not include the plugin's entitlement.
    NotEntitled,
    /// The catalog does not know the plugin (fail closed).
    UnknownPlugin,
    /// The grace period ended; only Tier-0 plugins until a refresh succeeds.
    Lapsed,
    /// The service revoked the license or credential; only Tier-0 plugins.
    Revoked,
    /// The gateway runs in tier0 mode; only Tier-0 plugins.
    Tier0Only,
    /// The offline license expired; only Tier-0 plugins.
    OfflineExpired,
    /// The tenant has no entitlements from the federation (yet); only Tier-0 plugins.
    NotFederated,
    /// Entitled (or free), but the token names a plugin set for the tenant's workspace or
    /// environment and the plugin is not in it.
    NotInPluginSet,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: [Reason; 9] = [
        Reason::Allowed,
        Reason::NotEntitled,
        Reason::UnknownPlugin,
        Reason::Lapsed,
        Reason::Revoked,
        Reason::Tier0Only,
        Reason::OfflineExpired,
        Reason::NotFederated,
        Reason::NotInPluginSet,
    ];

    /// The snake_case code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Allowed => "allowed",
            Reason::NotEntitled => "not_entitled",
            Reason::UnknownPlugin => "unknown_plugin",
            Reason::Lapsed => "lapsed",
            Reason::Revoked => "revoked",
            Reason::Tier0Only => "tier0_only",
            Reason::OfflineExpired => "offline_expired",
            Reason::NotFederated => "not_federated",
            Reason::NotInPluginSet => "not_in_plugin_set",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to `check(tenant, plugin)`. `Copy`, so answering allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the plugin may load.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// The tenant's state at the time of the check.
    pub state: State,
    /// The tier in effect (`free` whenever the tenant is in Tier-0 behaviour).
    pub tier: Tier,
}
