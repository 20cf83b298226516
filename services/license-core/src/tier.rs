//! Product tiers, ordered free < team < enterprise.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A product tier. The order is meaningful: a higher tier includes every lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Tier-0: the free gateway, never federates.
    Free,
    /// Team: workspaces with RBAC, SSO through OIDC.
    Team,
    /// Enterprise: environment RBAC, SAML, BYOC federation.
    Enterprise,
}

/// A tier name that is not one of `free`, `team`, `enterprise`.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("unknown tier {0:?} (expected free, team or enterprise)")]
pub struct UnknownTier(pub String);

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 3] = [Tier::Free, Tier::Team, Tier::Enterprise];

    /// The wire name (`free`, `team`, `enterprise`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Team => "team",
            Tier::Enterprise => "enterprise",
        }
    }
}

impl FromStr for Tier {
    type Err = UnknownTier;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "free" => Ok(Tier::Free),
            "team" => Ok(Tier::Team),
            "enterprise" => Ok(Tier::Enterprise),
            other => Err(UnknownTier(other.to_owned())),
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_ordered_and_round_trip() {
        assert!(Tier::Free < Tier::Team && Tier::Team < Tier::Enterprise);
        for tier in Tier::ALL {
            assert_eq!(tier.as_str().parse::<Tier>(), Ok(tier));
        }
        assert_eq!("gold".parse::<Tier>(), Err(UnknownTier("gold".to_owned())));
    }
}
