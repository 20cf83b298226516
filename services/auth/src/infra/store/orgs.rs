//! Organizations: the tenants. Cross-tenant operations for the global admin.

use serde_json::json;
use sqlx::FromRow;

use super::audit_log::{Actor, AuditAction, Event};
use super::scope::Scoped;
use super::{Store, StoreError, TenantStore, in_tx, on_pool};
use crate::domain::{OrgStatus, Slug, new_id};

/// An org as stored.
#[derive(Debug, Clone)]
pub struct OrgRecord {
    /// Internal id.
    pub id: String,
    /// Slug used in paths and tokens.
    pub slug: String,
    /// Human name.
    pub display_name: String,
    /// Status.
    pub status: OrgStatus,
    /// End of the trial, for status `trial`.
    pub trial_expires_at: Option<i64>,
    /// Gateway-side setting: the Kubernetes namespace the org's MCP servers run in.
    pub namespace: Option<String>,
    /// Gateway-side setting: the server catalog file the org's gateways load.
    pub catalog_file: Option<String>,
    /// The host label that selects the org under subdomain routing, besides its slug.
    pub routing_name: Option<String>,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last changed (Unix seconds).
    pub updated_at: i64,
}

/// An `orgs` row (also read by the `reconcile` module).
#[derive(FromRow)]
pub(super) struct OrgRow {
    id: String,
    slug: String,
    display_name: String,
    status: String,
    trial_expires_at: Option<i64>,
    namespace: Option<String>,
    catalog_file: Option<String>,
    routing_name: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<OrgRow> for OrgRecord {
    type Error = StoreError;
    fn try_from(row: OrgRow) -> Result<Self, StoreError> {
        Ok(Self {
            status: row
                .status
                .parse()
                .map_err(|e: crate::domain::UnknownValue| StoreError::Corrupt(e.to_string()))?,
            id: row.id,
            slug: row.slug,
            display_name: row.display_name,
            trial_expires_at: row.trial_expires_at,
            namespace: row.namespace,
            catalog_file: row.catalog_file,
            routing_name: row.routing_name,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A new org.
#[derive(Debug, Clone)]
pub struct NewOrg {
    /// Slug.
    pub slug: Slug,
    /// Human name.
    pub display_name: String,
    /// Initial status.
    pub status: OrgStatus,
    /// End of the trial.
    pub trial_expires_at: Option<i64>,
    /// Routing name (a checked DNS label).
    pub routing_name: Option<String>,
}

/// Changes to an org; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub(crate) struct OrgPatch {
    /// New name.
    pub(crate) display_name: Option<String>,
    /// New status.
    pub(crate) status: Option<OrgStatus>,
    /// New trial end (`Some(None)` clears it).
    pub(crate) trial_expires_at: Option<Option<i64>>,
    /// New gateway-side namespace (`Some(None)` clears it).
    pub(crate) namespace: Option<Option<String>>,
    /// New gateway-side catalog file (`Some(None)` clears it).
    pub(crate) catalog_file: Option<Option<String>>,
    /// New routing name (`Some(None)` clears it).
    pub(crate) routing_name: Option<Option<String>>,
}

pub(super) const COLUMNS: &str = "id, slug, display_name, status, trial_expires_at, \
     namespace, catalog_file, routing_name, created_at, updated_at";

/// The refusal of a label that would name two orgs.
const LABEL_TAKEN: &str = "this name is already another organization's slug or routing name (one host label names one organization)";

/// Whether `label` is already another org's slug or routing name (`own_id`: the org
/// being changed, excluded). Checked inside the writing transaction; the unique index on
/// routing names closes the race between two routing names, and a slug/routing-name race
/// between two creates can only make both hosts name the routing-name org (see
/// [`Store::org_slug_by_host_label`]).
macro_rules! label_taken {
    ($tx:expr, $label:expr, $own_id:expr) => {{
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM orgs WHERE (slug = $1 OR routing_name = $1) AND id <> $2 LIMIT 1",
        )
        .bind($label)
        .bind($own_id)
        .fetch_optional(&mut *$tx)
        .await?;
        row.is_some()
    }};
}

impl Store {
    /// Creates an org (the first entry of its audit chain records it); a taken slug is a
    /// conflict.
    pub async fn create_org(
        &self,
        org: &NewOrg,
        actor: &Actor,
        now: i64,
    ) -> Result<OrgRecord, StoreError> {
        let sql = format!(
            "INSERT INTO orgs (id, slug, display_name, status, trial_expires_at, routing_name, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $7, $6, $6) RETURNING {COLUMNS}"
        );
        let id = new_id();
        let scoped = Scoped::org(self, &id);
        let row: OrgRow = in_tx!(scoped, tx => {
            if label_taken!(tx, org.slug.as_str(), &id) {
                return Err(StoreError::Conflict(LABEL_TAKEN));
            }
            if let Some(name) = &org.routing_name
                && name != org.slug.as_str()
                && label_taken!(tx, name, &id)
            {
                return Err(StoreError::Conflict(LABEL_TAKEN));
            }
            let row: OrgRow = sqlx::query_as(&sql)
                .bind(&id)
                .bind(org.slug.as_str())
                .bind(&org.display_name)
                .bind(org.status.as_str())
                .bind(org.trial_expires_at)
                .bind(now)
                .bind(org.routing_name.as_deref())
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::unique("an organization with this slug already exists"))?;
            let event = Event::new(AuditAction::OrgCreate, org.slug.as_str(), json!({
                "display_name": org.display_name, "status": org.status.as_str(),
                "trial_expires_at": org.trial_expires_at, "routing_name": org.routing_name,
            }));
            tx.append_audit(&id, actor, &[event], now).await?;
            row
        });
        row.try_into()
    }

    /// All orgs, by slug (for the API, page with [`Store::orgs_page`]).
    pub(crate) async fn list_orgs(&self) -> Result<Vec<OrgRecord>, StoreError> {
        self.orgs_page(None, "", i64::MAX).await
    }

    /// Up to `limit` orgs with a slug after `after` (`""`: from the first), by slug; only
    /// the org with id `only` when given.
    pub(crate) async fn orgs_page(
        &self,
        only: Option<&str>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<OrgRecord>, StoreError> {
        let rows: Vec<OrgRow> = match only {
            None => {
                let sql =
                    format!("SELECT {COLUMNS} FROM orgs WHERE slug > $1 ORDER BY slug LIMIT $2");
                on_pool!(self, pool => sqlx::query_as(&sql)
                    .bind(after).bind(limit).fetch_all(pool).await?)
            }
            Some(id) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM orgs WHERE id = $1 AND slug > $2 ORDER BY slug LIMIT $3"
                );
                on_pool!(self, pool => sqlx::query_as(&sql)
                    .bind(id).bind(after).bind(limit).fetch_all(pool).await?)
            }
        };
        rows.into_iter().map(OrgRecord::try_from).collect()
    }

    /// The org with this slug.
    pub(crate) async fn org_by_slug(&self, slug: &str) -> Result<OrgRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM orgs WHERE slug = $1");
        let row: Option<OrgRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(slug)
            .fetch_optional(pool)
            .await?);
        row.ok_or(StoreError::NotFound("organization"))?.try_into()
    }

    /// The slug of the org a host label names under subdomain routing: the org whose
    /// routing name it is, else the org whose slug it is.
    pub(crate) async fn org_slug_by_host_label(
        &self,
        label: &str,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT slug FROM orgs WHERE routing_name = $1 OR slug = $1 \
             ORDER BY CASE WHEN routing_name = $1 THEN 0 ELSE 1 END LIMIT 1")
            .bind(label)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(|(slug,)| slug))
    }

    /// The slug of the org with this id (tenant selection by a token bound to one org).
    pub(crate) async fn org_slug_by_id(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT slug FROM orgs WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(|(slug,)| slug))
    }
}

