//! Tier gating at use: which of a principal's bindings the org's license entitles now.
//! A binding below the org needs its level's feature (`feature:workspace.rbac`,
//! `feature:environment.rbac`); one the license does not entitle — no license, an ended or
//! revoked one, or a downgrade — is inert: it grants nothing and is listed as inactive, and
//! it takes effect again, unchanged, when the entitlement returns. Stored bindings and
//! roles mapped from an org's identity provider go through this one rule; granting checks
//! it too, but only this check at every request guarantees the property.

use mcpg_license_core::EntitlementSet;
use serde::Serialize;

use super::{Binding, Grants};

/// Why a binding grants nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Inactive {
    /// The org's license does not include the feature the binding's level needs.
    EntitlementRequired,
}

impl Binding {
    /// The entitlement this binding needs to take effect: that of its role's level. A stored
    /// binding is made at its role's level; a role mapped from an IdP applies org-wide but is
    /// still a workspace (`operator`) or environment (`viewer`) role, so it needs the same.
    pub(crate) fn required_entitlement(&self) -> Option<&'static str> {
        self.role.level().required_entitlement()
    }

    /// Why this binding is inert under `entitlements`, or `None` when it is in effect.
    pub(crate) fn inactive(&self, entitlements: &EntitlementSet) -> Option<Inactive> {
        self.required_entitlement()
            .filter(|needed| !entitlements.contains(needed))
            .map(|_| Inactive::EntitlementRequired)
    }
}

/// Whether any binding needs an entitlement: if none does, the license need not be read.
pub(crate) fn needs_license(bindings: &[Binding]) -> bool {
    bindings.iter().any(|b| b.required_entitlement().is_some())
}

/// A user's bindings in an org, split by what the org's license entitles now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gated {
    /// What the bindings in effect allow.
    pub(crate) grants: Grants,
    /// The bindings the license does not entitle: they allow nothing.
    pub(crate) inert: Vec<Binding>,
}

impl Gated {
    /// Grants that no binding restricts (an admin key, a global admin, an impersonation).
    pub(crate) fn ungated(grants: Grants) -> Self {
        Self {
            grants,
            inert: Vec::new(),
        }
    }

    /// Splits `bindings` by `entitlements`.
    pub(crate) fn split(bindings: Vec<Binding>, entitlements: &EntitlementSet) -> Self {
        let (inert, active): (Vec<_>, Vec<_>) = bindings
            .into_iter()
            .partition(|b| b.inactive(entitlements).is_some());
        Self {
            grants: Grants::Bindings(active),
            inert,
        }
    }

    /// Whether the principal belongs to the org at all (an inert binding counts: its holder
    /// knows the org, and is told why it may do nothing rather than that it does not exist).
    pub(crate) fn belongs(&self) -> bool {
        self.grants.sees_org() || !self.inert.is_empty()
    }

    /// The entitlements the inert bindings lack, sorted and without repeats.
    pub(crate) fn missing(&self) -> Vec<&'static str> {
        let mut missing: Vec<_> = self
            .inert
            .iter()
            .filter_map(Binding::required_entitlement)
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    /// Whether the inert bindings would have allowed `action`: the refusal then names the
    /// entitlement rather than the role.
    pub(crate) fn inert_would_allow(&self, action: super::Action<'_>) -> bool {
        Grants::Bindings(self.inert.clone()).allows(action)
    }
}

#[cfg(test)]
mod tests {
    use mcpg_license_core::{Catalog, Tier};

    use super::*;
    use crate::domain::rbac::{Action, Role, Scope};

    fn binding(role: Role, scope: Scope) -> Binding {
        Binding { role, scope }
    }

    #[test]
    fn a_binding_below_the_org_is_inert_without_its_feature_and_org_roles_never_are() {
        let op = binding(Role::Operator, Scope::Workspace("ws".into()));
        let viewer = binding(Role::Viewer, Scope::Environment("ws".into(), "prod".into()));
        let admin = binding(Role::Admin, Scope::Org);
        let idp_operator = binding(Role::Operator, Scope::Org);
        let catalog = Catalog::builtin();
        let table = [
            (EntitlementSet::new(), [true, true, false, true]),
            (
                catalog.tier_defaults(Tier::Team),
                [false, true, false, false],
            ),
            (
                catalog.tier_defaults(Tier::Enterprise),
                [false, false, false, false],
            ),
        ];
        for (set, inert) in table {
            let got = [&op, &viewer, &admin, &idp_operator].map(|b| b.inactive(&set).is_some());
            assert_eq!(got, inert, "{set:?}");
        }
    }

    #[test]
    fn inert_bindings_allow_nothing_but_still_name_their_org_and_missing_feature() {
        let gated = Gated::split(
            vec![binding(Role::Operator, Scope::Workspace("ws".into()))],
            &EntitlementSet::new(),
        );
        assert!(!gated.grants.allows(Action::ManageGateways("ws", "prod")));
        assert!(!gated.grants.sees_org());
        assert!(gated.belongs());
        assert!(gated.inert_would_allow(Action::ManageGateways("ws", "prod")));
        assert_eq!(gated.missing(), ["feature:workspace.rbac"]);
    }
}
