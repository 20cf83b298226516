//! The structure part of the plan: workspaces and environments the file lists (created
//! or adopted), managed ones it no longer lists (pruned or kept), orgs it no longer names,
//! and the quota check on what will exist afterwards.

use mcpg_license_core::LimitKey;
use mcpg_license_core::clock::to_rfc3339;
use serde_json::{Value, json};

use super::TenantsError;
use super::diff::Builder;
use super::file::{TenantSpec, WorkspaceSpec};
use super::plan::{
    ChangeAction, Current, CurrentEnvironment, CurrentOrg, CurrentWorkspace, DeleteTable,
    ObjectKind, Op,
};
use crate::domain::new_id;

/// The detail of a change that adopts an object made through the API.
const ADOPTED: &str = "adopted: managed by tenants.yaml from now on";

/// One tenant's workspaces and environments as they are, and how many of each will exist
/// once the plan is applied (the quotas are checked on that, API-made objects included).
struct OrgStructure<'a> {
    /// The org's slug: the first segment of every path.
    slug: &'a str,
    org_id: &'a str,
    workspaces: Vec<&'a CurrentWorkspace>,
    environments: Vec<&'a CurrentEnvironment>,
    workspace_count: usize,
    environment_count: usize,
}

impl<'a> OrgStructure<'a> {
    fn new(current: &'a Current, slug: &'a str, org_id: &'a str) -> Self {
        let workspaces: Vec<&CurrentWorkspace> = current
            .workspaces
            .iter()
            .filter(|w| w.org_id == org_id)
            .collect();
        let environments: Vec<&CurrentEnvironment> = current
            .environments
            .iter()
            .filter(|e| e.org_id == org_id)
            .collect();
        Self {
            slug,
            org_id,
            workspace_count: workspaces.len(),
            environment_count: environments.len(),
            workspaces,
            environments,
        }
    }

    /// Refuses a plan after which more workspaces or environments would exist than the
    /// tenant's quotas allow.
    fn check_quotas(&self, tenant: &TenantSpec) -> Result<(), TenantsError> {
        let org = self.slug;
        let quotas = [
            (LimitKey::MaxWorkspaces, self.workspace_count),
            (LimitKey::MaxEnvironments, self.environment_count),
        ];
        for (key, count) in quotas {
            if let Some(limit) = tenant.limits.get(key)
                && count as u64 > limit
            {
                return Err(TenantsError::Conflict(format!(
                    "tenant {org}: {count} {} would exist but quotas.{} is {limit} (objects made \
                     through the API count too)",
                    &key.as_str()["max_".len()..],
                    key.as_str()
                )));
            }
        }
        Ok(())
    }
}

