//! The plugin-set part of the plan: a workspace's `plugins:` is written when it differs from
//! the stored set (or the stored one was written through the API, which the file then
//! takes over); a set the file wrote is removed once the file no longer declares it, one
//! written through the API is left alone. And the license rule of the API: a tenant's new
//! license may not take plugins from the org's plugin sets (the file has no `force`: change
//! or drop the sets first).

use mcpg_license_core::Catalog;

use super::TenantsError;
use super::diff::Builder;
use super::file::{TenantSpec, WorkspaceSpec};
use super::plan::{ChangeAction, ObjectKind, Op};
use crate::domain::entitlements_at;
use crate::domain::plugin_sets::{describe, lost};

impl Builder<'_> {
    /// Plans the plugin set of a listed workspace (`workspace_id`: its id, new or old).
    pub(super) fn workspace_plugin_set(
        &mut self,
        spec: &WorkspaceSpec,
        path: &str,
        org_id: &str,
        workspace_id: &str,
    ) {
        let stored = self
            .current
            .plugin_sets
            .iter()
            .find(|p| p.workspace_id == workspace_id && p.environment_id.is_none());
        match (&spec.plugins, stored) {
            (Some(set), stored) => {
                let digest = set.digest();
                let ids: Vec<&str> = set.ids().collect();
                let action = match stored {
                    Some(old) if old.managed && old.digest == digest => {
                        self.unchanged += 1;
                        return;
                    }
                    Some(_) => ChangeAction::Update,
                    None => ChangeAction::Create,
                };
                let plugins = match serde_json::to_string(set) {
                    Ok(text) => text,
                    // A validated set always serialises; never write a half-made row.
                    Err(_) => return,
                };
                self.change(
                    action,
                    ObjectKind::PluginSet,
                    path.to_owned(),
                    format!("plugins [{}] ({digest})", ids.join(", ")),
                );
                self.ops.push(Op::PutPluginSet {
                    org_id: org_id.to_owned(),
                    workspace_id: workspace_id.to_owned(),
                    plugins,
                    digest,
                });
            }
            (None, Some(old)) if old.managed => {
                self.change(
                    ChangeAction::Delete,
                    ObjectKind::PluginSet,
                    path.to_owned(),
                    "absent from tenants.yaml; removed".into(),
                );
                self.ops.push(Op::DeletePluginSet {
                    scope_id: workspace_id.to_owned(),
                });
            }
            (None, _) => {}
        }
    }

    /// Refuses a tenant whose license would no longer entitle plugins that its org's plugin
    /// sets name (and that the license in force entitles); the sets the file itself writes
    /// were checked against the file's license when it was parsed.
    pub(super) fn check_plugin_sets_stay_entitled(
        &self,
        tenant: &TenantSpec,
        org_id: &str,
    ) -> Result<(), TenantsError> {
        let before = entitlements_at(self.current.licenses.get(org_id), self.now);
        let after =
            Catalog::builtin().license_entitlements(tenant.tier, &tenant.add, &tenant.remove);
        let declared = |workspace_id: &str| {
            tenant.workspaces.iter().any(|w| {
                w.plugins.is_some()
                    && self
                        .current
                        .workspaces
                        .iter()
                        .any(|c| c.id == workspace_id && c.slug == w.name.as_str())
            })
        };
        let losses: Vec<String> = self
            .current
            .plugin_sets
            .iter()
            .filter(|p| p.org_id == org_id)
            // A workspace's set the file writes was checked when the file was parsed; one the
            // file wrote and no longer declares is removed.
            .filter(|p| p.environment_id.is_some() || !(p.managed || declared(&p.workspace_id)))
            .filter_map(|p| {
                let plugins = lost(&p.set, &before, &after);
                (!plugins.is_empty()).then(|| format!("{}: {}", p.place, describe(&plugins)))
            })
            .collect();
        if losses.is_empty() {
            return Ok(());
        }
        Err(TenantsError::Conflict(format!(
            "tenant {}: the license would no longer entitle plugins of plugin sets ({}); \
             change those plugin sets first",
            tenant.id,
            losses.join("; ")
        )))
    }
}