impl TenantStore<'_> {
    /// Applies `patch` to this org.
    pub(crate) async fn update_org(
        &self,
        patch: &OrgPatch,
        now: i64,
    ) -> Result<OrgRecord, StoreError> {
        let sql = format!(
            "UPDATE orgs SET display_name = COALESCE($2, display_name), \
             status = COALESCE($3, status), \
             trial_expires_at = CASE WHEN $4 = 1 THEN $5 ELSE trial_expires_at END, \
             namespace = CASE WHEN $7 = 1 THEN $8 ELSE namespace END, \
             catalog_file = CASE WHEN $9 = 1 THEN $10 ELSE catalog_file END, \
             routing_name = CASE WHEN $11 = 1 THEN $12 ELSE routing_name END, \
             updated_at = $6 WHERE id = $1 RETURNING {COLUMNS}"
        );
        let (set_trial, trial) = match patch.trial_expires_at {
            Some(value) => (1_i64, value),
            None => (0, None),
        };
        let text = |value: &Option<Option<String>>| match value {
            Some(value) => (1_i64, value.clone()),
            None => (0, None),
        };
        let (set_namespace, namespace) = text(&patch.namespace);
        let (set_catalog, catalog_file) = text(&patch.catalog_file);
        let (set_routing, routing_name) = text(&patch.routing_name);
        let actor = self.actor();
        let org_id = self.org_id();
        let row: OrgRow = in_tx!(self.store(), tx => {
            if let Some(name) = &routing_name
                && label_taken!(tx, name, org_id)
            {
                return Err(StoreError::Conflict(LABEL_TAKEN));
            }
            let row: Option<OrgRow> = sqlx::query_as(&sql)
                .bind(org_id)
                .bind(patch.display_name.as_deref())
                .bind(patch.status.map(OrgStatus::as_str))
                .bind(set_trial)
                .bind(trial)
                .bind(now)
                .bind(set_namespace)
                .bind(&namespace)
                .bind(set_catalog)
                .bind(&catalog_file)
                .bind(set_routing)
                .bind(&routing_name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::unique(LABEL_TAKEN))?;
            let row = row.ok_or(StoreError::NotFound("organization"))?;
            let event = Event::new(AuditAction::OrgUpdate, row.slug.as_str(), json!({
                "display_name": patch.display_name, "status": patch.status.map(OrgStatus::as_str),
                "trial_expires_at": patch.trial_expires_at,
                "namespace": patch.namespace, "catalog_file": patch.catalog_file,
                "routing_name": patch.routing_name,
            }));
            tx.append_audit(org_id, &actor, &[event], now).await?;
            row
        });
        row.try_into()
    }
}
