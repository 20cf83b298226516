//! Plugin sets: the plugins a workspace's (or environment's) gateways run, each with an
//! opaque JSON config.
//!
//! The federation signs only the plugin ids and a digest of the configs into a token (the
//! `ps` claim, [`PluginSetClaim`]); the configs travel beside the token in the token
//! response, and a gateway accepts them only if their [`PluginSet::digest`] is the one the
//! signed claim names. The digest is taken over one canonical form, so the service and
//! every gateway compute it alike.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The most plugins one set may name.
pub const MAX_PLUGINS: usize = 256;

/// The most bytes the configs of one set may take, as canonical JSON.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// The longest plugin id, in bytes.
const MAX_ID_LEN: usize = 128;

/// Why a plugin set is invalid.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum PluginSetError {
    /// A plugin id that is empty, too long or not `[a-z0-9._-]`.
    #[error("plugin id {0:?} is not a plugin id (lowercase letters, digits, '.', '-', '_')")]
    BadId(String),
    /// The same plugin named twice.
    #[error("plugin {0:?} is named twice")]
    Duplicate(String),
    /// More than [`MAX_PLUGINS`] plugins.
    #[error("a plugin set names at most {MAX_PLUGINS} plugins, this one names {0}")]
    TooMany(usize),
    /// Configs larger than [`MAX_CONFIG_BYTES`].
    #[error("the plugins' configs take {0} bytes; at most {MAX_CONFIG_BYTES} are accepted")]
    TooLarge(usize),
    /// A `ps` claim whose ids are not in ascending order.
    #[error("the plugin ids of a ps claim must be sorted and unique; {0:?} is out of order")]
    Unsorted(String),
    /// A `ps` claim whose digest is not `sha256:` and 64 lowercase hex digits.
    #[error("plugin set digest {0:?} is not sha256: followed by 64 lowercase hex digits")]
    BadDigest(String),
}

/// One plugin of a set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSetEntry {
    /// Plugin id, as in the catalog (`policy.cedar`).
    pub id: String,
    /// Its configuration, opaque to licensing (`null` when it has none).
    #[serde(default)]
    pub config: Value,
}

/// A valid plugin set: ids unique and well formed, sorted by id, configs within bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PluginSet {
    plugins: Vec<PluginSetEntry>,
}

impl PluginSet {
    /// Validates `plugins` into a set (sorted by id).
    pub fn new(mut plugins: Vec<PluginSetEntry>) -> Result<Self, PluginSetError> {
        if plugins.len() > MAX_PLUGINS {
            return Err(PluginSetError::TooMany(plugins.len()));
        }
        for entry in &plugins {
            check_id(&entry.id)?;
        }
        plugins.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(pair) = plugins.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(PluginSetError::Duplicate(pair[0].id.clone()));
        }
        let set = Self { plugins };
        let size = set.canonical_json().len();
        if size > MAX_CONFIG_BYTES {
            return Err(PluginSetError::TooLarge(size));
        }
        Ok(set)
    }

    /// The plugins, sorted by id.
    pub fn plugins(&self) -> &[PluginSetEntry] {
        &self.plugins
    }

    /// The config of `plugin`, if the set names it.
    pub fn config(&self, plugin: &str) -> Option<&Value> {
        self.plugins
            .binary_search_by(|e| e.id.as_str().cmp(plugin))
            .ok()
            .map(|i| &self.plugins[i].config)
    }

    /// The plugin ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.plugins.iter().map(|e| e.id.as_str())
    }

    /// `sha256:` and the lowercase hex SHA-256 of the canonical JSON: an array of
    /// `{"config":…,"id":…}` sorted by id, object members sorted by name at every depth,
    /// no insignificant whitespace.
    pub fn digest(&self) -> String {
        let hash = Sha256::digest(self.canonical_json());
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for byte in hash {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        out
    }

    /// The `ps` claim for this set.
    pub fn claim(&self) -> PluginSetClaim {
        PluginSetClaim {
            cfg: self.digest(),
            ids: self.ids().map(str::to_owned).collect(),
        }
    }

    fn canonical_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(b'[');
        for (i, entry) in self.plugins.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"config\":");
            write_canonical(&entry.config, &mut out);
            out.extend_from_slice(b",\"id\":");
            write_canonical(&Value::String(entry.id.clone()), &mut out);
            out.push(b'}');
        }
        out.push(b']');
        out
    }
}

/// Writes `value` with object members sorted by name at every depth, whatever order the
/// map type keeps (a dependency turning on serde_json's `preserve_order` must not change
/// a digest).
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<_> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (name, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(name.clone()), out);
                out.push(b':');
                write_canonical(member, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        // Scalars have one serde_json rendering; writing them cannot fail.
        scalar => out.extend_from_slice(&serde_json::to_vec(scalar).unwrap_or_default()),
    }
}

impl<'de> Deserialize<'de> for PluginSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let plugins = Vec::<PluginSetEntry>::deserialize(deserializer)?;
        Self::new(plugins).map_err(serde::de::Error::custom)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn check_id(id: &str) -> Result<(), PluginSetError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    match ok {
        true => Ok(()),
        false => Err(PluginSetError::BadId(id.to_owned())),
    }
}

