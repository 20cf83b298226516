//! One prepared copy of each distinct plugin set, shared by every cached grant that
//! carries it: a fleet of 100,000 gateways in one workspace holds one parsed set, one `ps`
//! claim and one rendered token-response member, not 100,000 (a set's configs may take up
//! to 64 KiB). Keyed by the set's stored text, so equal text is one entry and a changed set
//! is a new one; the old entry ages out (bounded by total size).

use std::sync::Arc;

use mcpg_license_core::{PluginSet, PluginSetClaim};
use moka::sync::Cache;

use crate::infra::store::StoreError;

/// A plugin set as the token endpoint uses it.
#[derive(Debug)]
pub(crate) struct PreparedPluginSet {
    /// The `ps` claim.
    pub(crate) claim: PluginSetClaim,
    /// The token response's `plugin_set` member (`{"digest","plugins"}`), rendered once.
    pub(crate) json: Arc<str>,
}

/// The most bytes of stored text the cache keeps (each entry weighs its text twice: the
/// key and the rendered member).
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Prepared plugin sets by stored text.
#[derive(Debug)]
pub(crate) struct PluginSetCache {
    sets: Cache<Arc<str>, Arc<PreparedPluginSet>>,
}

impl Default for PluginSetCache {
    fn default() -> Self {
        Self {
            sets: Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(|text: &Arc<str>, set: &Arc<PreparedPluginSet>| {
                    u32::try_from(text.len() + set.json.len()).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }
}

impl PluginSetCache {
    /// The prepared set of `text` (a stored `plugin_sets.plugins`), parsed on first sight.
    pub(crate) fn prepare(&self, text: &str) -> Result<Arc<PreparedPluginSet>, StoreError> {
        if let Some(found) = self.sets.get(text) {
            return Ok(found);
        }
        let set: PluginSet =
            serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let claim = set.claim();
        let member = serde_json::json!({"digest": claim.cfg, "plugins": set});
        let prepared = Arc::new(PreparedPluginSet {
            claim,
            json: Arc::from(member.to_string()),
        });
        self.sets.insert(Arc::from(text), prepared.clone());
        Ok(prepared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_text_is_one_shared_copy_and_bad_text_is_corrupt() {
        let cache = PluginSetCache::default();
        let text = r#"[{"id":"policy.cedar","config":{"bundle":"oci://x"}}]"#;
        let a = cache.prepare(text).expect("valid");
        let b = cache.prepare(text).expect("valid");
        assert!(Arc::ptr_eq(&a, &b), "one copy per distinct set");
        assert_eq!(a.claim.ids, ["policy.cedar"]);
        assert!(a.json.contains(&a.claim.cfg));
        let other = cache
            .prepare(r#"[{"id":"policy.cedar","config":{"bundle":"oci://y"}}]"#)
            .expect("valid");
        assert_ne!(other.claim.cfg, a.claim.cfg);
        assert!(matches!(cache.prepare("[{"), Err(StoreError::Corrupt(_))));
    }
}
