//! The plugin catalog: plugin id → required entitlement and lowest tier, compiled in from
//! `catalog/plugins.toml`.
//!
//! Unknown plugins are denied (fail closed). Every plugin has a dense index so gateways can
//! keep per-plugin answers in a bitset.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::entitlement::{EntitlementId, EntitlementSet};
use crate::tier::Tier;

const CATALOG_TOML: &str = include_str!("../catalog/plugins.toml");

/// One plugin of the catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// Plugin id as the gateway names it (`policy.cedar`).
    pub id: String,
    /// The entitlement that unlocks it.
    pub entitlement: EntitlementId,
    /// The lowest tier whose default set includes the entitlement.
    pub tier: Tier,
    /// One line for humans.
    pub summary: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    version: u32,
    plugin: Vec<PluginSpec>,
}

/// The plugin catalog.
#[derive(Debug)]
pub struct Catalog {
    version: u32,
    plugins: Vec<PluginSpec>,
    by_id: HashMap<String, usize>,
}

/// An entitlement id the catalog does not know, with the catalog id it most likely meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEntitlement {
    /// The id as written.
    pub id: EntitlementId,
    /// The one catalog id close to it, if there is one.
    pub suggestion: Option<EntitlementId>,
}

impl fmt::Display for UnknownEntitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.suggestion {
            Some(meant) => write!(f, "{} (did you mean {meant}?)", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// The entitlement ids of a license that the catalog does not know (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown entitlement{}: {}; the plugin catalog (version {catalog_version}) does not list {}",
    if unknown.len() == 1 { "" } else { "s" },
    unknown.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
    if unknown.len() == 1 { "it" } else { "them" }
)]
pub struct UnknownEntitlements {
    /// Each unknown id once, in the order written.
    pub unknown: Vec<UnknownEntitlement>,
    /// The version of the catalog that was asked.
    pub catalog_version: u32,
}

/// Why the catalog denies a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogDenial {
    /// The catalog does not know the plugin.
    UnknownPlugin,
    /// The set lacks the plugin's entitlement.
    NotEntitled,
}

