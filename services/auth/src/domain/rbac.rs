//! Roles, scopes and the decision of what a principal may do inside an org. Pure: the
//! bindings come from the store, the decision is a function of them.
//!
//! | role       | bound on    | may                                                        |
//! |------------|-------------|------------------------------------------------------------|
//! | `admin`    | org         | everything in the org: workspaces, environments, gateways, |
//! |            |             | users, tokens, bindings; read the license                  |
//! | `operator` | workspace   | register, list, revoke gateways in its workspace; read it; |
//! |            |             | set and remove its plugin sets                             |
//! | `viewer`   | environment | read its environment's gateways and plugin set (and the    |
//! |            |             | workspace's it inherits); read the license                 |
//!
//! The effective role at a place is the highest binding on the environment, its workspace
//! or the org. License writes and org create/update/delete are for the global admin only.
//! A binding below the org takes effect only while the org's license includes its level's
//! feature ([`gating`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::UnknownValue;

mod gating;
pub(crate) use gating::{Gated, Inactive, needs_license};

/// The longest email accepted (RFC 5321 path limit).
pub(crate) const MAX_EMAIL_LEN: usize = 254;

/// A user's email, normalized to lowercase: `local@domain`, printable, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub(crate) struct Email(String);

/// A string that is not an email address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid email {0:?}: expected local@domain, at most 254 printable characters")]
pub(crate) struct EmailError(pub(crate) String);

impl Email {
    /// Checks and normalizes `text`.
    pub(crate) fn parse(text: &str) -> Result<Self, EmailError> {
        let text = text.trim();
        let valid = text.len() <= MAX_EMAIL_LEN
            && text.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            })
            && text
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | '?' | '#' | '%'));
        if valid {
            Ok(Self(text.to_ascii_lowercase()))
        } else {
            Err(EmailError(text.chars().take(80).collect()))
        }
    }

    /// The address.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Email::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A role, ordered from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Role {
    /// Read-only on an environment.
    Viewer,
    /// Gateway lifecycle in a workspace.
    Operator,
    /// Everything in an org.
    Admin,
}

impl Role {
    /// The stored form.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The scope level a binding of this role is made at.
    pub(crate) const fn level(self) -> ScopeLevel {
        match self {
            Role::Admin => ScopeLevel::Org,
            Role::Operator => ScopeLevel::Workspace,
            Role::Viewer => ScopeLevel::Environment,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownValue(other.to_owned())),
        }
    }
}

/// The level of a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScopeLevel {
    /// The whole org.
    Org,
    /// One workspace.
    Workspace,
    /// One environment.
    Environment,
}

impl ScopeLevel {
    /// The entitlement a binding at this level needs in the org's license, if any.
    pub(crate) const fn required_entitlement(self) -> Option<&'static str> {
        match self {
            ScopeLevel::Org => None,
            ScopeLevel::Workspace => Some("feature:workspace.rbac"),
            ScopeLevel::Environment => Some("feature:environment.rbac"),
        }
    }
}

/// Where a binding applies (slugs inside the org).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The org.
    Org,
    /// A workspace.
    Workspace(String),
    /// An environment of a workspace.
    Environment(String, String),
}

impl Scope {
    /// The level of this scope.
    pub(crate) fn level(&self) -> ScopeLevel {
        match self {
            Scope::Org => ScopeLevel::Org,
            Scope::Workspace(_) => ScopeLevel::Workspace,
            Scope::Environment(..) => ScopeLevel::Environment,
        }
    }

    /// Whether this scope contains `ws`/`env` (an org contains everything).
    fn covers(&self, ws: Option<&str>, env: Option<&str>) -> bool {
        match self {
            Scope::Org => true,
            Scope::Workspace(w) => ws == Some(w.as_str()),
            Scope::Environment(w, e) => ws == Some(w.as_str()) && env == Some(e.as_str()),
        }
    }

    /// Whether this scope lies inside workspace `ws` (or is the org).
    fn touches_workspace(&self, ws: &str) -> bool {
        match self {
            Scope::Org => true,
            Scope::Workspace(w) | Scope::Environment(w, _) => w == ws,
        }
    }
}

/// One role binding of the calling user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    /// Role.
    pub(crate) role: Role,
    /// Where.
    pub(crate) scope: Scope,
}

/// What a request wants to do inside an org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action<'a> {
    /// See the org and its license.
    ReadOrg,
    /// Create or delete workspaces and environments.
    ManageStructure,
    /// Manage users, their tokens and role bindings.
    ManageAccess,
    /// See a workspace (list its environments).
    SeeWorkspace(&'a str),
    /// Read an environment (list its gateways).
    ReadEnvironment(&'a str, &'a str),
    /// Register or revoke gateways in an environment.
    ManageGateways(&'a str, &'a str),
    /// Read the org's audit chain (list, verify, export, checkpoints): any role in the org
    /// (viewer and above, at any scope) — the chain is the org's shared record.
    ReadAudit,
    /// Sign a checkpoint of the org's audit chain on demand (org admin).
    SignCheckpoint,
    /// Read the org's usage (org admin; the vendor, a global admin, is one everywhere).
    ReadUsage,
    /// Import an air-gapped deployment's usage receipts into the org (org admin; the
    /// vendor, a global admin, is one everywhere): the same people as [`Action::ReadUsage`].
    ImportUsage,
    /// Read the plugin set of a workspace (`None`) or of one of its environments: a viewer
    /// of that environment, or anyone who sees the workspace for the workspace's set (its
    /// environments inherit it).
    ReadPluginSet(&'a str, Option<&'a str>),
    /// Set or remove the plugin sets of a workspace and its environments (operator of the
    /// workspace, org admin).
    ManagePluginSet(&'a str),
}

/// What a principal holds inside one org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grants {
    /// Everything an org admin may do (global admin, org key, impersonation).
    OrgAdmin,
    /// The user's bindings in the org.
    Bindings(Vec<Binding>),
}

