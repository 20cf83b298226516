//! A gateway's health as the fleet page shows it, from the time it last got a token: the
//! token it holds then says refresh after [`REFRESH_AFTER`], expires after
//! [`TOKEN_LIFETIME`] and may be used in grace for [`GRACE`] more.

use crate::infra::issuer::{GRACE, REFRESH_AFTER};
use crate::infra::keyring::TOKEN_LIFETIME;

/// Where a gateway's last token stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// Before its refresh-after time.
    Fresh,
    /// Past refresh-after, the token still valid: the gateway should have refreshed.
    RefreshOverdue,
    /// Past the token's expiry, within grace: the gateway keeps its entitlements for now.
    InGrace,
    /// Past grace: the gateway runs as Tier-0.
    Lapsed,
    /// No token issued yet.
    Never,
}

impl Health {
    /// Every health, in the order the filter lists them.
    pub(crate) const ALL: [Health; 5] = [
        Health::Fresh,
        Health::RefreshOverdue,
        Health::InGrace,
        Health::Lapsed,
        Health::Never,
    ];

    /// The health of a gateway whose last token was issued at `last_token_at`.
    pub(crate) fn of(last_token_at: Option<i64>, now: i64) -> Self {
        let Some(issued) = last_token_at else {
            return Health::Never;
        };
        let age = now - issued;
        if age < REFRESH_AFTER {
            Health::Fresh
        } else if age < TOKEN_LIFETIME {
            Health::RefreshOverdue
        } else if age < TOKEN_LIFETIME + GRACE {
            Health::InGrace
        } else {
            Health::Lapsed
        }
    }

    /// The range of `last_token_at` this health means at `now`: `(from, before)`, either
    /// end open; `None` for [`Health::Never`] (no token time at all).
    pub(crate) fn window(self, now: i64) -> Option<(Option<i64>, Option<i64>)> {
        let at = |age: i64| now - age;
        match self {
            Health::Fresh => Some((Some(at(REFRESH_AFTER) + 1), None)),
            Health::RefreshOverdue => {
                Some((Some(at(TOKEN_LIFETIME) + 1), Some(at(REFRESH_AFTER) + 1)))
            }
            Health::InGrace => Some((
                Some(at(TOKEN_LIFETIME + GRACE) + 1),
                Some(at(TOKEN_LIFETIME) + 1),
            )),
            Health::Lapsed => Some((None, Some(at(TOKEN_LIFETIME + GRACE) + 1))),
            Health::Never => None,
        }
    }

    /// The filter's query value.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Health::Fresh => "fresh",
            Health::RefreshOverdue => "refresh_overdue",
            Health::InGrace => "in_grace",
            Health::Lapsed => "lapsed",
            Health::Never => "never",
        }
    }

    /// In words.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Health::Fresh => "fresh",
            Health::RefreshOverdue => "refresh overdue",
            Health::InGrace => "in grace",
            Health::Lapsed => "lapsed",
            Health::Never => "never federated",
        }
    }

    /// The health named by a filter's query value.
    pub(crate) fn parse(key: &str) -> Option<Self> {
        Health::ALL.into_iter().find(|h| h.key() == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_time_falls_in_exactly_the_window_of_its_health() {
        let now = 10_000_000;
        let ages = [
            0,
            REFRESH_AFTER - 1,
            REFRESH_AFTER,
            TOKEN_LIFETIME - 1,
            TOKEN_LIFETIME,
            TOKEN_LIFETIME + GRACE - 1,
            TOKEN_LIFETIME + GRACE,
            TOKEN_LIFETIME + GRACE + 86_400,
        ];
        for age in ages {
            let issued = now - age;
            let health = Health::of(Some(issued), now);
            for candidate in Health::ALL {
                let inside = candidate.window(now).is_some_and(|(from, before)| {
                    from.is_none_or(|f| issued >= f) && before.is_none_or(|b| issued < b)
                });
                assert_eq!(
                    inside,
                    candidate == health,
                    "age {age}: {health:?} vs {candidate:?}"
                );
            }
        }
        assert_eq!(Health::of(None, now), Health::Never);
    }

    #[test]
    fn health_names_round_trip() {
        for health in Health::ALL {
            assert_eq!(Health::parse(health.key()), Some(health));
        }
        assert_eq!(Health::parse("bogus"), None);
    }
}
