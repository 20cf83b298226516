//! Organizations: create, list, update, delete (global admin); anyone who may see an org
//! may read it.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use mcpg_license_core::clock::{parse_rfc3339, to_rfc3339};
use mcpg_license_core::{EntitlementSet, Tier};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::hierarchy::{DeleteQuery, cascade};
use crate::domain::rbac::Action;
use crate::domain::{self, OrgStatus, Slug};
use crate::http::authorize::{Access, grants_in};
use crate::http::error::{ApiError, Result};
use crate::http::extract::{ApiJson, Principal};
use crate::http::page::{ListRoute, PageRequest, Paged};
use crate::http::state::AppState;
use crate::infra::issuer::check_grant_fits;
use crate::infra::store::{Actor, NewOrg, OrgPatch, OrgRecord};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs", get(list).post(create))
        .route("/v1/orgs/{org}", get(show).patch(update).delete(remove))
}

/// The longest display name accepted.
const MAX_NAME: usize = 200;

/// The body of an org create (the console's form builds the same).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOrg {
    /// Checked with [`Slug::parse_org`] (reserved names), not only as a slug.
    slug: String,
    display_name: String,
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    status: Option<OrgStatus>,
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    trial_expires_at: Option<String>,
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    routing_name: Option<String>,
}

/// The body of an org PATCH (the console's status form builds the same).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateOrg {
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    display_name: Option<String>,
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    status: Option<OrgStatus>,
    #[serde(default, with = "double_option")]
    trial_expires_at: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    namespace: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    catalog_file: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    routing_name: Option<Option<String>>,
}

/// An org in API responses.
#[derive(Debug, Serialize)]
pub(super) struct OrgView {
    id: String,
    slug: String,
    display_name: String,
    status: OrgStatus,
    trial_expires_at: Option<String>,
    namespace: Option<String>,
    catalog_file: Option<String>,
    routing_name: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<OrgRecord> for OrgView {
    fn from(org: OrgRecord) -> Self {
        Self {
            id: org.id,
            slug: org.slug,
            display_name: org.display_name,
            status: org.status,
            trial_expires_at: org.trial_expires_at.map(to_rfc3339),
            namespace: org.namespace,
            catalog_file: org.catalog_file,
            routing_name: org.routing_name,
            created_at: to_rfc3339(org.created_at),
            updated_at: to_rfc3339(org.updated_at),
        }
    }
}

fn display_name(name: &str) -> Result<String> {
    Ok(domain::display_text("display_name", name, MAX_NAME)?)
}

/// Parses an RFC 3339 time from a request.
pub(super) fn time(field: &str, text: &str) -> Result<i64> {
    parse_rfc3339(text).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{field} must be an RFC 3339 time, e.g. 2027-01-31T00:00:00Z"
        ))
    })
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<(StatusCode, axum::Json<OrgView>)> {
    let created = create_org(&state, &principal, &actor, body).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// Creates an org (global admin only): `POST /v1/orgs`, and the console's form.
pub(crate) async fn create_org(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    body: CreateOrg,
) -> Result<OrgRecord> {
    principal.require_global()?;
    let slug = Slug::parse_org(&body.slug)?;
    let snapshot = state.keyring.snapshot();
    let nothing_granted = EntitlementSet::default();
    check_grant_fits(
        snapshot.as_deref(),
        slug.as_str(),
        Tier::Free,
        &nothing_granted,
        state.now(),
    )
    .map_err(super::licenses::outside_bounds)?;
    let trial_expires_at = body
        .trial_expires_at
        .as_deref()
        .map(|t| time("trial_expires_at", t))
        .transpose()?;
    let status = body.status.unwrap_or(if trial_expires_at.is_some() {
        OrgStatus::Trial
    } else {
        OrgStatus::Active
    });
    if status == OrgStatus::Trial && trial_expires_at.is_none() {
        return Err(ApiError::BadRequest(
            "a trial org needs trial_expires_at".into(),
        ));
    }
    let org = NewOrg {
        slug,
        display_name: display_name(&body.display_name)?,
        status,
        trial_expires_at,
        routing_name: body
            .routing_name
            .as_deref()
            .map(domain::routing_name)
            .transpose()
            .map_err(ApiError::BadRequest)?,
    };
    let created = state.store.create_org(&org, actor, state.now()).await?;
    tracing::info!(org = %created.slug, "organization created");
    Ok(created)
}

/// A global admin pages through every org; anyone else can see at most their own org, so
/// only that one row is read.
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    page: PageRequest,
) -> Result<Paged<OrgView>> {
    let after: Option<String> = page.after(ListRoute::Orgs)?;
    let rows = state
        .store
        .orgs_page(
            principal.org_id.as_deref(),
            after.as_deref().unwrap_or(""),
            page.fetch(),
        )
        .await?;
    let mut visible = Vec::with_capacity(rows.len());
    for org in rows {
        if grants_in(&state, &principal, &org).await?.is_some() {
            visible.push(org);
        }
    }
    Ok(page
        .answer(ListRoute::Orgs, visible, |org| org.slug.clone())
        .map())
}