impl Catalog {
    /// The catalog compiled into this build.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            // The file is part of the source tree and a unit test parses it, so failing here
            // means a broken build, not bad input.
            Catalog::parse(CATALOG_TOML).expect("catalog/plugins.toml is valid")
        })
    }

    /// Parses a catalog document.
    pub fn parse(text: &str) -> Result<Catalog, String> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_id = HashMap::new();
        for (i, plugin) in file.plugin.iter().enumerate() {
            if by_id.insert(plugin.id.clone(), i).is_some() {
                return Err(format!("plugin {} is listed twice", plugin.id));
            }
        }
        Ok(Catalog {
            version: file.version,
            plugins: file.plugin,
            by_id,
        })
    }

    /// The catalog's version number.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Every plugin, in catalog order; `index_of` gives positions in this slice.
    pub fn plugins(&self) -> &[PluginSpec] {
        &self.plugins
    }

    /// The plugin's position in [`Catalog::plugins`].
    pub fn index_of(&self, plugin: &str) -> Option<usize> {
        self.by_id.get(plugin).copied()
    }

    /// The plugin's entry.
    pub fn get(&self, plugin: &str) -> Option<&PluginSpec> {
        self.index_of(plugin).map(|i| &self.plugins[i])
    }

    /// Whether some plugin of the catalog is unlocked by `id`.
    pub fn knows(&self, id: &EntitlementId) -> bool {
        self.plugins.iter().any(|p| p.entitlement == *id)
    }

    /// Refuses entitlement ids no plugin of the catalog names (a typo, or a plugin that
    /// ships later), each with a did-you-mean suggestion when one catalog id is close.
    pub fn check_known<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a EntitlementId>,
    ) -> Result<(), UnknownEntitlements> {
        let mut unknown: Vec<UnknownEntitlement> = Vec::new();
        for id in ids {
            if self.knows(id) || unknown.iter().any(|u| u.id == *id) {
                continue;
            }
            let known = self.plugins.iter().map(|p| p.entitlement.as_str());
            let suggestion = crate::suggest::closest(id.as_str(), known)
                .and_then(|meant| EntitlementId::parse(meant).ok());
            unknown.push(UnknownEntitlement {
                id: id.clone(),
                suggestion,
            });
        }
        if unknown.is_empty() {
            return Ok(());
        }
        Err(UnknownEntitlements {
            unknown,
            catalog_version: self.version,
        })
    }

    /// The entitlements a tier includes by default.
    pub fn tier_defaults(&self, tier: Tier) -> EntitlementSet {
        self.plugins
            .iter()
            .filter(|p| p.tier <= tier)
            .map(|p| p.entitlement.clone())
            .collect()
    }

    /// The entitlements of a license: the tier's defaults, plus `add`, minus `remove`.
    pub fn license_entitlements<'a>(
        &self,
        tier: Tier,
        add: impl IntoIterator<Item = &'a EntitlementId>,
        remove: impl IntoIterator<Item = &'a EntitlementId>,
    ) -> EntitlementSet {
        let mut set = self.tier_defaults(tier);
        for id in add {
            set.insert(id.clone());
        }
        for id in remove {
            set.remove(id.as_str());
        }
        set
    }

    /// Whether `entitlements` allows `plugin`.
    pub fn decide(&self, plugin: &str, entitlements: &EntitlementSet) -> Result<(), CatalogDenial> {
        match self.get(plugin) {
            None => Err(CatalogDenial::UnknownPlugin),
            Some(spec) if entitlements.contains(spec.entitlement.as_str()) => Ok(()),
            Some(_) => Err(CatalogDenial::NotEntitled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_the_required_plugins() {
        let catalog = Catalog::builtin();
        for id in [
            "identity.apikey",
            "identity.oidc",
            "identity.saml",
            "policy.cedar",
            "reliability.retry",
            "reliability.rate-limit",
            "observability.metrics",
            "observability.audit",
            "workspace.rbac",
            "environment.rbac",
            "tenancy.subdomain-routing",
            "federation.byoc",
        ] {
            assert!(catalog.get(id).is_some(), "{id} missing");
        }
        assert_eq!(
            catalog.get("workspace.rbac").map(|p| p.tier),
            Some(Tier::Team)
        );
        assert_eq!(
            catalog.get("environment.rbac").map(|p| p.tier),
            Some(Tier::Enterprise)
        );
    }

    #[test]
    fn tier_defaults_grow_with_the_tier() {
        let catalog = Catalog::builtin();
        let free = catalog.tier_defaults(Tier::Free);
        let team = catalog.tier_defaults(Tier::Team);
        let enterprise = catalog.tier_defaults(Tier::Enterprise);
        assert!(free.is_subset(&team) && team.is_subset(&enterprise));
        assert!(team.contains("feature:workspace.rbac"));
        assert!(!team.contains("feature:environment.rbac"));
        assert!(enterprise.contains("feature:environment.rbac"));
        assert_eq!(enterprise.len(), catalog.plugins().len());
    }

    #[test]
    fn unknown_plugins_are_denied() {
        let catalog = Catalog::builtin();
        let all = catalog.tier_defaults(Tier::Enterprise);
        assert_eq!(
            catalog.decide("shadow.exfiltrate", &all),
            Err(CatalogDenial::UnknownPlugin)
        );
        assert_eq!(
            catalog.decide("policy.cedar", &catalog.tier_defaults(Tier::Free)),
            Err(CatalogDenial::NotEntitled)
        );
        assert_eq!(catalog.decide("policy.cedar", &all), Ok(()));
    }

    #[test]
    fn license_adds_and_removes_entitlements() {
        let catalog = Catalog::builtin();
        let cedar = EntitlementId::parse("plugin:policy.cedar").expect("valid");
        let audit = EntitlementId::parse("plugin:observability.audit").expect("valid");
        let set = catalog.license_entitlements(Tier::Team, [&cedar], [&audit]);
        assert!(set.contains("plugin:policy.cedar"));
        assert!(!set.contains("plugin:observability.audit"));
    }

    #[test]
    fn unknown_entitlements_are_named_once_with_a_suggestion_when_one_is_close() {
        let catalog = Catalog::builtin();
        let id = |s: &str| EntitlementId::parse(s).expect("valid");
        let known = [id("plugin:policy.cedar"), id("feature:workspace.rbac")];
        assert_eq!(catalog.check_known(&known), Ok(()));
        let typo = id("plugin:policy.cedr");
        let future = id("plugin:billing.stripe");
        let error = catalog
            .check_known([&known[0], &typo, &future, &typo])
            .expect_err("unknown ids");
        assert_eq!(error.unknown.len(), 2);
        assert_eq!(error.unknown[0].id, typo);
        assert_eq!(error.unknown[0].suggestion, Some(id("plugin:policy.cedar")));
        assert_eq!(error.unknown[1].suggestion, None);
        assert_eq!(
            error.to_string(),
            format!(
                "unknown entitlements: plugin:policy.cedr (did you mean plugin:policy.cedar?), \
                 plugin:billing.stripe; the plugin catalog (version {}) does not list them",
                catalog.version()
            )
        );
    }

    #[test]
    fn readme_table_matches_the_catalog() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md at the workspace root");
        for plugin in Catalog::builtin().plugins() {
            let row = format!(
                "| `{}` | `{}` | {} | {} |",
                plugin.id, plugin.entitlement, plugin.tier, plugin.summary
            );
            assert!(readme.contains(&row), "README lacks the catalog row {row}");
        }
    }

    #[test]
    fn duplicate_plugins_are_refused() {
        let doc = r#"version = 1
[[plugin]]
id = "a"
entitlement = "plugin:a"
tier = "free"
summary = "x"
[[plugin]]
id = "a"
entitlement = "plugin:a"
tier = "free"
summary = "x"
"#;
        assert!(Catalog::parse(doc).is_err());
    }
}