impl Builder<'_> {
    /// Plans the workspaces and environments of `tenant` (org `org_id`): those listed,
    /// those no longer listed, then checks the quotas on what will exist.
    pub(super) fn structure(
        &mut self,
        tenant: &TenantSpec,
        org_id: &str,
    ) -> Result<(), TenantsError> {
        let mut org = OrgStructure::new(self.current, tenant.id.as_str(), org_id);
        for spec in &tenant.workspaces {
            let path = format!("{}/{}", org.slug, spec.name);
            let workspace_id = self.listed_workspace(&mut org, spec, &path);
            self.listed_environments(&mut org, spec, &path, &workspace_id);
            self.workspace_plugin_set(spec, &path, org_id, &workspace_id);
            self.unlisted_environments(&mut org, spec, &path, &workspace_id);
        }
        self.unlisted_workspaces(&mut org, tenant);
        org.check_quotas(tenant)
    }

    /// A workspace the file lists: unchanged, adopted if made through the API, or created.
    /// Returns its id (a new one for a create, so its environments can name it).
    fn listed_workspace(
        &mut self,
        org: &mut OrgStructure<'_>,
        spec: &WorkspaceSpec,
        path: &str,
    ) -> String {
        let existing = org
            .workspaces
            .iter()
            .copied()
            .find(|w| w.slug == spec.name.as_str());
        match existing {
            Some(ws) => {
                if ws.managed {
                    self.unchanged += 1;
                } else {
                    self.change(
                        ChangeAction::Update,
                        ObjectKind::Workspace,
                        path.to_owned(),
                        ADOPTED.into(),
                    );
                    self.ops.push(Op::AdoptWorkspace { id: ws.id.clone() });
                }
                ws.id.clone()
            }
            None => {
                let id = new_id();
                org.workspace_count += 1;
                self.change(
                    ChangeAction::Create,
                    ObjectKind::Workspace,
                    path.to_owned(),
                    String::new(),
                );
                self.ops.push(Op::CreateWorkspace {
                    id: id.clone(),
                    org_id: org.org_id.to_owned(),
                    slug: spec.name.as_str().to_owned(),
                });
                id
            }
        }
    }

    /// The environments the file lists under a workspace: unchanged, adopted if made
    /// through the API, or created.
    fn listed_environments(
        &mut self,
        org: &mut OrgStructure<'_>,
        spec: &WorkspaceSpec,
        path: &str,
        workspace_id: &str,
    ) {
        for env in &spec.environments {
            let env_path = format!("{path}/{env}");
            let found = org
                .environments
                .iter()
                .copied()
                .find(|e| e.workspace_id == workspace_id && e.slug == env.as_str());
            match found {
                Some(e) if e.managed => self.unchanged += 1,
                Some(e) => {
                    self.change(
                        ChangeAction::Update,
                        ObjectKind::Environment,
                        env_path,
                        ADOPTED.into(),
                    );
                    self.ops.push(Op::AdoptEnvironment { id: e.id.clone() });
                }
                None => {
                    org.environment_count += 1;
                    self.change(
                        ChangeAction::Create,
                        ObjectKind::Environment,
                        env_path,
                        String::new(),
                    );
                    self.ops.push(Op::CreateEnvironment {
                        org_id: org.org_id.to_owned(),
                        workspace_id: workspace_id.to_owned(),
                        slug: env.as_str().to_owned(),
                    });
                }
            }
        }
    }

    /// Managed environments of a listed workspace that the file no longer lists: pruned,
    /// or kept while gateways registered through the API use them.
    fn unlisted_environments(
        &mut self,
        org: &mut OrgStructure<'_>,
        spec: &WorkspaceSpec,
        path: &str,
        workspace_id: &str,
    ) {
        let unlisted = org.environments.iter().copied().filter(|e| {
            e.managed
                && e.workspace_id == workspace_id
                && !spec.environments.iter().any(|s| s.as_str() == e.slug)
        });
        for e in unlisted {
            let env_path = format!("{path}/{}", e.slug);
            let blocker = (e.gateways > 0).then(|| {
                format!(
                    "it has {} gateway(s) registered through the API",
                    e.gateways
                )
            });
            let deleted = self.prune && blocker.is_none();
            let export = export_structure("environment", &env_path, self.now, &[], &[e]);
            self.prune_or_keep(ObjectKind::Environment, env_path.clone(), blocker, || {
                Op::Delete {
                    table: DeleteTable::Environment,
                    id: e.id.clone(),
                    org_slug: org.slug.to_owned(),
                    path: env_path,
                    export,
                }
            });
            org.environment_count -= usize::from(deleted);
        }
    }

    /// Managed workspaces the file no longer lists: pruned with their environments, or
    /// kept while something under them came from the API.
    fn unlisted_workspaces(&mut self, org: &mut OrgStructure<'_>, tenant: &TenantSpec) {
        let unlisted =
            org.workspaces.iter().copied().filter(|w| {
                w.managed && !tenant.workspaces.iter().any(|s| s.name.as_str() == w.slug)
            });
        for ws in unlisted {
            let path = format!("{}/{}", org.slug, ws.slug);
            let envs: Vec<&CurrentEnvironment> = org
                .environments
                .iter()
                .copied()
                .filter(|e| e.workspace_id == ws.id)
                .collect();
            let blocker = structure_blocker(&envs, 0);
            let deleted = self.prune && blocker.is_none();
            let export = export_structure("workspace", &path, self.now, &[ws], &envs);
            self.prune_or_keep(ObjectKind::Workspace, path.clone(), blocker, || {
                Op::Delete {
                    table: DeleteTable::Workspace,
                    id: ws.id.clone(),
                    org_slug: org.slug.to_owned(),
                    path,
                    export,
                }
            });
            if deleted {
                org.workspace_count -= 1;
                org.environment_count -= envs.len();
            }
        }
    }

    pub(super) fn absent_org(&mut self, org: &CurrentOrg) {
        let workspaces: Vec<&CurrentWorkspace> = self
            .current
            .workspaces
            .iter()
            .filter(|w| w.org_id == org.id)
            .collect();
        let envs: Vec<&CurrentEnvironment> = self
            .current
            .environments
            .iter()
            .filter(|e| e.org_id == org.id)
            .collect();
        let unmanaged_ws = workspaces.iter().filter(|w| !w.managed).count();
        let blocker = if unmanaged_ws > 0 {
            Some(format!(
                "it has {unmanaged_ws} workspace(s) made through the API"
            ))
        } else {
            structure_blocker(&envs, org.users)
        };
        let mut export = export_structure("org", &org.slug, self.now, &workspaces, &envs);
        if let Some(license) = self.current.licenses.get(&org.id) {
            export["license"] = json!({
                "id": license.id, "tier": license.tier, "entitlements_add": license.add,
                "entitlements_remove": license.remove, "limits": license.limits,
                "valid_from": to_rfc3339(license.valid_from),
                "valid_until": to_rfc3339(license.valid_until),
            });
        }
        let keys: Vec<Value> = self
            .current
            .keys
            .iter()
            .filter(|k| k.org_id.as_deref() == Some(org.id.as_str()))
            .map(|k| json!({"id": k.id, "name": k.name, "revoked": k.revoked}))
            .collect();
        export["api_keys"] = Value::from(keys);
        self.prune_or_keep(ObjectKind::Org, org.slug.clone(), blocker, || Op::Delete {
            table: DeleteTable::Org,
            id: org.id.clone(),
            org_slug: org.slug.clone(),
            path: org.slug.clone(),
            export,
        });
    }
}

