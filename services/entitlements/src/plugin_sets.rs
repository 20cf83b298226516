//! Plugin sets on the gateway side.
//!
//! A token for a workspace or environment with a plugin set carries the signed `ps` claim
//! (ids and a digest of the configs); the token response carries the configs beside it
//! (`plugin_set`). The configs are accepted only when the signed claim vouches for them
//! ([`PluginSetClaim::matches`]): a token with `ps` and no matching `plugin_set` makes the
//! whole response invalid, like a token that fails verification. A `plugin_set` without a
//! `ps` claim is ignored. The accepted set is kept beside the token in the state directory
//! and checked against the token's claim again when it is read back.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use mcpg_license_core::{LicenseClaims, PluginSet, PluginSetClaim, PluginSetEntry};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::entitlements::TenantHandle;
use crate::files::{MAX_STATE_FILE, read_bounded};
use crate::store::{StateStore, StoreError, write_bytes};

/// Format of the persisted plugin set file.
const FORMAT_VERSION: u32 = 1;

/// The plugin set in force for a tenant: the ids and digest its token signs and, when
/// available, the configs that digest vouches for.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantPluginSet {
    digest: String,
    ids: Vec<String>,
    /// Sorted by id; `None` when the configs are not available (a persisted set that did
    /// not match its token was discarded): the ids still decide, the configs come with the
    /// next refresh.
    configs: Option<Vec<(String, Arc<Value>)>>,
}

impl TenantPluginSet {
    /// The set a verified claim names, with the configs of `set` (which must match it).
    fn new(claim: &PluginSetClaim, set: Option<&PluginSet>) -> Self {
        Self {
            digest: claim.cfg.clone(),
            ids: claim.ids.clone(),
            configs: set.map(|set| {
                set.plugins()
                    .iter()
                    .map(|e| (e.id.clone(), Arc::new(e.config.clone())))
                    .collect()
            }),
        }
    }

    /// The signed digest of the configs (`sha256:…`).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The plugin ids, sorted, including any this gateway's catalog does not know.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Whether the set names `plugin`.
    pub fn contains(&self, plugin: &str) -> bool {
        self.ids
            .binary_search_by(|id| id.as_str().cmp(plugin))
            .is_ok()
    }

    /// Whether the configs are known (else only the ids are, until the next refresh).
    pub fn configs_available(&self) -> bool {
        self.configs.is_some()
    }

    /// The config of `plugin`: `None` when the set does not name it, names it without a
    /// config (`null`), or the configs are not available.
    pub fn config(&self, plugin: &str) -> Option<Arc<Value>> {
        let configs = self.configs.as_ref()?;
        let i = configs
            .binary_search_by(|(id, _)| id.as_str().cmp(plugin))
            .ok()?;
        let config = &configs[i].1;
        (!config.is_null()).then(|| config.clone())
    }

    /// Every plugin with its config (`null` when it has none), sorted by id; `None` when
    /// the configs are not available.
    pub fn plugins(&self) -> Option<Vec<PluginSetEntry>> {
        let configs = self.configs.as_ref()?;
        let entries = configs.iter().map(|(id, config)| PluginSetEntry {
            id: id.clone(),
            config: Value::clone(config),
        });
        Some(entries.collect())
    }
}

/// Why the plugin set of a token response was not accepted (the whole response is then
/// treated as invalid: nothing from it is used or kept).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum PluginSetRejection {
    /// The token names a set but the response carries none.
    #[error("the token names plugin set {0} but the response carries no plugin_set")]
    Missing(String),
    /// The response's `plugin_set` is not a valid set.
    #[error("the response's plugin_set is not a valid plugin set: {0}")]
    Invalid(String),
    /// The served configs are not the ones the token signs.
    #[error("the served plugin set (digest {served}) is not the one the token signs ({signed})")]
    Mismatch {
        /// The digest in the token's `ps` claim.
        signed: String,
        /// The digest recomputed from the served plugins.
        served: String,
    },
}

/// The `plugin_set` member of a token response.
#[derive(Debug, Deserialize)]
struct ServedPluginSet {
    plugins: Vec<PluginSetEntry>,
}

/// The plugin set to install with a verified token: `None` when the token names none (a
/// served `plugin_set` is then ignored), the served configs when the token's claim vouches
/// for them, else a rejection.
pub(crate) fn accept(
    claims: &LicenseClaims,
    served: Option<&Value>,
) -> Result<Option<Arc<TenantPluginSet>>, PluginSetRejection> {
    let Some(claim) = &claims.ps else {
        return Ok(None);
    };
    let served = served.ok_or_else(|| PluginSetRejection::Missing(claim.cfg.clone()))?;
    let served = ServedPluginSet::deserialize(served)
        .map_err(|e| PluginSetRejection::Invalid(e.to_string()))?;
    let set =
        PluginSet::new(served.plugins).map_err(|e| PluginSetRejection::Invalid(e.to_string()))?;
    if !claim.matches(&set) {
        return Err(PluginSetRejection::Mismatch {
            signed: claim.cfg.clone(),
            served: set.digest(),
        });
    }
    Ok(Some(Arc::new(TenantPluginSet::new(claim, Some(&set)))))
}

