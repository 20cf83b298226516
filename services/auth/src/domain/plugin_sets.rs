//! What the service checks of a plugin set against the catalog and an org's license: every
//! plugin known to the catalog, every plugin entitled by the license in force, and which
//! sets a license change would leave naming plugins it no longer entitles. Pure.

use mcpg_license_core::suggest::closest;
use mcpg_license_core::{Catalog, EntitlementId, EntitlementSet, PluginSet};
use serde::Serialize;

/// A plugin id the catalog does not know, with the catalog id it most likely meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownPlugin {
    /// The id as written.
    pub(crate) id: String,
    /// The one catalog id close to it, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) suggestion: Option<String>,
}

/// A plugin of a set that an entitlement set does not allow, with what it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnentitledPlugin {
    /// Plugin id.
    pub(crate) id: String,
    /// The entitlement that unlocks it.
    pub(crate) entitlement: EntitlementId,
}

/// Why a plugin set is refused for an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSetRefusal {
    /// Plugins the catalog does not know (each once, in set order).
    Unknown(Vec<UnknownPlugin>),
    /// Plugins the org's license in force does not entitle.
    NotEntitled(Vec<UnentitledPlugin>),
}

impl PluginSetRefusal {
    /// The refusal in words, naming every plugin.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Unknown(plugins) => {
                let named: Vec<String> = plugins
                    .iter()
                    .map(|p| match &p.suggestion {
                        Some(meant) => format!("{} (did you mean {meant}?)", p.id),
                        None => p.id.clone(),
                    })
                    .collect();
                format!(
                    "unknown plugin{}: {}; the plugin catalog (version {}) does not list {}",
                    plural(plugins.len()),
                    named.join(", "),
                    Catalog::builtin().version(),
                    if plugins.len() == 1 { "it" } else { "them" }
                )
            }
            Self::NotEntitled(plugins) => format!(
                "the organization's license does not entitle {}",
                describe(plugins)
            ),
        }
    }
}

/// `id (needs entitlement)`, comma separated.
pub(crate) fn describe(plugins: &[UnentitledPlugin]) -> String {
    plugins
        .iter()
        .map(|p| format!("{} (needs {})", p.id, p.entitlement))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Checks every plugin of `set` is in the catalog, then that `entitlements` allow each.
pub(crate) fn check_plugin_set(
    set: &PluginSet,
    entitlements: &EntitlementSet,
) -> Result<(), PluginSetRefusal> {
    let catalog = Catalog::builtin();
    let unknown: Vec<UnknownPlugin> = set
        .ids()
        .filter(|id| catalog.get(id).is_none())
        .map(|id| UnknownPlugin {
            id: id.to_owned(),
            suggestion: closest(id, catalog.plugins().iter().map(|p| p.id.as_str()))
                .map(str::to_owned),
        })
        .collect();
    if !unknown.is_empty() {
        return Err(PluginSetRefusal::Unknown(unknown));
    }
    let missing = unentitled(set, entitlements);
    match missing.is_empty() {
        true => Ok(()),
        false => Err(PluginSetRefusal::NotEntitled(missing)),
    }
}

/// The plugins of `set` the catalog knows and `entitlements` do not allow.
pub(crate) fn unentitled(set: &PluginSet, entitlements: &EntitlementSet) -> Vec<UnentitledPlugin> {
    let catalog = Catalog::builtin();
    set.ids()
        .filter_map(|id| catalog.get(id))
        .filter(|spec| !entitlements.contains(spec.entitlement.as_str()))
        .map(|spec| UnentitledPlugin {
            id: spec.id.clone(),
            entitlement: spec.entitlement.clone(),
        })
        .collect()
}

/// A plugin set a license change takes plugins from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffectedSet {
    /// Workspace slug.
    pub(crate) workspace: String,
    /// Environment slug, for an environment's own set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) environment: Option<String>,
    /// What it loses.
    pub(crate) plugins: Vec<UnentitledPlugin>,
}

impl AffectedSet {
    /// `ws` or `ws/env`.
    pub(crate) fn place(&self) -> String {
        match &self.environment {
            Some(env) => format!("{}/{env}", self.workspace),
            None => self.workspace.clone(),
        }
    }
}

/// The plugins of `set` that `before` entitles and `after` does not: what a license change
/// from `before` to `after` takes from the set's gateways.
pub(crate) fn lost(
    set: &PluginSet,
    before: &EntitlementSet,
    after: &EntitlementSet,
) -> Vec<UnentitledPlugin> {
    unentitled(set, after)
        .into_iter()
        .filter(|p| before.contains(p.entitlement.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpg_license_core::{PluginSetEntry, Tier};

    fn set(ids: &[&str]) -> PluginSet {
        PluginSet::new(
            ids.iter()
                .map(|id| PluginSetEntry {
                    id: (*id).to_owned(),
                    config: serde_json::Value::Null,
                })
                .collect(),
        )
        .expect("valid set")
    }

    fn tier(tier: Tier) -> EntitlementSet {
        Catalog::builtin().tier_defaults(tier)
    }

    #[test]
    fn unknown_plugins_are_named_with_a_suggestion() {
        let refused = check_plugin_set(&set(&["policy.cedr"]), &tier(Tier::Enterprise));
        let Err(PluginSetRefusal::Unknown(unknown)) = refused else {
            panic!("expected unknown, got {refused:?}");
        };
        assert_eq!(unknown[0].suggestion.as_deref(), Some("policy.cedar"));
        assert!(
            PluginSetRefusal::Unknown(unknown)
                .message()
                .contains("did you mean policy.cedar?")
        );
    }

    #[test]
    fn a_team_license_does_not_entitle_an_enterprise_plugin() {
        let refused = check_plugin_set(&set(&["identity.oidc", "policy.cedar"]), &tier(Tier::Team));
        assert_eq!(
            refused,
            Err(PluginSetRefusal::NotEntitled(vec![UnentitledPlugin {
                id: "policy.cedar".into(),
                entitlement: EntitlementId::parse("plugin:policy.cedar").expect("id"),
            }]))
        );
        assert!(check_plugin_set(&set(&["policy.cedar"]), &tier(Tier::Enterprise)).is_ok());
    }

    #[test]
    fn a_downgrade_loses_only_what_the_old_license_entitled() {
        let s = set(&["identity.oidc", "policy.cedar"]);
        let lost_ids: Vec<String> = lost(&s, &tier(Tier::Enterprise), &tier(Tier::Free))
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(lost_ids, ["identity.oidc", "policy.cedar"]);
        assert!(lost(&s, &tier(Tier::Team), &tier(Tier::Team)).is_empty());
        assert_eq!(lost(&s, &tier(Tier::Team), &tier(Tier::Free)).len(), 1);
    }
}
