//! Cross-tenant administration: signing keys and API tokens (global admin only).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use mcpg_license_core::clock::to_rfc3339;
use serde::{Deserialize, Serialize};

use crate::credential::{Credential, CredentialKind};
use crate::domain::{KeyState, Slug};
use crate::error::{ApiError, Result};
use crate::extract::{ApiJson, Principal};
use crate::keyring::KeyringError;
use crate::state::AppState;
use crate::store::KeyRecord;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/keys", get(list_keys))
        .route("/v1/admin/keys/rotate", post(rotate))
        .route("/v1/admin/tokens", post(create_token))
}

#[derive(Debug, Serialize)]
struct KeyView {
    kid: String,
    state: KeyState,
    public_key: String,
    certificate: String,
    certificate_expires_at: String,
    created_at: String,
    activate_at: String,
    activated_at: Option<String>,
    retire_after: Option<String>,
    retired_at: Option<String>,
}

impl From<KeyRecord> for KeyView {
    fn from(key: KeyRecord) -> Self {
        Self {
            kid: key.kid,
            state: key.state,
            public_key: key.public_key,
            certificate: key.certificate,
            certificate_expires_at: to_rfc3339(key.cert_expires_at),
            created_at: to_rfc3339(key.created_at),
            activate_at: to_rfc3339(key.activate_at),
            activated_at: key.activated_at.map(to_rfc3339),
            retire_after: key.retire_after.map(to_rfc3339),
            retired_at: key.retired_at.map(to_rfc3339),
        }
    }
}

async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<Vec<KeyView>>> {
    principal.require_global()?;
    let keys = state.store.keys().await?;
    Ok(axum::Json(keys.into_iter().map(KeyView::from).collect()))
}

async fn rotate(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<(StatusCode, axum::Json<KeyView>)> {
    principal.require_global()?;
    let key = state
        .keyring
        .rotate(state.now())
        .await
        .map_err(|error| match error {
            KeyringError::NoRoot => ApiError::Conflict(error.to_string()),
            other => ApiError::internal(other),
        })?;
    tracing::info!(kid = %key.kid, activate_at = key.activate_at, "key rotation started");
    Ok((StatusCode::ACCEPTED, axum::Json(key.into())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    /// Scope the token to one org; absent for a global admin token.
    #[serde(default)]
    org: Option<Slug>,
}

#[derive(Debug, Serialize)]
struct TokenView {
    id: String,
    name: String,
    org: Option<String>,
    token_prefix: String,
    created_at: String,
    token: String,
}

async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, axum::Json<TokenView>)> {
    principal.require_global()?;
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "name must be 1-200 printable characters".into(),
        ));
    }
    let org = match &body.org {
        Some(slug) => Some(state.store.org_by_slug(slug.as_str()).await?),
        None => None,
    };
    let credential = Credential::generate(CredentialKind::ApiToken).map_err(ApiError::internal)?;
    let record = state
        .store
        .insert_api_token(
            org.as_ref().map(|o| o.id.as_str()),
            name,
            &credential.hash().to_hex(),
            credential.display_prefix(),
            state.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TokenView {
            id: record.id,
            name: record.name,
            org: org.map(|o| o.slug),
            token_prefix: record.token_prefix,
            created_at: to_rfc3339(record.created_at),
            token: credential.expose().to_owned(),
        }),
    ))
}
