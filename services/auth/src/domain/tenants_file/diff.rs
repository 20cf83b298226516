//! Computing the [`Plan`] of a document against the current state: orgs, licenses and API
//! keys here, workspaces, environments and pruning in the `structure` module.

use std::collections::HashSet;

use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::{Limits, Tier};

use super::TenantsError;
use super::file::{TenantSpec, TenantsDoc};
use super::plan::{Change, ChangeAction, Current, GatewaySettings, ObjectKind, Op, Plan};
use crate::domain::{OrgStatus, new_id};

/// The gateway-side settings under their file names.
fn gateway_settings(settings: &GatewaySettings) -> [(&'static str, Option<&str>); 2] {
    [
        ("namespace", settings.namespace.as_deref()),
        ("catalog_file", settings.catalog_file.as_deref()),
    ]
}

/// A new license's length when the file gives no `valid_until`.
const DEFAULT_LICENSE_DAYS: i64 = 365;

pub(super) struct Builder<'a> {
    pub(super) current: &'a Current,
    pub(super) now: i64,
    pub(super) prune: bool,
    pub(super) changes: Vec<Change>,
    pub(super) ops: Vec<Op>,
    pub(super) deletes: Vec<(Change, Op)>,
    pub(super) unchanged: usize,
}

impl Builder<'_> {
    pub(super) fn change(
        &mut self,
        action: ChangeAction,
        kind: ObjectKind,
        path: String,
        detail: String,
    ) {
        self.changes.push(Change {
            action,
            kind,
            path,
            detail,
        });
    }

    pub(super) fn delete(&mut self, kind: ObjectKind, path: String, detail: String, op: Op) {
        self.deletes.push((
            Change {
                action: ChangeAction::Delete,
                kind,
                path,
                detail,
            },
            op,
        ));
    }

    /// Deletes a managed object absent from the file when pruning and nothing under it was
    /// made through the API; otherwise records that it is kept and why.
    pub(super) fn prune_or_keep(
        &mut self,
        kind: ObjectKind,
        path: String,
        blocker: Option<String>,
        op: impl FnOnce() -> Op,
    ) {
        match (self.prune, blocker) {
            (false, _) => self.change(
                ChangeAction::Keep,
                kind,
                path,
                "absent from tenants.yaml; deleted only with prune".into(),
            ),
            (true, Some(reason)) => self.change(
                ChangeAction::Keep,
                kind,
                path,
                format!("absent from tenants.yaml but not pruned: {reason}"),
            ),
            (true, None) => {
                let op = op();
                self.delete(kind, path, "absent from tenants.yaml; pruned".into(), op);
            }
        }
    }

    fn org(&mut self, tenant: &TenantSpec) -> Result<(), TenantsError> {
        let slug = tenant.id.as_str().to_owned();
        let existing = self.current.orgs.iter().find(|o| o.slug == slug);
        let org_id = match existing {
            None => {
                let id = new_id();
                let status = tenant.status.unwrap_or(OrgStatus::Active);
                let mut what = format!("{:?}, {}", tenant.display_name, status.as_str());
                if let Some(end) = tenant.trial_ends {
                    what.push_str(&format!(" until {}", to_rfc3339(end)));
                }
                for (name, value) in gateway_settings(&tenant.gateway) {
                    if let Some(value) = value {
                        what.push_str(&format!(", {name} {value:?}"));
                    }
                }
                self.change(ChangeAction::Create, ObjectKind::Org, slug.clone(), what);
                self.ops.push(Op::CreateOrg {
                    id: id.clone(),
                    slug: slug.clone(),
                    display_name: tenant.display_name.clone(),
                    status,
                    trial_expires_at: tenant.trial_ends,
                    gateway: tenant.gateway.clone(),
                });
                id
            }
            Some(org) => {
                let mut what = Vec::new();
                if !org.managed {
                    what.push("adopted: managed by tenants.yaml from now on".to_owned());
                }
                if org.display_name != tenant.display_name {
                    what.push(format!(
                        "display_name {:?} -> {:?}",
                        org.display_name, tenant.display_name
                    ));
                }
                let status = tenant.status.unwrap_or(org.status);
                if status != org.status {
                    what.push(format!(
                        "status {} -> {}",
                        org.status.as_str(),
                        status.as_str()
                    ));
                }
                // A declared status brings its trial end (none but for a trial); an
                // undeclared one keeps the org's.
                let trial_expires_at = match tenant.status {
                    Some(_) => tenant.trial_ends,
                    None => org.trial_expires_at,
                };
                if trial_expires_at != org.trial_expires_at {
                    let show = |t: Option<i64>| t.map_or_else(|| "none".to_owned(), to_rfc3339);
                    what.push(format!(
                        "trial_expires_at {} -> {}",
                        show(org.trial_expires_at),
                        show(trial_expires_at)
                    ));
                }
                // Settings the file leaves out keep their value.
                let gateway = GatewaySettings {
                    namespace: tenant
                        .gateway
                        .namespace
                        .clone()
                        .or_else(|| org.gateway.namespace.clone()),
                    catalog_file: tenant
                        .gateway
                        .catalog_file
                        .clone()
                        .or_else(|| org.gateway.catalog_file.clone()),
                };
                for ((name, old), (_, new)) in gateway_settings(&org.gateway)
                    .into_iter()
                    .zip(gateway_settings(&gateway))
                {
                    if old != new {
                        what.push(format!("{name} {old:?} -> {new:?}"));
                    }
                }
                if what.is_empty() {
                    self.unchanged += 1;
                } else {
                    self.change(
                        ChangeAction::Update,
                        ObjectKind::Org,
                        slug.clone(),
                        what.join("; "),
                    );
                    self.ops.push(Op::UpdateOrg {
                        id: org.id.clone(),
                        display_name: tenant.display_name.clone(),
                        status,
                        trial_expires_at,
                        gateway,
                    });
                }
                org.id.clone()
            }
        };
        self.license(tenant, &org_id);
        self.check_plugin_sets_stay_entitled(tenant, &org_id)?;
        self.structure(tenant, &org_id)?;
        self.keys(tenant, &org_id)
    }

    fn license(&mut self, tenant: &TenantSpec, org_id: &str) {
        let path = tenant.id.as_str().to_owned();
        let current = self.current.licenses.get(org_id);
        let valid_from = tenant
            .valid_from
            .or(current.map(|l| l.valid_from))
            .unwrap_or(self.now);
        let valid_until = tenant
            .valid_until
            .or(current.map(|l| l.valid_until))
            .unwrap_or(valid_from + DEFAULT_LICENSE_DAYS * 86_400);
        let terms = describe_terms(tenant.tier, &tenant.limits, valid_until);
        let detail = match current {
            None => terms,
            Some(license) => {
                let mut what = Vec::new();
                if license.tier != tenant.tier {
                    what.push(format!("tier {} -> {}", license.tier, tenant.tier));
                }
                if license.add != tenant.add || license.remove != tenant.remove {
                    what.push("entitlements changed".to_owned());
                }
                if license.limits != tenant.limits {
                    what.push(format!(
                        "quotas {} -> {}",
                        describe_limits(&license.limits),
                        describe_limits(&tenant.limits)
                    ));
                }
                if license.valid_from != valid_from || license.valid_until != valid_until {
                    what.push(format!(
                        "valid {} .. {}",
                        to_rfc3339(valid_from),
                        to_rfc3339(valid_until)
                    ));
                }
                if what.is_empty() {
                    self.unchanged += 1;
                    return;
                }
                format!("{} (replaces license {})", what.join("; "), license.id)
            }
        };
        if valid_until <= valid_from {
            // Only reachable when the file gives one bound and the stored other is past it.
            self.change(
                ChangeAction::Keep,
                ObjectKind::License,
                path,
                "not changed: valid_until would not be after valid_from; give both".into(),
            );
            return;
        }
        let action = if current.is_some() {
            ChangeAction::Update
        } else {
            ChangeAction::Create
        };
        self.change(action, ObjectKind::License, path, detail);
        self.ops.push(Op::SetLicense {
            org_id: org_id.to_owned(),
            tier: tenant.tier,
            add: tenant.add.clone(),
            remove: tenant.remove.clone(),
            limits: tenant.limits,
            valid_from,
            valid_until,
        });
    }

    fn keys(&mut self, tenant: &TenantSpec, org_id: &str) -> Result<(), TenantsError> {
        let org = tenant.id.as_str();
        for key in &tenant.api_keys {
            let path = format!("{org}/{}", key.name);
            match self.current.keys.iter().find(|k| k.hash == key.hash) {
                None => {
                    self.change(
                        ChangeAction::Create,
                        ObjectKind::ApiKey,
                        path,
                        format!(
                            "sha256:{}…, role admin",
                            key.hash.get(..8).unwrap_or_default()
                        ),
                    );
                    self.ops.push(Op::CreateKey {
                        org_id: org_id.to_owned(),
                        name: key.name.clone(),
                        hash: key.hash.clone(),
                    });
                }
                Some(found) if found.revoked => {
                    return Err(TenantsError::Conflict(format!(
                        "tenant {org}: API key {:?} was revoked; a revoked key cannot be \
                         reused, generate a new one",
                        key.name
                    )));
                }
                Some(found) if !found.managed || found.org_id.as_deref() != Some(org_id) => {
                    return Err(TenantsError::Conflict(format!(
                        "tenant {org}: the key_hash of API key {:?} belongs to another credential",
                        key.name
                    )));
                }
                Some(found) if found.name != key.name => {
                    self.change(
                        ChangeAction::Update,
                        ObjectKind::ApiKey,
                        path,
                        format!("renamed from {:?}", found.name),
                    );
                    self.ops.push(Op::RenameKey {
                        id: found.id.clone(),
                        name: key.name.clone(),
                    });
                }
                Some(_) => self.unchanged += 1,
            }
        }
        let listed: HashSet<&str> = tenant.api_keys.iter().map(|k| k.hash.as_str()).collect();
        for gone in self.current.keys.iter().filter(|k| {
            k.managed
                && !k.revoked
                && k.org_id.as_deref() == Some(org_id)
                && !listed.contains(k.hash.as_str())
        }) {
            self.delete(
                ObjectKind::ApiKey,
                format!("{org}/{}", gone.name),
                "absent from tenants.yaml; revoked".into(),
                Op::RevokeKey {
                    id: gone.id.clone(),
                },
            );
        }
        Ok(())
    }
}

