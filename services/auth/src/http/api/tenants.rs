//! Tenants as code through the API (global admin): `POST /v1/admin/tenants/apply` with a
//! `tenants.yaml` as body returns the plan (and applies it unless `dry_run=true`);
//! `GET /v1/admin/tenants/status` tells what the file reloader of this replica did last.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::domain::tenants_file::{
    ApplyOptions, ChangeAction, MAX_DOCUMENT_BYTES, Plan, TenantsDoc, TenantsError,
};
use crate::http::error::{ApiError, Result};
use crate::http::extract::Principal;
use crate::http::state::AppState;
use crate::http::tenants_status::StatusView;
use crate::infra::issuer::check_tenants_fit;
use crate::infra::store::Actor;
use crate::infra::store::ApplyError;

/// Media types accepted for the document.
const YAML_TYPES: [&str; 4] = [
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/admin/tenants/apply",
            // The general body limit is smaller than a tenants document may be.
            post(apply).layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES)),
        )
        .route("/v1/admin/tenants/status", get(status))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyQuery {
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    dry_run: bool,
}

impl From<TenantsError> for ApiError {
    fn from(error: TenantsError) -> Self {
        match error {
            TenantsError::Invalid { .. } => ApiError::BadRequest(error.to_string()),
            TenantsError::Alias { .. } => ApiError::YamlAlias(error.to_string()),
            TenantsError::UnknownEntitlement(message) => ApiError::UnknownEntitlement(message),
            TenantsError::OutsideCertificateBounds(message) => {
                ApiError::OutsideCertificateBounds(message)
            }
            TenantsError::TooLarge(message) => ApiError::TenantsTooLarge(message),
            TenantsError::Conflict(message) => ApiError::Conflict(message),
        }
    }
}

impl From<ApplyError> for ApiError {
    fn from(error: ApplyError) -> Self {
        match error {
            ApplyError::Refused(refused) => refused.into(),
            ApplyError::Store(store) => store.into(),
        }
    }
}

async fn apply(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    headers: HeaderMap,
    query: Result<Query<ApplyQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Plan>> {
    principal.require_global()?;
    let Query(options) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !media.is_some_and(|m| YAML_TYPES.contains(&m.as_str())) {
        return Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/yaml".into(),
        ));
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(format!("cannot read body: {}", rejection.body_text()))
        }
    })?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the document is not UTF-8 text".into()))?;
    let max_objects = state.info.tenants_max_objects;
    let doc = TenantsDoc::parse_bounded("tenants.yaml", text, max_objects)?;
    check_tenants_fit(state.keyring.snapshot().as_deref(), &doc, state.now())?;
    let options = ApplyOptions {
        prune: options.prune,
        dry_run: options.dry_run,
        max_objects,
    };
    let plan = state
        .store
        .reconcile_tenants(&doc, options, &actor, state.now())
        .await?;
    tracing::info!(
        by = %principal.token_id,
        dry_run = options.dry_run,
        prune = options.prune,
        create = plan.count(ChangeAction::Create),
        update = plan.count(ChangeAction::Update),
        delete = plan.count(ChangeAction::Delete),
        "tenants applied through the API"
    );
    Ok(axum::Json(plan))
}

async fn status(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<StatusView>> {
    principal.require_global()?;
    Ok(axum::Json(state.tenants.view()))
}
