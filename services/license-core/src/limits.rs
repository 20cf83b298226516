//! Numeric limits a license sets (`lim` claim): quotas and the request rate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The limits of a license. Absent means "no limit set by the license".
///
/// Unknown keys in a token are ignored so that older gateways accept tokens from a newer
/// issuer; the command line and the API reject them (see [`LimitKey`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Gateway instances the org may register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gateways: Option<u64>,
    /// Workspaces the org may create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workspaces: Option<u64>,
    /// Environments the org may create (across workspaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_environments: Option<u64>,
    /// Requests per second the org may make to the management and token APIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<u64>,
    /// MCP servers a gateway of the org may run (carried to gateways; enforced there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_servers: Option<u64>,
    /// Requests a gateway of the org may serve at once (carried to gateways; enforced
    /// there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_requests: Option<u64>,
}

/// The name of one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// `max_gateways`
    MaxGateways,
    /// `max_workspaces`
    MaxWorkspaces,
    /// `max_environments`
    MaxEnvironments,
    /// `rps`
    Rps,
    /// `max_servers`
    MaxServers,
    /// `max_concurrent_requests`
    MaxConcurrentRequests,
}

/// A `KEY=VALUE` limit that could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LimitError {
    /// Not of the form `KEY=VALUE`.
    #[error("limit {0:?} must look like KEY=VALUE, e.g. max_gateways=50")]
    Syntax(String),
    /// The key is not a known limit.
    #[error(
        "unknown limit {0:?} (known: max_gateways, max_workspaces, max_environments, rps, max_servers, max_concurrent_requests)"
    )]
    UnknownKey(String),
    /// The value is not a non-negative whole number.
    #[error("limit {0} needs a whole number, got {1:?}")]
    Value(&'static str, String),
}

impl LimitKey {
    /// Every limit key.
    pub const ALL: [LimitKey; 6] = [
        LimitKey::MaxGateways,
        LimitKey::MaxWorkspaces,
        LimitKey::MaxEnvironments,
        LimitKey::Rps,
        LimitKey::MaxServers,
        LimitKey::MaxConcurrentRequests,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitKey::MaxGateways => "max_gateways",
            LimitKey::MaxWorkspaces => "max_workspaces",
            LimitKey::MaxEnvironments => "max_environments",
            LimitKey::Rps => "rps",
            LimitKey::MaxServers => "max_servers",
            LimitKey::MaxConcurrentRequests => "max_concurrent_requests",
        }
    }
}

impl FromStr for LimitKey {
    type Err = LimitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LimitKey::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| LimitError::UnknownKey(s.to_owned()))
    }
}

impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Limits {
    /// The value of one limit.
    pub fn get(&self, key: LimitKey) -> Option<u64> {
        match key {
            LimitKey::MaxGateways => self.max_gateways,
            LimitKey::MaxWorkspaces => self.max_workspaces,
            LimitKey::MaxEnvironments => self.max_environments,
            LimitKey::Rps => self.rps,
            LimitKey::MaxServers => self.max_servers,
            LimitKey::MaxConcurrentRequests => self.max_concurrent_requests,
        }
    }

    /// Sets one limit.
    pub fn set(&mut self, key: LimitKey, value: Option<u64>) {
        let slot = match key {
            LimitKey::MaxGateways => &mut self.max_gateways,
            LimitKey::MaxWorkspaces => &mut self.max_workspaces,
            LimitKey::MaxEnvironments => &mut self.max_environments,
            LimitKey::Rps => &mut self.rps,
            LimitKey::MaxServers => &mut self.max_servers,
            LimitKey::MaxConcurrentRequests => &mut self.max_concurrent_requests,
        };
        *slot = value;
    }

    /// Applies one `KEY=VALUE` assignment, as given on a command line.
    pub fn apply_assignment(&mut self, assignment: &str) -> Result<(), LimitError> {
        let (key, value) = assignment
            .split_once('=')
            .ok_or_else(|| LimitError::Syntax(assignment.to_owned()))?;
        let key: LimitKey = key.trim().parse()?;
        let value: u64 = value
            .trim()
            .parse()
            .map_err(|_| LimitError::Value(key.as_str(), value.to_owned()))?;
        self.set(key, Some(value));
        Ok(())
    }

    /// The limits that are set, as `(key, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (LimitKey, u64)> + '_ {
        LimitKey::ALL
            .into_iter()
            .filter_map(|k| self.get(k).map(|v| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_set_known_limits() {
        let mut limits = Limits::default();
        limits.apply_assignment("max_gateways=50").expect("valid");
        limits.apply_assignment("rps = 200").expect("valid");
        assert_eq!(limits.max_gateways, Some(50));
        assert_eq!(limits.rps, Some(200));
        assert_eq!(
            serde_json::to_string(&limits).expect("serialises"),
            r#"{"max_gateways":50,"rps":200}"#
        );
    }

    #[test]
    fn bad_assignments_are_errors() {
        let mut limits = Limits::default();
        assert!(matches!(
            limits.apply_assignment("max_gateways"),
            Err(LimitError::Syntax(_))
        ));
        assert!(matches!(
            limits.apply_assignment("gateways=1"),
            Err(LimitError::UnknownKey(_))
        ));
        assert!(matches!(
            limits.apply_assignment("rps=-1"),
            Err(LimitError::Value(..))
        ));
        assert_eq!(limits, Limits::default());
    }

    #[test]
    fn gateway_side_limits_round_trip_and_are_absent_when_unset() {
        let mut limits = Limits::default();
        limits.apply_assignment("max_servers=5").expect("valid");
        limits
            .apply_assignment("max_concurrent_requests=100")
            .expect("valid");
        let text = serde_json::to_string(&limits).expect("serialises");
        assert_eq!(text, r#"{"max_servers":5,"max_concurrent_requests":100}"#);
        let back: Limits = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, limits);
        assert_eq!(back.get(LimitKey::MaxServers), Some(5));
        // Absent means unlimited, and an unset limit is not written.
        let none: Limits = serde_json::from_str(r#"{"rps":1}"#).expect("parses");
        assert_eq!(none.max_servers, None);
        assert_eq!(none.max_concurrent_requests, None);
        assert_eq!(
            serde_json::to_string(&none).expect("serialises"),
            r#"{"rps":1}"#
        );
        assert_eq!(
            "max_concurrent_requests".parse::<LimitKey>(),
            Ok(LimitKey::MaxConcurrentRequests)
        );
    }

    #[test]
    fn unknown_limits_in_tokens_are_ignored() {
        let limits: Limits =
            serde_json::from_str(r#"{"rps":5,"max_widgets":3}"#).expect("forward compatible");
        assert_eq!(limits.rps, Some(5));
    }
}
