//! The reconciliation plan: what applying a `tenants.yaml` changes (the types; the
//! `diff` module computes it from the document and the current state, read in the
//! transaction that applies it).
//!
//! Rules:
//! - Objects the file creates are marked `managed_by = 'tenants.yaml'`; an existing object
//!   the file names (an org, workspace or environment made through the API) is adopted:
//!   marked managed from then on.
//! - Deletions happen only with `prune`, only of managed objects, and only when nothing
//!   under them was made through the API (gateways, users, unmanaged workspaces or
//!   environments); otherwise the plan keeps the object and says why.
//! - API keys are the exception: a managed key no longer in its tenant's list is revoked
//!   with or without `prune` (a key removed from the file must stop working; revoking
//!   keeps the row).
//! - Quotas are checked against what will exist after the plan.

use std::collections::HashMap;

use mcpg_license_core::{EntitlementId, Limits, Tier};
use serde::Serialize;
use serde_json::Value;

pub(crate) use super::file::GatewaySettings;
use crate::domain::LicenseRecord;
use crate::domain::OrgStatus;

/// An org as the plan sees it.
#[derive(Debug, Clone)]
pub(crate) struct CurrentOrg {
    pub(crate) id: String,
    pub(crate) slug: String,
    pub(crate) display_name: String,
    pub(crate) status: OrgStatus,
    pub(crate) trial_expires_at: Option<i64>,
    pub(crate) gateway: GatewaySettings,
    pub(crate) managed: bool,
    pub(crate) users: i64,
}

/// A workspace.
#[derive(Debug, Clone)]
pub(crate) struct CurrentWorkspace {
    pub(crate) id: String,
    pub(crate) org_id: String,
    pub(crate) slug: String,
    pub(crate) managed: bool,
    pub(crate) created_at: i64,
}

/// An environment with its number of gateways.
#[derive(Debug, Clone)]
pub(crate) struct CurrentEnvironment {
    pub(crate) id: String,
    pub(crate) org_id: String,
    pub(crate) workspace_id: String,
    pub(crate) slug: String,
    pub(crate) managed: bool,
    pub(crate) created_at: i64,
    pub(crate) gateways: i64,
}

/// A plugin set (of a workspace, or of an environment).
#[derive(Debug, Clone)]
pub(crate) struct CurrentPluginSet {
    pub(crate) org_id: String,
    pub(crate) workspace_id: String,
    pub(crate) environment_id: Option<String>,
    /// The workspace (and environment) it belongs to, `ws` or `ws/env`.
    pub(crate) place: String,
    pub(crate) set: mcpg_license_core::PluginSet,
    pub(crate) digest: String,
    pub(crate) managed: bool,
}

/// An API token (never the token).
#[derive(Debug, Clone)]
pub(crate) struct CurrentKey {
    pub(crate) id: String,
    pub(crate) org_id: Option<String>,
    pub(crate) name: String,
    pub(crate) hash: String,
    pub(crate) revoked: bool,
    pub(crate) managed: bool,
}

/// Everything the plan compares against.
#[derive(Debug, Clone, Default)]
pub(crate) struct Current {
    pub(crate) orgs: Vec<CurrentOrg>,
    pub(crate) licenses: HashMap<String, LicenseRecord>,
    pub(crate) workspaces: Vec<CurrentWorkspace>,
    pub(crate) environments: Vec<CurrentEnvironment>,
    pub(crate) keys: Vec<CurrentKey>,
    pub(crate) plugin_sets: Vec<CurrentPluginSet>,
}

/// What happens to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ChangeAction {
    /// Created.
    Create,
    /// Changed (or adopted).
    Update,
    /// Deleted (API keys: revoked).
    Delete,
    /// Not in the file but kept (no `prune`, or made partly through the API).
    Keep,
}

impl ChangeAction {
    /// The wire name.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Create => "create",
            ChangeAction::Update => "update",
            ChangeAction::Delete => "delete",
            ChangeAction::Keep => "keep",
        }
    }
}

/// Which kind of object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ObjectKind {
    /// An organization.
    Org,
    /// Its license.
    License,
    /// A workspace.
    Workspace,
    /// An environment.
    Environment,
    /// An API key.
    ApiKey,
    /// A workspace's plugin set.
    PluginSet,
}

/// One line of the plan.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Change {
    /// What happens.
    pub(crate) action: ChangeAction,
    /// To what kind of object.
    pub(crate) kind: ObjectKind,
    /// `org`, `org/workspace`, `org/workspace/env`, or `org/key name`.
    pub(crate) path: String,
    /// What changes, in words.
    pub(crate) detail: String,
}

/// The plan: the changes, in the order they are applied.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Plan {
    /// Whether nothing was written.
    pub(crate) dry_run: bool,
    /// Whether managed objects absent from the file are deleted.
    pub(crate) prune: bool,
    /// Changes (unchanged objects are not listed).
    pub(crate) changes: Vec<Change>,
    /// Objects the file names that need no change.
    pub(crate) unchanged: usize,
    #[serde(skip)]
    pub(crate) ops: Vec<Op>,
}

impl Plan {
    /// How many changes of `action`.
    pub(crate) fn count(&self, action: ChangeAction) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// A write, in application order.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    CreateOrg {
        id: String,
        slug: String,
        display_name: String,
        status: OrgStatus,
        trial_expires_at: Option<i64>,
        gateway: GatewaySettings,
    },
    UpdateOrg {
        id: String,
        display_name: String,
        status: OrgStatus,
        trial_expires_at: Option<i64>,
        gateway: GatewaySettings,
    },
    SetLicense {
        org_id: String,
        tier: Tier,
        add: Vec<EntitlementId>,
        remove: Vec<EntitlementId>,
        limits: Limits,
        valid_from: i64,
        valid_until: i64,
    },
    CreateWorkspace {
        id: String,
        org_id: String,
        slug: String,
    },
    AdoptWorkspace {
        id: String,
    },
    CreateEnvironment {
        org_id: String,
        workspace_id: String,
        slug: String,
    },
    AdoptEnvironment {
        id: String,
    },
    CreateKey {
        org_id: String,
        name: String,
        hash: String,
    },
    RenameKey {
        id: String,
        name: String,
    },
    RevokeKey {
        id: String,
    },
    /// Sets a workspace's plugin set (`scope_id` = the workspace's id), marked managed.
    PutPluginSet {
        org_id: String,
        workspace_id: String,
        plugins: String,
        digest: String,
    },
    /// Removes the plugin set keyed `scope_id`.
    DeletePluginSet {
        scope_id: String,
    },
    /// Deletes a row of `table` after keeping `export` in `deleted_exports`.
    Delete {
        table: DeleteTable,
        id: String,
        org_slug: String,
        path: String,
        export: Value,
    },
}

/// What an [`Op::Delete`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeleteTable {
    Org,
    Workspace,
    Environment,
}

impl DeleteTable {
    pub(crate) const fn kind(self) -> &'static str {
        match self {
            DeleteTable::Org => "org",
            DeleteTable::Workspace => "workspace",
            DeleteTable::Environment => "environment",
        }
    }
}
