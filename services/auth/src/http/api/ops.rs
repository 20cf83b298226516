//! Operations: health, readiness, version, Prometheus metrics and the OpenAPI document.
//!
//! Two routers: [`router`] is merged into the API (probes for load balancers, the version,
//! the OpenAPI document) and [`ops_router`] is served on the operations listener
//! (`--ops-listen`), the only place `/metrics` is: its series name every org by slug, which
//! the API keeps from anyone who is not a member (a hidden org is a plain 404 there).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use crate::domain::build_info;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::infra::peers::ListenerState;

/// The OpenAPI document of this service (kept in `docs/openapi.yaml`).
pub(crate) const OPENAPI_YAML: &str = include_str!("../../../../../docs/openapi.yaml");

pub(super) fn router() -> Router<AppState> {
    probes().route("/openapi.yaml", get(openapi))
}

/// What the operations listener serves: the probes, the version and `/metrics`.
pub(crate) fn ops_router(state: AppState) -> Router {
    probes()
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .route_layer(crate::http::layers::LatencyLayer)
        .with_state(state)
}

/// The routes both listeners serve.
fn probes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
}

async fn version() -> impl IntoResponse {
    axum::Json(json!({"version": build_info::VERSION, "commit": build_info::COMMIT}))
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
    // Not a reason to leave the balancer: while the listener is down, the other replicas'
    // changes still arrive, only later (when this replica's caches expire).
    let listener = state.peers.get();
    let body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "not_ready" },
        "database": database,
        "active_key": key,
        "certificate_valid": certificate,
        "change_listener": listener.as_str(),
        "changes_from_other_replicas": changes_detail(listener, state.info.grant_cache_ttl),
        "replicas_alive": state.heartbeat.alive(),
    });
    (status, axum::Json(body))
}

/// How soon a change made on another replica takes effect here.
fn changes_detail(listener: ListenerState, cache_ttl: std::time::Duration) -> String {
    match listener {
        ListenerState::NotApplicable => "none: SQLite serves one replica".to_owned(),
        ListenerState::Listening => "applied as announced (PostgreSQL NOTIFY)".to_owned(),
        ListenerState::Starting | ListenerState::Down => format!(
            "not heard: applied when cached grants expire (within {} s) and at the next key reload",
            cache_ttl.as_secs()
        ),
    }
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
