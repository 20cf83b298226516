//! Request extractors that answer in our error shape: JSON bodies, management
//! principals (API tokens) and gateway credentials.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::credential::{Credential, CredentialKind};
use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body; malformed, mistyped or oversized bodies become [`ApiError`]s.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        JsonRejection::JsonDataError(e) => {
            ApiError::BadRequest(format!("invalid body: {}", e.body_text()))
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::BadRequest(format!("body is not valid JSON: {}", e.body_text()))
        }
        other => ApiError::BadRequest(format!("cannot read body: {}", other.body_text())),
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The presented gateway credential, checked for format and checksum only.
#[derive(Debug)]
pub struct GatewayCredential(pub Credential);

impl FromRequestParts<AppState> for GatewayCredential {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::InvalidCredential)?;
        Credential::parse(CredentialKind::Gateway, token)
            .map(Self)
            .map_err(|_| ApiError::InvalidCredential)
    }
}

/// Who calls the management API.
///
/// A token without an org is the global (vendor) admin's; a token of an org is a user's
/// personal token (`user_id`), an impersonation by a global admin (`impersonator_id`,
/// time-limited) or an org API key — the last two act as the org's admin.
#[derive(Debug, Clone)]
pub struct Principal {
    /// API token id.
    pub token_id: String,
    /// The org the token is scoped to; `None` for a global admin.
    pub org_id: Option<String>,
    /// The user a personal token belongs to.
    pub user_id: Option<String>,
    /// The global admin token an impersonation token was issued to.
    pub impersonator_id: Option<String>,
}

impl Principal {
    /// Whether this is the global (vendor) admin.
    pub fn is_global(&self) -> bool {
        self.org_id.is_none()
    }

    /// Refuses anyone but a global admin.
    pub fn require_global(&self) -> Result<(), ApiError> {
        match self.org_id {
            None => Ok(()),
            Some(_) => Err(ApiError::Forbidden(
                "this operation needs a global admin token",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(known) = parts.extensions.get::<Principal>() {
            return Ok(known.clone());
        }
        let token = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        let credential = Credential::parse(CredentialKind::ApiToken, token)
            .map_err(|_| ApiError::Unauthenticated)?;
        let hash = credential.hash();
        let record = state
            .store
            .api_token_by_hash(&hash.to_hex(), state.now())
            .await?
            .filter(|record| hash.matches_hex(&record.token_hash))
            .ok_or(ApiError::Unauthenticated)?;
        let principal = Self {
            token_id: record.id,
            org_id: record.org_id,
            user_id: record.user_id,
            impersonator_id: record.impersonator_id,
        };
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}