fn describe_limits(limits: &Limits) -> String {
    let parts: Vec<String> = limits
        .iter()
        .map(|(k, v)| format!("{}={v}", k.as_str()))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(",")
    }
}

fn describe_terms(tier: Tier, limits: &Limits, valid_until: i64) -> String {
    format!(
        "tier {tier}, quotas {}, valid until {}",
        describe_limits(limits),
        to_rfc3339(valid_until)
    )
}

/// Computes the plan of applying `doc` to `current` at `now`.
pub(crate) fn diff(
    doc: &TenantsDoc,
    current: &Current,
    prune: bool,
    dry_run: bool,
    now: i64,
) -> Result<Plan, TenantsError> {
    let mut builder = Builder {
        current,
        now,
        prune,
        changes: Vec::new(),
        ops: Vec::new(),
        deletes: Vec::new(),
        unchanged: 0,
    };
    for tenant in &doc.tenants.0 {
        builder.org(tenant)?;
    }
    let named: HashSet<&str> = doc.tenants.0.iter().map(|t| t.id.as_str()).collect();
    for org in current
        .orgs
        .iter()
        .filter(|o| o.managed && !named.contains(o.slug.as_str()))
    {
        builder.absent_org(org);
    }
    // Deletions last: children before parents as they were found, after every create.
    for (change, op) in builder.deletes {
        builder.changes.push(change);
        builder.ops.push(op);
    }
    Ok(Plan {
        dry_run,
        prune,
        changes: builder.changes,
        unchanged: builder.unchanged,
        ops: builder.ops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tenants_file::plan::{CurrentEnvironment, CurrentOrg, CurrentWorkspace};

    fn org(slug: &str, managed: bool) -> CurrentOrg {
        CurrentOrg {
            id: format!("id-{slug}"),
            slug: slug.into(),
            display_name: slug.into(),
            status: OrgStatus::Active,
            trial_expires_at: None,
            gateway: GatewaySettings::default(),
            managed,
            users: 0,
        }
    }

    fn doc(text: &str) -> TenantsDoc {
        TenantsDoc::parse("tenants.yaml", text).expect("valid")
    }

    fn lines(plan: &Plan) -> Vec<String> {
        plan.changes
            .iter()
            .map(|c| format!("{} {}", c.action.as_str(), c.path))
            .collect()
    }

    #[test]
    fn orgs_made_through_the_api_are_adopted_when_named_and_never_pruned_otherwise() {
        let current = Current {
            orgs: vec![
                org("by-hand", false),
                org("named", false),
                org("gone", true),
            ],
            ..Current::default()
        };
        let plan = diff(
            &doc("tenants:\n- id: named\n  display_name: named\n  tier: free\n"),
            &current,
            true,
            false,
            1_000,
        )
        .expect("plan");
        assert_eq!(
            lines(&plan),
            ["update named", "create named", "delete gone"],
            "{:?}",
            plan.changes
        );
        assert!(plan.changes[0].detail.contains("adopted"));
    }

    #[test]
    fn a_managed_workspace_with_gateways_is_kept_when_pruning() {
        let ws = |slug: &str| CurrentWorkspace {
            id: format!("ws-{slug}"),
            org_id: "id-a".into(),
            slug: slug.into(),
            managed: true,
            created_at: 0,
        };
        let current = Current {
            orgs: vec![org("a", true)],
            workspaces: vec![ws("busy"), ws("idle")],
            environments: vec![CurrentEnvironment {
                id: "env".into(),
                org_id: "id-a".into(),
                workspace_id: "ws-busy".into(),
                slug: "prod".into(),
                managed: true,
                created_at: 0,
                gateways: 2,
            }],
            ..Current::default()
        };
        let text = "tenants:\n- id: a\n  display_name: a\n  tier: free\n";
        let plan = diff(&doc(text), &current, true, false, 1_000).expect("plan");
        assert_eq!(
            lines(&plan),
            ["create a", "keep a/busy", "delete a/idle"],
            "{:?}",
            plan.changes
        );
        assert!(plan.changes[1].detail.contains("2 gateway(s)"));
        let unpruned = diff(&doc(text), &current, false, false, 1_000).expect("plan");
        assert_eq!(unpruned.count(ChangeAction::Delete), 0);
    }
}
