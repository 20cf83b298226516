//! HTTP routes: one module per resource, merged here with the cross-cutting layers
//! (request ids, spans, latency metrics, load shedding, timeouts, body limit).

pub(crate) mod admin;
mod archives;
mod audit;
mod federation;
mod gateways;
mod hierarchy;
mod key_certificates;
pub(crate) mod licenses;
mod oidc;
mod ops;
pub(crate) mod orgs;
mod plugin_sets;
pub(crate) mod rbac;
mod revocations;
mod tenants;
mod usage;
mod usage_import;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower::ServiceBuilder;

use crate::http::error::ApiError;
use crate::http::state::AppState;

pub(crate) use crate::http::layers::{Guard, GuardLayer, RequestContext, RequestContextLayer};
pub(crate) use gateways::prepare as prepare_gateway;

/// Largest accepted request body.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// The HTTP layer's guards: timeouts and load shedding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestGuards {
    /// Per-request timeout.
    pub(crate) timeout: Duration,
    /// Requests in flight before shedding load with 503.
    pub(crate) max_in_flight: usize,
    /// Time a client has to send a request's headers (the server loop's, see `serve`).
    pub(crate) header_read_timeout: Duration,
}

impl Default for RequestGuards {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_in_flight: 1024,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// The whole API service: the routes inside the request context (id, span) and the guard
/// (load shedding, timeout). hyper clones it for every request, which costs three `Arc`
/// clones.
pub(crate) fn service(state: AppState, guards: RequestGuards) -> RequestContext<Guard<Router>> {
    wrap(router(state), guards)
}

/// The operations listener's service (`/metrics`, probes, version) with the same request
/// context and guard as the API: a scrape or probe that hangs on the database is cut off at
/// the request timeout.
pub(crate) fn ops_service(state: AppState, guards: RequestGuards) -> RequestContext<Guard<Router>> {
    wrap(ops::ops_router(state), guards)
}

fn wrap(router: Router, guards: RequestGuards) -> RequestContext<Guard<Router>> {
    ServiceBuilder::new()
        .layer(RequestContextLayer)
        .layer(GuardLayer::new(guards.max_in_flight, guards.timeout))
        .service(router)
}

/// The routes with their route layers, behind tenant selection (tests may drive it with
/// `oneshot`).
pub(crate) fn router(state: AppState) -> Router {
    // Tenant selection rewrites `/v1/workspaces…` to `/v1/orgs/{org}/workspaces…` (see
    // `crate::http::select`), so it must run before routing: around the routed router, not
    // as one of its layers. Other paths pass after one prefix comparison.
    let selecting = crate::http::select::Selecting::new(state.clone(), routes(state));
    Router::new().fallback_service(selecting)
}

fn routes(state: AppState) -> Router {
    Router::new()
        .merge(orgs::router())
        .merge(licenses::router())
        .merge(hierarchy::router())
        .merge(gateways::router())
        .merge(plugin_sets::router())
        .merge(admin::router())
        .merge(archives::router())
        .merge(key_certificates::router())
        .merge(rbac::router())
        .merge(oidc::router())
        .merge(tenants::router())
        .merge(revocations::router())
        .merge(audit::router())
        .merge(usage::router())
        .merge(usage_import::router())
        // Per-org and admin rate limits; inside the tenant resolution below, so it sees the
        // resolved org and the authenticated caller (see `crate::infra::limiter`).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::ratelimit::limit_requests,
        ))
        // Runs before every handler of a route with an `{org}` segment (see `crate::http::authorize`).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::authorize::resolve_tenant,
        ))
        // Outermost of the management routes: sees every refusal above with its caller and
        // route template (see `crate::http::denials`).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::denials::record_denials,
        ))
        // The federation and operations routes have no org in their path and do their own
        // rate limiting (the issuer checks the org's rate), so they skip the two layers above:
        // the token endpoint is the hot path.
        .merge(ops::router())
        .merge(federation::router())
        // The operator console: HTML pages with their own session and tenant layers.
        .merge(crate::http::console::router(state.clone()))
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(crate::http::layers::LatencyLayer)
        .with_state(state)
}
