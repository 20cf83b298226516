//! Cross-tenant administration: signing keys and API tokens (global admin only).

use axum::Router;
use axum::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use mcpg_license_core::clock::to_rfc3339;
use serde::{Deserialize, Serialize};

use crate::domain::credential::{Credential, CredentialKind};
use crate::domain::{KeyState, Slug};
use crate::http::error::{ApiError, Result};
use crate::http::extract::{ApiJson, Principal};
use crate::http::page::{ListRoute, PageRequest, Paged};
use crate::http::state::AppState;
use crate::infra::keyring::{KeyringError, certificates_of};
use crate::infra::store::{Actor, AdminTokenRecord, KeyRecord};

use super::key_certificates::CertificateView;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/keys", get(list_keys))
        .route("/v1/admin/keys/rotate", post(rotate))
        .route("/v1/admin/keys/import", post(import))
        .route("/v1/admin/tokens", post(create_token).get(list_tokens))
        .route("/v1/admin/tokens/{id}", delete(revoke_token))
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
    /// Every certificate of the key, primary first.
    certificates: Vec<CertificateView>,
}

impl From<KeyRecord> for KeyView {
    fn from(key: KeyRecord) -> Self {
        Self {
            certificates: certificates_of(&key)
                .into_iter()
                .map(CertificateView::from)
                .collect(),
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
    actor: Actor,
) -> Result<(StatusCode, axum::Json<KeyView>)> {
    let key = rotate_key(&state, &principal, &actor).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(key.into())))
}

/// Starts a key rotation (global admin only): `POST /v1/admin/keys/rotate`, and the
/// console's button. The new key is published now and signs after the publish delay.
pub(crate) async fn rotate_key(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
) -> Result<KeyRecord> {
    principal.require_global()?;
    let key = state
        .keyring
        .rotate(actor, state.now())
        .await
        .map_err(|error| match error {
            KeyringError::NoRoot => ApiError::Conflict(error.to_string()),
            other => ApiError::internal(other),
        })?;
    tracing::info!(kid = %key.kid, activate_at = key.activate_at, "key rotation started");
    Ok(key)
}

/// A certified key to roll to (BYOC): the secret key and its certificate.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportKey {
    /// PASERK `k4.secret` or PKCS#8 PEM.
    signing_key: secrecy::SecretString,
    /// The key's issuer certificate (PASETO `v4.public`).
    certificate: String,
}

async fn import(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    ApiJson(body): ApiJson<ImportKey>,
) -> Result<(StatusCode, axum::Json<KeyView>)> {
    use secrecy::ExposeSecret;
    principal.require_global()?;
    let key = mcpg_license_core::SigningKey::parse_any(body.signing_key.expose_secret().trim())
        .map_err(|e| ApiError::BadRequest(format!("signing_key: {e}")))?;
    let key = state
        .keyring
        .import(&key, body.certificate.trim(), &actor, state.now())
        .await
        .map_err(|error| match error {
            KeyringError::Certificate { message, .. } => {
                ApiError::BadRequest(format!("certificate {message}"))
            }
            KeyringError::Revoked { .. } => ApiError::BadRequest(error.to_string()),
            KeyringError::Store(store) => ApiError::from(store),
            other => ApiError::internal(other),
        })?;
    tracing::info!(kid = %key.kid, activate_at = key.activate_at, "certified key imported; roll started");
    Ok((StatusCode::ACCEPTED, axum::Json(key.into())))
}

/// The longest token name, in characters.
const MAX_TOKEN_NAME: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    /// Scope the token to one org; absent for a global admin token.
    #[serde(default, deserialize_with = "crate::http::extract::present")]
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
    actor: Actor,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, axum::Json<TokenView>)> {
    principal.require_global()?;
    let name = crate::domain::display_text("name", &body.name, MAX_TOKEN_NAME)?;
    let org = match &body.org {
        Some(slug) => Some(state.store.org_by_slug(slug.as_str()).await?),
        None => None,
    };
    let credential = Credential::generate(CredentialKind::ApiToken).map_err(ApiError::internal)?;
    let record = state
        .store
        .insert_api_token(
            org.as_ref().map(|o| o.id.as_str()),
            &name,
            &credential.hash().to_hex(),
            credential.display_prefix(),
            &actor,
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

#[derive(Debug, Serialize)]
struct TokenListView {
    id: String,
    name: String,
    org: Option<String>,
    token_prefix: String,
    created_at: String,
    revoked_at: Option<String>,
}

impl From<AdminTokenRecord> for TokenListView {
    fn from(token: AdminTokenRecord) -> Self {
        Self {
            id: token.id,
            name: token.name,
            org: token.org,
            token_prefix: token.token_prefix,
            created_at: to_rfc3339(token.created_at),
            revoked_at: token.revoked_at.map(to_rfc3339),
        }
    }
}

async fn list_tokens(
    State(state): State<AppState>,
    principal: Principal,
    page: PageRequest,
) -> Result<Paged<TokenListView>> {
    principal.require_global()?;
    let after: Option<(i64, String)> = page.after(ListRoute::AdminTokens)?;
    let after = after.as_ref().map(|(time, id)| (*time, id.as_str()));
    let rows = state.store.admin_tokens(after, page.fetch()).await?;
    Ok(page
        .answer(ListRoute::AdminTokens, rows, |t| {
            (t.created_at, t.id.clone())
        })
        .map())
}

async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    principal.require_global()?;
    if id.len() > 64 {
        return Err(ApiError::NotFound("token"));
    }
    state
        .store
        .revoke_admin_token(&id, &actor, state.now())
        .await?;
    tracing::info!(token_id = %id, by = %principal.token_id, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
