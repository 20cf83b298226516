//! Domain types of the service: slugs, org status, key state. Parsed at the edge so that
//! handlers and the store only see valid values.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The longest slug accepted.
pub const MAX_SLUG_LEN: usize = 63;

/// A URL-safe name of an org, workspace or environment: `[a-z0-9][a-z0-9-]*`, ≤ 63 chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

/// A slug that is not one.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "invalid slug {0:?}: use 1-63 lowercase letters, digits and '-', starting with a letter or digit"
)]
pub struct SlugError(pub String);

impl Slug {
    /// Checks `text` is a slug.
    pub fn parse(text: &str) -> Result<Self, SlugError> {
        let bytes = text.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= MAX_SLUG_LEN
            && bytes[0].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            let shown: String = text.chars().take(80).collect();
            Err(SlugError(shown))
        }
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Slug::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether an org may obtain tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgStatus {
    /// Normal.
    Active,
    /// Explicitly suspended: every token request is refused (`org_suspended`).
    Suspended,
    /// On trial until `trial_expires_at`; refused (`trial_expired`) after it.
    Trial,
}

/// A status string from the database that is not one.
#[derive(Debug, Error)]
#[error("unknown value {0:?}")]
pub struct UnknownValue(pub String);

impl OrgStatus {
    /// The stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrgStatus::Active => "active",
            OrgStatus::Suspended => "suspended",
            OrgStatus::Trial => "trial",
        }
    }
}

impl FromStr for OrgStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(OrgStatus::Active),
            "suspended" => Ok(OrgStatus::Suspended),
            "trial" => Ok(OrgStatus::Trial),
            other => Err(UnknownValue(other.to_owned())),
        }
    }
}

/// The life cycle of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Published in the JWKS, not yet signing.
    Pending,
    /// Signing new tokens.
    Active,
    /// No longer signing; still published while tokens it signed may be within grace.
    Retiring,
    /// Unpublished.
    Retired,
}

impl KeyState {
    /// The stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }

    /// Whether the key belongs in the JWKS.
    pub const fn is_published(self) -> bool {
        !matches!(self, KeyState::Retired)
    }
}

impl FromStr for KeyState {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(KeyState::Pending),
            "active" => Ok(KeyState::Active),
            "retiring" => Ok(KeyState::Retiring),
            "retired" => Ok(KeyState::Retired),
            other => Err(UnknownValue(other.to_owned())),
        }
    }
}

/// A fresh random id (UUID v7: time-ordered, so inserts stay index-friendly).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_lowercase_names_and_refuse_the_rest() {
        assert!(Slug::parse("acme-prod-1").is_ok());
        for bad in ["", "-acme", "Acme", "a b", "a/b", &"a".repeat(64)] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn statuses_round_trip_through_their_stored_form() {
        for status in [OrgStatus::Active, OrgStatus::Suspended, OrgStatus::Trial] {
            assert_eq!(status.as_str().parse::<OrgStatus>().ok(), Some(status));
        }
        for state in [
            KeyState::Pending,
            KeyState::Active,
            KeyState::Retiring,
            KeyState::Retired,
        ] {
            assert_eq!(state.as_str().parse::<KeyState>().ok(), Some(state));
        }
    }
}