/// The `ps` claim of a token: the effective plugin set's ids and the digest of its configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSetClaim {
    /// [`PluginSet::digest`] of the set the ids come from.
    pub cfg: String,
    /// Plugin ids, sorted and unique.
    pub ids: Vec<String>,
}

impl PluginSetClaim {
    /// Checks the claim's shape: ids well formed, sorted and unique, a well-formed digest.
    pub fn validate(&self) -> Result<(), PluginSetError> {
        if self.ids.len() > MAX_PLUGINS {
            return Err(PluginSetError::TooMany(self.ids.len()));
        }
        for id in &self.ids {
            check_id(id)?;
        }
        if let Some(pair) = self.ids.windows(2).find(|w| w[0] >= w[1]) {
            return Err(match pair[0] == pair[1] {
                true => PluginSetError::Duplicate(pair[1].clone()),
                false => PluginSetError::Unsorted(pair[1].clone()),
            });
        }
        let hex = self.cfg.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| HEX.contains(&b)) {
            return Err(PluginSetError::BadDigest(self.cfg.clone()));
        }
        Ok(())
    }

    /// Whether `set` is the set this claim was made from (same ids, same digest).
    pub fn matches(&self, set: &PluginSet) -> bool {
        self.ids.iter().map(String::as_str).eq(set.ids()) && self.cfg == set.digest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(id: &str, config: Value) -> PluginSetEntry {
        PluginSetEntry {
            id: id.into(),
            config,
        }
    }

    #[test]
    fn the_digest_ignores_entry_and_member_order_and_sees_every_config_change() {
        let a = PluginSet::new(vec![
            entry("policy.cedar", json!({"b": 1, "a": [1, 2]})),
            entry("identity.oidc", Value::Null),
        ])
        .expect("valid set");
        let b: PluginSet = serde_json::from_str(
            r#"[{"id":"identity.oidc"},{"config":{"a":[1,2],"b":1},"id":"policy.cedar"}]"#,
        )
        .expect("valid set");
        assert_eq!(a.digest(), b.digest());
        assert_eq!(
            a.ids().collect::<Vec<_>>(),
            ["identity.oidc", "policy.cedar"]
        );
        let c = PluginSet::new(vec![
            entry("policy.cedar", json!({"b": 2, "a": [1, 2]})),
            entry("identity.oidc", Value::Null),
        ])
        .expect("valid set");
        assert_ne!(a.digest(), c.digest());
        assert!(a.claim().matches(&a));
        assert!(!a.claim().matches(&c));
        a.claim().validate().expect("valid claim");
        assert_eq!(
            a.config("policy.cedar"),
            Some(&json!({"a": [1, 2], "b": 1}))
        );
        assert_eq!(a.config("reliability.rate-limit"), None);
    }

    #[test]
    fn a_digest_survives_the_trips_between_api_store_token_and_gateway() {
        // Numbers are read and written back at every hop: without exact float round trips
        // (serde_json's `float_roundtrip`), a digest taken at one hop would not match the
        // next one's for about one double in ten.
        let sent = r#"[{"id":"a","config":{"ratio":420.16494782257403420,"n":1e300,"x":0.1}}]"#;
        let first: PluginSet = serde_json::from_str(sent).expect("valid set");
        let stored = serde_json::to_string(&first).expect("serialises");
        let second: PluginSet = serde_json::from_str(&stored).expect("valid set");
        let served = serde_json::to_string(&second).expect("serialises");
        let third: PluginSet = serde_json::from_str(&served).expect("valid set");
        assert_eq!(first.digest(), second.digest());
        assert_eq!(second.digest(), third.digest());
    }

    #[test]
    fn bad_sets_are_refused_with_their_reason() {
        let dup = PluginSet::new(vec![entry("a.b", Value::Null), entry("a.b", json!(1))]);
        assert_eq!(dup, Err(PluginSetError::Duplicate("a.b".into())));
        let bad = PluginSet::new(vec![entry("Policy Cedar", Value::Null)]);
        assert_eq!(bad, Err(PluginSetError::BadId("Policy Cedar".into())));
        let big = PluginSet::new(vec![entry("a.b", json!("x".repeat(MAX_CONFIG_BYTES)))]);
        assert!(matches!(big, Err(PluginSetError::TooLarge(_))));
        let many = (0..=MAX_PLUGINS).map(|i| entry(&format!("p{i}"), Value::Null));
        assert_eq!(
            PluginSet::new(many.collect()),
            Err(PluginSetError::TooMany(MAX_PLUGINS + 1))
        );
        let unknown_member = serde_json::from_str::<PluginSet>(r#"[{"id":"a","cfg":1}]"#);
        assert!(unknown_member.is_err());
    }

    #[test]
    fn claims_with_a_bad_shape_are_refused() {
        let good = PluginSet::new(vec![entry("a", Value::Null)])
            .expect("valid set")
            .claim();
        let unsorted = PluginSetClaim {
            ids: vec!["b".into(), "a".into()],
            ..good.clone()
        };
        assert_eq!(
            unsorted.validate(),
            Err(PluginSetError::Unsorted("a".into()))
        );
        let digest = PluginSetClaim {
            cfg: "sha256:XYZ".into(),
            ..good
        };
        assert!(matches!(
            digest.validate(),
            Err(PluginSetError::BadDigest(_))
        ));
    }
}
