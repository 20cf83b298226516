//! Operations: health, readiness, Prometheus metrics and the OpenAPI document.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use crate::http::state::AppState;

/// The OpenAPI document of this service (kept in `docs/openapi.yaml`).
pub(crate) const OPENAPI_YAML: &str = include_str!("../../../../../docs/openapi.yaml");

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.yaml", get(openapi))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.store.ping().await.is_ok();
    let snapshot = state.keyring.snapshot();
    let key = snapshot.is_some();
    // A key whose certificate expired or was revoked signs nothing: not ready.
    let certificate = snapshot
        .as_ref()
        .is_some_and(|s| !s.revoked && s.certificate_expires_at > state.now());
    let status = if database && key && certificate {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "not_ready" },
        "database": database,
        "active_key": key,
        "certificate_valid": certificate,
    });
    (status, axum::Json(body))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Quota gauges are read at scrape time so that they are never staler than the scrape.
    match state.store.usage().await {
        Ok(usage) => crate::infra::telemetry::record_usage(&usage),
        Err(error) => tracing::warn!(error = %error, "cannot read quota usage for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML)
}
