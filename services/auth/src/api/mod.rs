//! HTTP routes: one module per resource, merged here with the cross-cutting layers
//! (request ids, spans, latency metrics, load shedding, timeouts, body limit).

mod admin;
mod audit;
mod federation;
mod licenses;
mod oidc;
mod ops;
mod orgs;
mod rbac;
mod revocations;
mod tenancy;
mod tenants;

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::response::IntoResponse;
use tower::{BoxError, ServiceBuilder};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Limits of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Requests in flight before shedding load with 503.
    pub max_in_flight: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_in_flight: 1024,
        }
    }
}

/// The whole service as a router (tests may drive it with `oneshot`).
pub fn router(state: AppState, limits: HttpLimits) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = %id,
            org = tracing::field::Empty,
        )
    });
    Router::new()
        .merge(orgs::router())
        .merge(licenses::router())
        .merge(tenancy::router())
        .merge(admin::router())
        .merge(rbac::router())
        .merge(oidc::router())
        .merge(tenants::router())
        .merge(revocations::router())
        .merge(audit::router())
        // Per-org and admin rate limits; inside the tenant resolution below, so it sees the
        // resolved org and the authenticated caller (see `crate::ratelimit`).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::limit_requests,
        ))
        // Runs before every handler of a route with an `{org}` segment (see `crate::access`).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::access::resolve_tenant,
        ))
        // The federation and operations routes have no org in their path and do their own
        // rate limiting (the issuer checks the org's rate), so they skip the two layers above:
        // the token endpoint is the hot path.
        .merge(ops::router())
        .merge(federation::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overload_error))
                .load_shed()
                .concurrency_limit(limits.max_in_flight)
                .timeout(limits.timeout),
        )
        .route_layer(axum::middleware::from_fn(crate::telemetry::track_latency))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::new(request_id)),
        )
        .with_state(state)
}

async fn overload_error(error: BoxError) -> axum::response::Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Unavailable("the server is overloaded; retry shortly").into_response()
    } else if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::Unavailable("the request timed out").into_response()
    } else {
        ApiError::internal(anyhow::anyhow!(error)).into_response()
    }
}
