//! An org's OIDC provider for operator login: `PUT/GET/DELETE /v1/orgs/{org}/oidc`, for
//! the org's admins (changing who may log in is an admin action).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::routing::put;
use mcpg_license_core::clock::to_rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::rbac::{Action, Role};
use crate::http::authorize::Access;
use crate::http::error::{ApiError, Result};
use crate::http::extract::ApiJson;
use crate::http::state::AppState;
use crate::infra::oidc::{OidcAlgorithm, OidcConfig};
use crate::infra::store::OidcConfigRecord;

pub(super) fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/orgs/{org}/oidc",
        put(set_config).get(show_config).delete(delete_config),
    )
}

/// The algorithm pinned when a request names none.
const DEFAULT_ALGORITHM: OidcAlgorithm = OidcAlgorithm::RS256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetOidc {
    issuer: String,
    audience: String,
    /// Absent: discovered from `{issuer}/.well-known/openid-configuration` now.
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    jwks_uri: Option<String>,
    tenant_claim: String,
    /// Absent: the org's slug.
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    tenant_value: Option<String>,
    role_claim: String,
    #[serde(default)]
    role_map: BTreeMap<String, Role>,
    /// Absent: RS256 only.
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    algorithms: Option<Vec<OidcAlgorithm>>,
}

/// The part of a discovery document read here.
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Debug, Serialize)]
struct OidcView {
    org: String,
    #[serde(flatten)]
    config: OidcConfig,
    created_at: String,
    updated_at: String,
}

impl From<OidcConfigRecord> for OidcView {
    fn from(record: OidcConfigRecord) -> Self {
        Self {
            org: record.org_slug,
            config: record.config,
            created_at: to_rfc3339(record.created_at),
            updated_at: to_rfc3339(record.updated_at),
        }
    }
}

async fn set_config(
    State(state): State<AppState>,
    access: Access,
    ApiJson(body): ApiJson<SetOidc>,
) -> Result<axum::Json<OidcView>> {
    access.require(Action::ManageAccess)?;
    let allow_loopback = state.oidc.jwks().settings().allow_loopback;
    let jwks_uri = match body.jwks_uri {
        Some(uri) => uri,
        None => discover(&state, &body.issuer, allow_loopback).await?,
    };
    let config = OidcConfig {
        issuer: body.issuer,
        audience: body.audience,
        jwks_uri,
        tenant_claim: body.tenant_claim,
        tenant_value: body.tenant_value.unwrap_or_else(|| access.org.slug.clone()),
        role_claim: body.role_claim,
        role_map: body.role_map,
        algorithms: body.algorithms.unwrap_or_else(|| vec![DEFAULT_ALGORITHM]),
    }
    .check(allow_loopback)
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let record = access
        .tenant()
        .set_oidc_config(&config, state.now())
        .await?;
    tracing::info!(
        org = %access.org.slug,
        issuer = %record.config.issuer,
        by = %access.principal.token_id,
        "OIDC provider configured"
    );
    Ok(axum::Json(record.into()))
}

/// The `jwks_uri` of the issuer's discovery document, whose `issuer` must be `issuer`.
async fn discover(state: &AppState, issuer: &str, allow_loopback: bool) -> Result<String> {
    crate::domain::oidc_config::check_url(issuer.trim(), allow_loopback)
        .map_err(|e| ApiError::BadRequest(format!("issuer: {e}")))?;
    let url = OidcConfig::discovery_url(issuer);
    let refused = || {
        ApiError::BadRequest(format!(
            "cannot read an OpenID discovery document for this issuer at {url}; \
             give jwks_uri explicitly"
        ))
    };
    let document: Discovery = state.oidc.jwks().fetch_json(&url).await.map_err(|error| {
        tracing::warn!(url = %url, error = %error, "OIDC discovery failed");
        refused()
    })?;
    if document.issuer != issuer.trim() {
        return Err(ApiError::BadRequest(format!(
            "the discovery document at {url} names issuer {:?}, not {:?}",
            document.issuer,
            issuer.trim()
        )));
    }
    Ok(document.jwks_uri)
}

async fn show_config(access: Access) -> Result<axum::Json<OidcView>> {
    access.require(Action::ManageAccess)?;
    let record = access
        .tenant()
        .oidc_config()
        .await?
        .ok_or(ApiError::NotFound("OIDC configuration"))?;
    Ok(axum::Json(record.into()))
}

async fn delete_config(State(state): State<AppState>, access: Access) -> Result<axum::Json<Value>> {
    access.require(Action::ManageAccess)?;
    access.tenant().delete_oidc_config(state.now()).await?;
    tracing::info!(
        org = %access.org.slug,
        by = %access.principal.token_id,
        "OIDC provider removed"
    );
    Ok(axum::Json(json!({"org": access.org.slug, "deleted": true})))
}