impl Grants {
    /// Whether the org is visible at all (any binding).
    pub(crate) fn sees_org(&self) -> bool {
        match self {
            Grants::OrgAdmin => true,
            Grants::Bindings(list) => !list.is_empty(),
        }
    }

    /// The highest role that applies at `ws`/`env` (`None`, `None` = the org itself).
    pub(crate) fn role_at(&self, ws: Option<&str>, env: Option<&str>) -> Option<Role> {
        match self {
            Grants::OrgAdmin => Some(Role::Admin),
            Grants::Bindings(list) => list
                .iter()
                .filter(|b| b.scope.covers(ws, env))
                .map(|b| b.role)
                .max(),
        }
    }

    /// Whether `action` is allowed.
    pub(crate) fn allows(&self, action: Action<'_>) -> bool {
        let at_least = |role: Option<Role>, needed: Role| role.is_some_and(|r| r >= needed);
        match action {
            Action::ReadOrg => self.sees_org(),
            Action::ReadAudit => self.sees_org(),
            Action::ManageStructure
            | Action::ManageAccess
            | Action::SignCheckpoint
            | Action::ReadUsage
            | Action::ImportUsage => at_least(self.role_at(None, None), Role::Admin),
            Action::SeeWorkspace(ws) => match self {
                Grants::OrgAdmin => true,
                Grants::Bindings(list) => list.iter().any(|b| b.scope.touches_workspace(ws)),
            },
            Action::ReadEnvironment(ws, env) => {
                at_least(self.role_at(Some(ws), Some(env)), Role::Viewer)
            }
            Action::ManageGateways(ws, env) => {
                at_least(self.role_at(Some(ws), Some(env)), Role::Operator)
            }
            Action::ReadPluginSet(ws, None) => self.allows(Action::SeeWorkspace(ws)),
            Action::ReadPluginSet(ws, Some(env)) => self.allows(Action::ReadEnvironment(ws, env)),
            Action::ManagePluginSet(ws) => at_least(self.role_at(Some(ws), None), Role::Operator),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(bindings: &[(Role, Scope)]) -> Grants {
        Grants::Bindings(
            bindings
                .iter()
                .map(|(role, scope)| Binding {
                    role: *role,
                    scope: scope.clone(),
                })
                .collect(),
        )
    }

    #[test]
    fn the_effective_role_is_the_highest_binding_that_covers_the_place() {
        let grants = user(&[
            (Role::Viewer, Scope::Environment("ws".into(), "prod".into())),
            (Role::Operator, Scope::Workspace("ws".into())),
        ]);
        assert_eq!(
            grants.role_at(Some("ws"), Some("prod")),
            Some(Role::Operator)
        );
        assert_eq!(
            grants.role_at(Some("ws"), Some("dev")),
            Some(Role::Operator)
        );
        assert_eq!(grants.role_at(Some("other"), Some("prod")), None);
        assert_eq!(grants.role_at(None, None), None);
    }

    #[test]
    fn a_viewer_reads_but_does_not_manage_its_environment() {
        let grants = user(&[(Role::Viewer, Scope::Environment("ws".into(), "prod".into()))]);
        assert!(grants.allows(Action::ReadOrg));
        assert!(grants.allows(Action::ReadEnvironment("ws", "prod")));
        assert!(!grants.allows(Action::ReadEnvironment("ws", "dev")));
        assert!(!grants.allows(Action::ManageGateways("ws", "prod")));
        assert!(grants.allows(Action::SeeWorkspace("ws")));
        assert!(!grants.allows(Action::ManageStructure));
        assert!(!user(&[]).allows(Action::ReadOrg));
    }

    #[test]
    fn operators_of_a_workspace_manage_its_plugin_sets_and_viewers_read_them() {
        let operator = user(&[(Role::Operator, Scope::Workspace("ws".into()))]);
        assert!(operator.allows(Action::ManagePluginSet("ws")));
        assert!(!operator.allows(Action::ManagePluginSet("other")));
        let viewer = user(&[(Role::Viewer, Scope::Environment("ws".into(), "prod".into()))]);
        assert!(!viewer.allows(Action::ManagePluginSet("ws")));
        assert!(viewer.allows(Action::ReadPluginSet("ws", None)));
        assert!(viewer.allows(Action::ReadPluginSet("ws", Some("prod"))));
        assert!(!viewer.allows(Action::ReadPluginSet("ws", Some("dev"))));
        assert!(!viewer.allows(Action::ReadPluginSet("other", None)));
        assert!(Grants::OrgAdmin.allows(Action::ManagePluginSet("any")));
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            Email::parse(" Alice@Acme.com ").map(|e| e.as_str().to_owned()),
            Ok("alice@acme.com".to_owned())
        );
        for bad in [
            "",
            "alice",
            "@acme.com",
            "alice@",
            "a b@c",
            "a@b@c",
            "a/b@c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn roles_parse_from_their_stored_form_and_map_to_their_level() {
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
        }
        assert_eq!(
            Role::Operator.level().required_entitlement(),
            Some("feature:workspace.rbac")
        );
        assert_eq!(Role::Admin.level().required_entitlement(), None);
    }
}