/// The plugin set to install with a token read back from the state directory: the
/// persisted configs when they match the token's claim; otherwise (missing, unreadable,
/// edited) the claim's ids without configs, with a warning. The `bool` is whether the
/// configs were restored.
pub(crate) fn restore(
    claims: &LicenseClaims,
    persisted: Result<Option<PluginSet>, StoreError>,
) -> Option<(Arc<TenantPluginSet>, bool)> {
    let claim = claims.ps.as_ref()?;
    let set = match persisted {
        Ok(Some(set)) if claim.matches(&set) => Some(set),
        Ok(Some(set)) => {
            tracing::warn!(signed = %claim.cfg, found = %set.digest(), "discarding a persisted plugin set that is not the one the token signs; its configs come with the next refresh");
            None
        }
        Ok(None) => {
            tracing::warn!(signed = %claim.cfg, "the persisted token names a plugin set but none was kept; its configs come with the next refresh");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "discarding an unreadable persisted plugin set; its configs come with the next refresh");
            None
        }
    };
    let restored = set.is_some();
    Some((
        Arc::new(TenantPluginSet::new(claim, set.as_ref())),
        restored,
    ))
}

/// The plugin set file: the configs of the token beside it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersistedPluginSet {
    version: u32,
    credential_sha256: String,
    plugins: Vec<PluginSetEntry>,
}

impl StateStore {
    /// The file of the credential's plugin set with `digest` (`sha256:…`). Named by the
    /// digest: a refresh writes the new set's file before the token and removes the old
    /// one after it, so a crash in between leaves the file the kept token names.
    pub fn plugin_set_path(&self, fingerprint: &str, digest: &str) -> PathBuf {
        let short = fingerprint.get(..16).unwrap_or(fingerprint);
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let hex: String = hex
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(16)
            .collect();
        self.dir().join(format!("plugin-set-{short}-{hex}.json"))
    }

    /// Keeps the configs of `set` for the credential (atomically, like the token), beside
    /// any older set's file until [`StateStore::prune_plugin_sets`]. Nothing read back is
    /// trusted: [`restore`] checks it against the token's claim.
    pub(crate) fn save_plugin_set(
        &self,
        fingerprint: &str,
        set: &TenantPluginSet,
    ) -> Result<(), StoreError> {
        let path = self.plugin_set_path(fingerprint, set.digest());
        let Some(plugins) = set.plugins() else {
            // Only the ids are known: whatever the file holds cannot be the right configs.
            return self.prune_plugin_sets(fingerprint, None);
        };
        let record = PersistedPluginSet {
            version: FORMAT_VERSION,
            credential_sha256: fingerprint.to_owned(),
            plugins,
        };
        // Compact: configs are bounded as canonical JSON, pretty printing could triple them.
        let bytes = serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_bytes(self.dir(), &path, &bytes)
    }

    /// Removes the credential's plugin set files but the one with `keep` (the digest the
    /// persisted token names; `None`: all of them).
    pub(crate) fn prune_plugin_sets(
        &self,
        fingerprint: &str,
        keep: Option<&str>,
    ) -> Result<(), StoreError> {
        let short = fingerprint.get(..16).unwrap_or(fingerprint);
        let prefix = format!("plugin-set-{short}");
        let kept = keep.map(|digest| self.plugin_set_path(fingerprint, digest));
        let entries = std::fs::read_dir(self.dir()).map_err(|source| StoreError::Io {
            action: "listing",
            path: self.dir().to_owned(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let ours = entry.file_name().to_string_lossy().starts_with(&prefix);
            if !ours || kept.as_ref() == Some(&path) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(StoreError::Io {
                        action: "removing",
                        path,
                        source: e,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The credential's kept plugin set with `digest`; `Ok(None)` when there is none.
    pub(crate) fn load_plugin_set(
        &self,
        fingerprint: &str,
        digest: &str,
    ) -> Result<Option<PluginSet>, StoreError> {
        let path = self.plugin_set_path(fingerprint, digest);
        let bytes = match read_bounded(&path, MAX_STATE_FILE) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    action: "reading",
                    path,
                    source,
                });
            }
        };
        let corrupt = |message: String| StoreError::Corrupt {
            path: path.clone(),
            message,
        };
        let record: PersistedPluginSet =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if record.version != FORMAT_VERSION {
            return Err(corrupt("unknown format version".into()));
        }
        if record.credential_sha256 != fingerprint {
            return Err(corrupt("written for another credential".into()));
        }
        PluginSet::new(record.plugins)
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }
}

impl TenantHandle {
    /// The config of `plugin` in the tenant's plugin set, if the set in force names it with
    /// one. Not on the hot path: call it when loading a plugin, after [`TenantHandle::check`]
    /// allowed it.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # let (dir, config) = include!("../doc/offline_gateway.rs");
    /// # let settings = mcpg_entitlements::GatewayConfig::load(&config)?.resolve(dir.path())?;
    /// # let gateway = mcpg_entitlements::GatewayBuilder::new(settings).build()?;
    /// use serde_json::Value;
    ///
    /// let handle = gateway.default_handle();
    /// let plugin = "identity.oidc";
    /// if handle.check(plugin).allowed {
    ///     // Federated tokens may name a plugin set with a config per plugin; this
    ///     // gateway's offline license names none, so the plugin's own defaults apply.
    ///     let config = handle.plugin_config(plugin);
    ///     assert!(config.is_none());
    ///     let issuer = config.as_deref().and_then(|c| c.get("issuer")).and_then(Value::as_str);
    ///     assert_eq!(issuer.unwrap_or("https://default.idp"), "https://default.idp");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn plugin_config(&self, plugin: &str) -> Option<Arc<Value>> {
        self.inner.current.load().plugin_set()?.config(plugin)
    }

    /// The plugin set in force, if the tenant's token names one.
    pub fn plugin_set(&self) -> Option<Arc<TenantPluginSet>> {
        self.inner.current.load().plugin_set().cloned()
    }
}

#[cfg(test)]
#[path = "plugin_sets_tests.rs"]
mod tests;