/// Why a managed workspace or org cannot be pruned: something under it came from the API.
fn structure_blocker(envs: &[&CurrentEnvironment], users: i64) -> Option<String> {
    let unmanaged = envs.iter().filter(|e| !e.managed).count();
    let gateways: i64 = envs.iter().map(|e| e.gateways).sum();
    if unmanaged > 0 {
        Some(format!(
            "it has {unmanaged} environment(s) made through the API"
        ))
    } else if gateways > 0 {
        Some(format!(
            "it has {gateways} gateway(s) registered through the API"
        ))
    } else if users > 0 {
        Some(format!("it has {users} user(s) added through the API"))
    } else {
        None
    }
}

fn export_structure(
    kind: &str,
    path: &str,
    now: i64,
    workspaces: &[&CurrentWorkspace],
    envs: &[&CurrentEnvironment],
) -> Value {
    let slug_of = |id: &str| {
        workspaces
            .iter()
            .find(|w| w.id == id)
            .map(|w| w.slug.clone())
            .unwrap_or_default()
    };
    json!({
        "kind": kind,
        "path": path,
        "deleted_at": to_rfc3339(now),
        "managed_by": super::MANAGED_BY,
        "workspaces": workspaces.iter().map(|w| json!({
            "id": w.id, "slug": w.slug, "created_at": to_rfc3339(w.created_at),
        })).collect::<Vec<_>>(),
        "environments": envs.iter().map(|e| json!({
            "id": e.id, "slug": e.slug, "workspace": slug_of(&e.workspace_id),
            "created_at": to_rfc3339(e.created_at),
        })).collect::<Vec<_>>(),
        "gateways": [],
    })
}
