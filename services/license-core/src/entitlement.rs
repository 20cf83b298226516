//! Entitlement ids (`kind:name`) and the sets a license carries.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The longest entitlement id accepted, in bytes.
pub const MAX_ENTITLEMENT_LEN: usize = 96;

/// What an entitlement unlocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntitlementKind {
    /// A gateway plugin (`plugin:policy.cedar`).
    Plugin,
    /// A platform feature (`feature:workspace.rbac`).
    Feature,
}

/// A validated entitlement id: `plugin:` or `feature:` followed by a lowercase name made of
/// `[a-z0-9]` runs joined by single `.`, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntitlementId(String);

/// Why a string is not an entitlement id.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum EntitlementIdError {
    /// No `kind:` prefix, or an unknown kind.
    #[error("entitlement id {0:?} must start with plugin: or feature:")]
    UnknownKind(String),
    /// The name part breaks the grammar or is too long.
    #[error(
        "entitlement id {0:?} has an invalid name: use lowercase letters, digits and single . - _ between them (at most 96 bytes)"
    )]
    InvalidName(String),
}

impl EntitlementId {
    /// Parses and validates an id such as `plugin:identity.oidc`.
    pub fn parse(text: &str) -> Result<Self, EntitlementIdError> {
        let (kind, name) = text
            .split_once(':')
            .ok_or_else(|| EntitlementIdError::UnknownKind(text.to_owned()))?;
        if kind != "plugin" && kind != "feature" {
            return Err(EntitlementIdError::UnknownKind(text.to_owned()));
        }
        if text.len() > MAX_ENTITLEMENT_LEN || !valid_name(name) {
            return Err(EntitlementIdError::InvalidName(text.to_owned()));
        }
        Ok(Self(text.to_owned()))
    }

    /// The whole id, e.g. `feature:workspace.rbac`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it names a plugin or a feature.
    pub fn kind(&self) -> EntitlementKind {
        if self.0.starts_with("plugin:") {
            EntitlementKind::Plugin
        } else {
            EntitlementKind::Feature
        }
    }

    /// The part after `kind:`.
    pub fn name(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, name)| name)
    }
}

fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes
            .iter()
            .all(|b| alnum(b) || matches!(b, b'.' | b'-' | b'_'))
        && !bytes.windows(2).any(|w| !alnum(&w[0]) && !alnum(&w[1]))
}

impl FromStr for EntitlementId {
    type Err = EntitlementIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for EntitlementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EntitlementId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EntitlementId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A sorted, deduplicated set of entitlements with O(1) membership.
///
/// Serialises as a sorted JSON array, so two equal sets always encode to the same bytes.
/// Cloning is a reference-count increment (the issuer copies a cached set into every token's
/// claims); a change copies the set first if it is shared.
#[derive(Debug, Clone, Default)]
pub struct EntitlementSet {
    inner: Arc<SetInner>,
}

#[derive(Debug, Clone, Default)]
struct SetInner {
    sorted: Vec<EntitlementId>,
    index: HashSet<String>,
}

impl EntitlementSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `id` (e.g. `plugin:policy.cedar`) is in the set.
    pub fn contains(&self, id: &str) -> bool {
        self.inner.index.contains(id)
    }

    /// Adds `id`, keeping the order; returns false if it was already there.
    pub fn insert(&mut self, id: EntitlementId) -> bool {
        if self.contains(id.as_str()) {
            return false;
        }
        let inner = Arc::make_mut(&mut self.inner);
        let at = inner.sorted.binary_search(&id).unwrap_or_else(|at| at);
        inner.index.insert(id.as_str().to_owned());
        inner.sorted.insert(at, id);
        true
    }

    /// Removes `id`; returns whether it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        if !self.contains(id) {
            return false;
        }
        let inner = Arc::make_mut(&mut self.inner);
        inner.index.remove(id);
        inner.sorted.retain(|e| e.as_str() != id);
        true
    }

    /// The ids in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &EntitlementId> {
        self.inner.sorted.iter()
    }

    /// How many ids the set holds.
    pub fn len(&self) -> usize {
        self.inner.sorted.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.sorted.is_empty()
    }

    /// Whether every id of `self` is also in `other`.
    pub fn is_subset(&self, other: &EntitlementSet) -> bool {
        self.iter().all(|e| other.contains(e.as_str()))
    }

    /// The first id of `self` (in order) missing from `other`.
    pub fn first_not_in(&self, other: &EntitlementSet) -> Option<&EntitlementId> {
        self.iter().find(|e| !other.contains(e.as_str()))
    }
}

impl PartialEq for EntitlementSet {
    fn eq(&self, other: &Self) -> bool {
        self.inner.sorted == other.inner.sorted
    }
}

impl Eq for EntitlementSet {}

impl FromIterator<EntitlementId> for EntitlementSet {
    fn from_iter<I: IntoIterator<Item = EntitlementId>>(iter: I) -> Self {
        let mut sorted: Vec<EntitlementId> = iter.into_iter().collect();
        sorted.sort();
        sorted.dedup();
        let index = sorted.iter().map(|e| e.as_str().to_owned()).collect();
        Self {
            inner: Arc::new(SetInner { sorted, index }),
        }
    }
}

impl Serialize for EntitlementSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.inner.sorted.serialize(s)
    }
}

impl<'de> Deserialize<'de> for EntitlementSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<EntitlementId>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> EntitlementId {
        EntitlementId::parse(s).expect("valid id")
    }

    #[test]
    fn accepts_plugin_and_feature_ids() {
        assert_eq!(id("plugin:policy.cedar").kind(), EntitlementKind::Plugin);
        assert_eq!(id("feature:workspace.rbac").name(), "workspace.rbac");
        assert!(EntitlementId::parse("plugin:reliability.rate-limit").is_ok());
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "policy.cedar",
            "limit:rps",
            "plugin:",
            "plugin:Policy",
            "plugin:.cedar",
            "plugin:cedar.",
            "plugin:a..b",
            "plugin:a b",
            "Plugin:a",
            &format!("plugin:{}", "a".repeat(100)),
        ] {
            assert!(EntitlementId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sets_are_sorted_and_deduplicated() {
        let set: EntitlementSet = [id("plugin:b"), id("feature:a"), id("plugin:b")]
            .into_iter()
            .collect();
        assert_eq!(set.len(), 2);
        assert_eq!(
            serde_json::to_string(&set).expect("serialises"),
            r#"["feature:a","plugin:b"]"#
        );
        assert!(set.contains("plugin:b") && !set.contains("plugin:c"));
    }

    #[test]
    fn insert_and_remove_keep_order() {
        let mut set = EntitlementSet::new();
        assert!(set.insert(id("plugin:z")));
        assert!(set.insert(id("plugin:a")));
        assert!(!set.insert(id("plugin:a")));
        assert!(set.remove("plugin:z"));
        assert!(!set.remove("plugin:z"));
        assert_eq!(
            set.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
            ["plugin:a"]
        );
    }

    #[test]
    fn malformed_id_in_json_is_an_error() {
        assert!(serde_json::from_str::<EntitlementSet>(r#"["plugin:ok","nope"]"#).is_err());
    }
}
