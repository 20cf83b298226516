//! The federation API, the contract with gateways: token endpoint, JWKS, metadata.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mcpg_license_core::clock::to_rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{ApiError, Result};
use crate::extract::GatewayCredential;
use crate::issuer::{GRACE, IssueError, REFRESH_AFTER};
use crate::keyring::TOKEN_LIFETIME;
use crate::state::AppState;
use crate::telemetry::{TOKENS_ISSUED, record_org};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/federation/token", post(token))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/mcpg-federation", get(metadata))
}

/// Optional body of the token request.
#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    /// Host name or pod id, for logs only.
    #[serde(default)]
    instance: Option<String>,
}

#[derive(Debug, Serialize)]
struct TokenResponse {
    token: String,
    token_type: &'static str,
    expires_at: String,
    refresh_after: String,
    grace_until: String,
    kid: String,
    issuer_certificate: String,
}

async fn token(
    State(state): State<AppState>,
    GatewayCredential(credential): GatewayCredential,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, axum::Json<TokenResponse>)> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => ApiError::BadRequest("cannot read body".into()),
    })?;
    let request: TokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TokenRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!("body must be empty or a JSON object: {e}"))
        })?
    };
    let outcome = state.issuer.issue(&credential, state.now()).await;
    let (org, label) = match &outcome {
        Ok(issued) => (issued.claims.org.clone(), "issued"),
        Err(IssueError::Refused { refusal, org }) => (org.clone(), refusal.code()),
        Err(IssueError::RateLimited { org, .. }) => (org.clone(), "rate_limited"),
        Err(IssueError::InvalidCredential) => ("-".to_owned(), "invalid_credential"),
        Err(_) => ("-".to_owned(), "error"),
    };
    metrics::counter!(TOKENS_ISSUED, "org" => org.clone(), "outcome" => label).increment(1);
    if org != "-" {
        record_org(&org);
    }
    let issued = outcome.map_err(|error| match error {
        IssueError::InvalidCredential => ApiError::InvalidCredential,
        IssueError::Refused { refusal, .. } => ApiError::Refused(refusal),
        IssueError::RateLimited { decision, .. } => ApiError::RateLimited(decision),
        IssueError::NoKey => ApiError::Unavailable("no signing key is active yet"),
        other => ApiError::internal(other),
    })?;
    if let Some(instance) = request.instance.as_deref() {
        tracing::debug!(instance = %instance.chars().take(128).collect::<String>(), "token issued");
    }
    let mut headers = HeaderMap::new();
    if let Some(rate) = &issued.rate {
        rate.write_headers(&mut headers);
    }
    let claims = &issued.claims;
    Ok((
        headers,
        axum::Json(TokenResponse {
            token_type: mcpg_license_core::jwt::JWT_TYPE,
            expires_at: to_rfc3339(claims.exp),
            refresh_after: to_rfc3339(claims.rfa.unwrap_or(claims.exp)),
            grace_until: to_rfc3339(claims.grc.unwrap_or(claims.exp)),
            kid: issued.kid,
            issuer_certificate: issued.issuer_certificate,
            token: issued.token,
        }),
    ))
}

async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let snapshot = state
        .keyring
        .snapshot()
        .ok_or(ApiError::Unavailable("no signing key is active yet"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        snapshot.jwks_json.clone(),
    ))
}

async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    let issuer = &state.info.issuer;
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "token_endpoint": format!("{issuer}/v1/federation/token"),
            "token_lifetime_seconds": TOKEN_LIFETIME,
            "refresh_interval_seconds": REFRESH_AFTER,
            "grace_seconds": GRACE,
            "token_type": mcpg_license_core::jwt::JWT_TYPE,
            "root_kids": state.info.root_kids,
        })),
    )
}
