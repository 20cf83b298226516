//! The certificates of a signing key (global admin only): during a root rollover a new
//! root's certificate of the same key is added, served beside the old one, and the old one
//! is removed once every gateway pins the new root.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use mcpg_license_core::clock::to_rfc3339;
use serde::{Deserialize, Serialize};

use crate::http::error::{ApiError, Result};
use crate::http::extract::{ApiJson, Principal};
use crate::http::state::AppState;
use crate::infra::keyring::{CertificateInfo, KeyringError};
use crate::infra::store::Actor;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/keys/{kid}/certificates", post(add))
        .route("/v1/admin/keys/{kid}/certificates/{cid}", delete(remove))
}

/// One certificate of a key, as listed.
#[derive(Debug, Serialize)]
pub(super) struct CertificateView {
    cid: String,
    root_kid: String,
    expires_at: String,
    primary: bool,
}

impl From<CertificateInfo> for CertificateView {
    fn from(info: CertificateInfo) -> Self {
        Self {
            cid: info.cid,
            root_kid: info.root_kid,
            expires_at: to_rfc3339(info.expires_at),
            primary: info.primary,
        }
    }
}

/// Another root's certificate of the key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddCertificate {
    /// The certificate (PASETO `v4.public`).
    certificate: String,
}

async fn add(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    Path(kid): Path<String>,
    ApiJson(body): ApiJson<AddCertificate>,
) -> Result<(StatusCode, axum::Json<CertificateView>)> {
    principal.require_global()?;
    let info = state
        .keyring
        .add_certificate(&kid, body.certificate.trim(), &actor, state.now())
        .await
        .map_err(keyring_error)?;
    tracing::info!(kid = %kid, cid = %info.cid, root = %info.root_kid, "certificate added to the signing key");
    Ok((StatusCode::CREATED, axum::Json(info.into())))
}

async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    Path((kid, cid)): Path<(String, String)>,
) -> Result<StatusCode> {
    principal.require_global()?;
    state
        .keyring
        .remove_certificate(&kid, &cid, &actor, state.now())
        .await
        .map_err(keyring_error)?;
    tracing::info!(kid = %kid, cid = %cid, "certificate removed from the signing key");
    Ok(StatusCode::NO_CONTENT)
}

fn keyring_error(error: KeyringError) -> ApiError {
    match error {
        KeyringError::Certificate { message, .. } => {
            ApiError::BadRequest(format!("certificate {message}"))
        }
        KeyringError::Revoked { .. } => ApiError::BadRequest(error.to_string()),
        KeyringError::Conflict(message) => ApiError::Conflict(message),
        KeyringError::Store(store) => ApiError::from(store),
        other => ApiError::internal(other),
    }
}
