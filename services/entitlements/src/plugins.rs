//! Plugin name → catalog index, hashed with FNV-1a.
//!
//! The std map's SipHash guards against keys chosen to collide; the keys here are the
//! compiled-in catalog, which no caller chooses, so a hash that costs a few nanoseconds
//! on a 20-byte name is the better trade on the `check()` hot path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use mcpg_license_core::Catalog;

use crate::entitlements::PluginIndex;

/// Finds a plugin's catalog index without allocating.
#[derive(Debug)]
pub struct PluginTable {
    by_id: HashMap<&'static str, PluginIndex, BuildHasherDefault<Fnv1a>>,
    len: usize,
}

impl PluginTable {
    /// The table of `catalog`.
    pub fn new(catalog: &'static Catalog) -> Self {
        let by_id = catalog
            .plugins()
            .iter()
            .filter_map(|p| Some((p.id.as_str(), PluginIndex::resolve(catalog, &p.id)?)))
            .collect();
        Self {
            by_id,
            len: catalog.plugins().len(),
        }
    }

    /// How many plugins the catalog has (indices run from 0 to `len - 1`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the catalog has no plugins.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The index of `plugin`, or `None` when the catalog does not know it.
    #[inline]
    pub fn resolve(&self, plugin: &str) -> Option<PluginIndex> {
        self.by_id.get(plugin).copied()
    }
}

/// 64-bit FNV-1a.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_plugin_resolves_to_its_catalog_index() {
        let catalog = Catalog::builtin();
        let table = PluginTable::new(catalog);
        for plugin in catalog.plugins() {
            assert_eq!(
                table.resolve(&plugin.id),
                PluginIndex::resolve(catalog, &plugin.id)
            );
        }
        assert_eq!(table.resolve("shadow.exfiltrate"), None);
    }
}
