//! Revocation lists: a global admin uploads the vendor's root-signed list
//! (`PUT /v1/admin/revocations`), gateways fetch it (`GET /.well-known/mcpg-revocations`),
//! and this service stops signing under a certificate it names.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use mcpg_license_core::RevocationList;
use mcpg_license_core::clock::to_rfc3339;
use serde::Serialize;

use crate::http::error::{ApiError, Result};
use crate::http::extract::Principal;
use crate::http::state::AppState;
use crate::infra::store::Actor;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/mcpg-revocations", get(published))
        .route("/v1/admin/revocations", get(show).put(upload))
}

/// What the admin API says about a list.
#[derive(Debug, Serialize)]
struct ListView {
    serial: u64,
    issued_at: String,
    certificates: Vec<String>,
    licenses: Vec<String>,
    list: String,
}

impl ListView {
    fn new(list: RevocationList, text: String) -> Self {
        let mut certificates: Vec<String> = list.certificates.into_iter().collect();
        let mut licenses: Vec<String> = list.licenses.into_iter().collect();
        certificates.sort();
        licenses.sort();
        Self {
            serial: list.serial,
            issued_at: to_rfc3339(list.iat),
            certificates,
            licenses,
            list: text,
        }
    }
}

/// The list in force as the PASETO text gateways verify themselves; 404 when none was
/// uploaded.
async fn published(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let stored = state
        .store
        .revocation_list()
        .await?
        .ok_or(ApiError::NotFound("revocation list"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        stored.list,
    ))
}

async fn show(State(state): State<AppState>, principal: Principal) -> Result<axum::Json<ListView>> {
    principal.require_global()?;
    let stored = state
        .store
        .revocation_list()
        .await?
        .ok_or(ApiError::NotFound("revocation list"))?;
    let list = state
        .keyring
        .trust()
        .verify_revocation_list(&stored.list)
        .map_err(|e| ApiError::Conflict(format!("the stored list no longer verifies: {e}")))?;
    Ok(axum::Json(ListView::new(list, stored.list)))
}

async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<ListView>> {
    principal.require_global()?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => ApiError::BadRequest("cannot read body".into()),
    })?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the body must be the list's PASETO text".into()))?
        .trim()
        .to_owned();
    let list = state
        .keyring
        .trust()
        .verify_revocation_list(&text)
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "the revocation list does not verify against the trusted roots ({}): {e}",
                e.code()
            ))
        })?;
    // Stored as a signed 64-bit integer.
    i64::try_from(list.serial)
        .map_err(|_| ApiError::BadRequest("the serial is too large".into()))?;
    let now = state.now();
    if !state
        .store
        .insert_revocation_list(&list, &text, &actor, now)
        .await?
    {
        let current = state.store.revocation_list().await?.map(|s| s.serial);
        return Err(ApiError::Conflict(format!(
            "serial {} is not higher than the list in force (serial {})",
            list.serial,
            current.unwrap_or_default()
        )));
    }
    tracing::warn!(
        serial = list.serial,
        certificates = list.certificates.len(),
        licenses = list.licenses.len(),
        "revocation list uploaded"
    );
    // Stop signing at once if the active key's certificate is named.
    state
        .keyring
        .reload(now)
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(ListView::new(list, text)))
}