async fn show(access: Access) -> Result<axum::Json<OrgView>> {
    access.require(Action::ReadOrg)?;
    Ok(axum::Json(access.org.into()))
}

async fn update(
    State(state): State<AppState>,
    access: Access,
    ApiJson(body): ApiJson<UpdateOrg>,
) -> Result<axum::Json<OrgView>> {
    Ok(axum::Json(update_org(&state, &access, body).await?.into()))
}

/// Changes an org (global admin only): `PATCH /v1/orgs/{org}`, and the console's status
/// form.
pub(crate) async fn update_org(
    state: &AppState,
    access: &Access,
    body: UpdateOrg,
) -> Result<OrgRecord> {
    access.require_global()?;
    let current = &access.org;
    let patch = OrgPatch {
        display_name: body.display_name.as_deref().map(display_name).transpose()?,
        status: body.status,
        trial_expires_at: match body.trial_expires_at {
            None => None,
            Some(None) => Some(None),
            Some(Some(text)) => Some(Some(time("trial_expires_at", &text)?)),
        },
        namespace: setting(body.namespace, domain::gateway_namespace)?,
        catalog_file: setting(body.catalog_file, domain::catalog_file)?,
        routing_name: setting(body.routing_name, domain::routing_name)?,
    };
    let trial_end = patch.trial_expires_at.unwrap_or(current.trial_expires_at);
    if patch.status.unwrap_or(current.status) == OrgStatus::Trial && trial_end.is_none() {
        return Err(ApiError::BadRequest(
            "a trial org needs trial_expires_at".into(),
        ));
    }
    let updated = access.tenant().update_org(&patch, state.now()).await?;
    tracing::info!(org = %updated.slug, status = updated.status.as_str(), "organization updated");
    Ok(updated)
}

/// A gateway-side setting of a PATCH: absent leaves it, `null` clears it, text is checked.
fn setting(
    value: Option<Option<String>>,
    check: fn(&str) -> std::result::Result<String, String>,
) -> Result<Option<Option<String>>> {
    value
        .map(|v| v.as_deref().map(check).transpose())
        .transpose()
        .map_err(ApiError::BadRequest)
}

/// Deleting an org: refused with workspaces unless `?cascade=true`; otherwise the org is
/// suspended first (so its gateways are refused at once), then exported and deleted. The
/// answer is the export, which is also kept in `deleted_exports`.
async fn remove(
    State(state): State<AppState>,
    access: Access,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<axum::Json<Value>> {
    access.require_global()?;
    let tenant = access.tenant();
    tenant
        .suspend_for_deletion(cascade(query)?, state.now())
        .await?;
    let export = tenant
        .delete_org_with_export(&access.org.slug, state.now())
        .await?;
    tracing::info!(org = %access.org.slug, by = %access.principal.token_id, "organization deleted");
    Ok(axum::Json(export))
}

/// `null` clears a field, absence leaves it: `Option<Option<T>>` for PATCH bodies.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}
