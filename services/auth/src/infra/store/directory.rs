//! What the issuer's credential directory (`infra::directory`) loads: every org with its
//! license, every environment with its slugs, every plugin set, and every unrevoked
//! gateway's credential hash — all of them, or one org's. Cross-tenant reads (the global
//! scope), like the token path's own lookup.
//!
//! The reads are separate statements, not one snapshot: the directory reloads an org
//! again when a change to it committed while it was being read (see its generation check),
//! so a read that straddles a change is never kept.

use sqlx::FromRow;

use super::grants::OptionalLicense;
use super::{LicenseRecord, Store, StoreError, on_pool};
use crate::domain::OrgStatus;

/// Gateways read per statement: bounded memory for a full load of a large fleet.
const GATEWAYS_PER_PAGE: i64 = 5_000;

/// An org as the token path needs it.
#[derive(Debug, Clone)]
pub(crate) struct DirectoryOrg {
    /// Org id.
    pub(crate) id: String,
    /// Org slug (the token's `org`).
    pub(crate) slug: String,
    /// Status.
    pub(crate) status: OrgStatus,
    /// End of its trial.
    pub(crate) trial_expires_at: Option<i64>,
    /// Its license, if any.
    pub(crate) license: Option<LicenseRecord>,
}

/// An environment as the token path needs it.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct DirectoryEnvironment {
    /// Environment id.
    pub(crate) id: String,
    /// Its workspace's id (where an environment without a set of its own inherits one).
    pub(crate) workspace_id: String,
    /// Workspace slug (the token's `ws`).
    pub(crate) workspace: String,
    /// Environment slug (the token's `env`).
    pub(crate) environment: String,
}

/// An unrevoked gateway's credential and place.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct DirectoryGateway {
    /// Gateway id.
    pub(crate) id: String,
    /// SHA-256 hex of its credential.
    pub(crate) credential_hash: String,
    /// Its org's id.
    pub(crate) org_id: String,
    /// Its environment's id.
    pub(crate) environment_id: String,
}

#[derive(FromRow)]
struct OrgRow {
    org_id: String,
    slug: String,
    status: String,
    trial_expires_at: Option<i64>,
    #[sqlx(flatten)]
    license: OptionalLicense,
}

impl OrgRow {
    fn into_org(self) -> Result<DirectoryOrg, StoreError> {
        Ok(DirectoryOrg {
            license: self.license.into_license()?,
            id: self.org_id,
            slug: self.slug,
            status: self
                .status
                .parse()
                .map_err(|e: crate::domain::UnknownValue| StoreError::Corrupt(e.to_string()))?,
            trial_expires_at: self.trial_expires_at,
        })
    }
}

const ORGS_SQL: &str = "SELECT o.id AS org_id, o.slug, o.status, o.trial_expires_at, \
     l.id, l.tier, l.entitlements_add, l.entitlements_remove, l.limits, l.valid_from, \
     l.valid_until, l.revoked_at, l.revision, l.created_at, l.updated_at \
     FROM orgs o LEFT JOIN licenses l ON l.org_id = o.id";

const ENVIRONMENTS_SQL: &str = "SELECT e.id, e.workspace_id, w.slug AS workspace, \
     e.slug AS environment FROM environments e JOIN workspaces w ON w.id = e.workspace_id";

/// Each set once (an environment's or a workspace's), not once per environment inheriting it.
const PLUGIN_SETS_SQL: &str = "SELECT scope_id, plugins FROM plugin_sets";

const GATEWAYS_SQL: &str = "SELECT id, credential_hash, org_id, environment_id FROM gateways \
     WHERE revoked_at IS NULL AND id > $1";

impl Store {
    /// Every org (`org: None`) or one, with its license; an org whose row cannot be read
    /// (a value this version does not know) is its id and the error, not a failed read.
    pub(crate) async fn directory_orgs(
        &self,
        org: Option<&str>,
    ) -> Result<Vec<Result<DirectoryOrg, (String, StoreError)>>, StoreError> {
        let rows: Vec<OrgRow> = match org {
            None => on_pool!(self.global(), pool => sqlx::query_as(ORGS_SQL)
                .fetch_all(pool).await?),
            Some(org) => {
                let sql = format!("{ORGS_SQL} WHERE o.id = $1");
                on_pool!(self.global(), pool => sqlx::query_as(&sql)
                    .bind(org).fetch_all(pool).await?)
            }
        };
        Ok(rows
            .into_iter()
            .map(|row| {
                let id = row.org_id.clone();
                row.into_org().map_err(|error| (id, error))
            })
            .collect())
    }

    /// The stored plugin sets (by scope: an environment's or a workspace's id) of every
    /// org (`org: None`) or of one.
    pub(crate) async fn directory_plugin_sets(
        &self,
        org: Option<&str>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(match org {
            None => on_pool!(self.global(), pool => sqlx::query_as(PLUGIN_SETS_SQL)
                .fetch_all(pool).await?),
            Some(org) => {
                let sql = format!("{PLUGIN_SETS_SQL} WHERE org_id = $1");
                on_pool!(self.global(), pool => sqlx::query_as(&sql)
                    .bind(org).fetch_all(pool).await?)
            }
        })
    }

    /// Every environment of every org (`org: None`) or of one.
    pub(crate) async fn directory_environments(
        &self,
        org: Option<&str>,
    ) -> Result<Vec<DirectoryEnvironment>, StoreError> {
        Ok(match org {
            None => on_pool!(self.global(), pool => sqlx::query_as(ENVIRONMENTS_SQL)
                .fetch_all(pool).await?),
            Some(org) => {
                let sql = format!("{ENVIRONMENTS_SQL} WHERE e.org_id = $1");
                on_pool!(self.global(), pool => sqlx::query_as(&sql)
                    .bind(org).fetch_all(pool).await?)
            }
        })
    }

    /// Every unrevoked gateway of every org (`org: None`) or of one, handed to `visit` a
    /// page at a time (so a fleet is never all in memory twice).
    pub(crate) async fn directory_gateways(
        &self,
        org: Option<&str>,
        mut visit: impl FnMut(Vec<DirectoryGateway>),
    ) -> Result<(), StoreError> {
        let sql = match org {
            None => format!("{GATEWAYS_SQL} ORDER BY id LIMIT $2"),
            Some(_) => format!("{GATEWAYS_SQL} AND org_id = $3 ORDER BY id LIMIT $2"),
        };
        let mut after = String::new();
        loop {
            let page: Vec<DirectoryGateway> = on_pool!(self.global(), pool => {
                let mut query = sqlx::query_as(&sql).bind(&after).bind(GATEWAYS_PER_PAGE);
                if let Some(org) = org {
                    query = query.bind(org);
                }
                query.fetch_all(pool).await?
            });
            let full = i64::try_from(page.len()).unwrap_or(i64::MAX) == GATEWAYS_PER_PAGE;
            match page.last() {
                Some(last) => after.clone_from(&last.id),
                None => return Ok(()),
            }
            visit(page);
            if !full {
                return Ok(());
            }
        }
    }
}
