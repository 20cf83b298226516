//! The structure part of the plan: workspaces and environments the file lists (created
//! or adopted), managed ones it no longer lists (pruned or kept), orgs it no longer names,
//! and the quota check on what will exist afterwards.

use mcpg_license_core::LimitKey;
use mcpg_license_core::clock::to_rfc3339;
use serde_json::{Value, json};

use super::TenantsError;
use super::diff::Builder;
use super::file::TenantSpec;
use super::plan::{
    ChangeAction, CurrentEnvironment, CurrentOrg, CurrentWorkspace, DeleteTable, ObjectKind, Op,
};
use crate::domain::new_id;

impl Builder<'_> {
    pub(super) fn structure(
        &mut self,
        tenant: &TenantSpec,
        org_id: &str,
    ) -> Result<(), TenantsError> {
        let org = tenant.id.as_str();
        let current = self.current;
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
        let (mut ws_count, mut env_count) = (workspaces.len(), environments.len());
        for spec in &tenant.workspaces {
            let path = format!("{org}/{}", spec.name);
            let existing = workspaces.iter().find(|w| w.slug == spec.name.as_str());
            let workspace_id = match existing {
                Some(ws) => {
                    if ws.managed {
                        self.unchanged += 1;
                    } else {
                        self.change(
                            ChangeAction::Update,
                            ObjectKind::Workspace,
                            path.clone(),
                            "adopted: managed by tenants.yaml from now on".into(),
                        );
                        self.ops.push(Op::AdoptWorkspace { id: ws.id.clone() });
                    }
                    ws.id.clone()
                }
                None => {
                    let id = new_id();
                    ws_count += 1;
                    self.change(
                        ChangeAction::Create,
                        ObjectKind::Workspace,
                        path.clone(),
                        String::new(),
                    );
                    self.ops.push(Op::CreateWorkspace {
                        id: id.clone(),
                        org_id: org_id.to_owned(),
                        slug: spec.name.as_str().to_owned(),
                    });
                    id
                }
            };
            for env in &spec.environments {
                let env_path = format!("{path}/{env}");
                let found = environments
                    .iter()
                    .find(|e| e.workspace_id == workspace_id && e.slug == env.as_str());
                match found {
                    Some(e) if e.managed => self.unchanged += 1,
                    Some(e) => {
                        self.change(
                            ChangeAction::Update,
                            ObjectKind::Environment,
                            env_path,
                            "adopted: managed by tenants.yaml from now on".into(),
                        );
                        self.ops.push(Op::AdoptEnvironment { id: e.id.clone() });
                    }
                    None => {
                        env_count += 1;
                        self.change(
                            ChangeAction::Create,
                            ObjectKind::Environment,
                            env_path,
                            String::new(),
                        );
                        self.ops.push(Op::CreateEnvironment {
                            org_id: org_id.to_owned(),
                            workspace_id: workspace_id.clone(),
                            slug: env.as_str().to_owned(),
                        });
                    }
                }
            }
            // Managed environments of a listed workspace that the file no longer lists.
            for e in environments.iter().filter(|e| {
                e.managed
                    && e.workspace_id == workspace_id
                    && !spec.environments.iter().any(|s| s.as_str() == e.slug)
            }) {
                let blocker = (e.gateways > 0).then(|| {
                    format!(
                        "it has {} gateway(s) registered through the API",
                        e.gateways
                    )
                });
                let deleted = self.prune && blocker.is_none();
                let export = export_structure(
                    "environment",
                    &format!("{path}/{}", e.slug),
                    self.now,
                    &[],
                    &[e],
                );
                self.prune_or_keep(
                    ObjectKind::Environment,
                    format!("{path}/{}", e.slug),
                    blocker,
                    || Op::Delete {
                        table: DeleteTable::Environment,
                        id: e.id.clone(),
                        org_slug: org.to_owned(),
                        path: format!("{path}/{}", e.slug),
                        export,
                    },
                );
                env_count -= usize::from(deleted);
            }
        }
        // Managed workspaces the file no longer lists.
        for ws in workspaces
            .iter()
            .filter(|w| w.managed && !tenant.workspaces.iter().any(|s| s.name.as_str() == w.slug))
        {
            let path = format!("{org}/{}", ws.slug);
            let envs: Vec<&CurrentEnvironment> = environments
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
                    org_slug: org.to_owned(),
                    path,
                    export,
                }
            });
            if deleted {
                ws_count -= 1;
                env_count -= envs.len();
            }
        }
        let quotas = [
            (LimitKey::MaxWorkspaces, ws_count),
            (LimitKey::MaxEnvironments, env_count),
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
