//! The rate-limit middleware: charges management requests to their org and principal
//! (after tenant resolution) and cross-tenant admin requests to the admin token, using the
//! limiter of `infra::limiter`, and writes the `RateLimit-*` headers.

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::authorize::Access;
use crate::http::error::ApiError;
use crate::http::extract::Principal;
use crate::http::rate_headers::write_headers;
use crate::http::state::AppState;
use crate::infra::telemetry::ORG_REQUESTS;

/// Who is charged inside an org: a user for all of its personal tokens, else the token
/// (an API key; an OIDC login's id is its issuer and subject).
fn principal_key(principal: &Principal) -> String {
    match &principal.user_id {
        Some(user) => format!("user:{user}"),
        None => format!("token:{}", principal.token_id),
    }
}

/// Whether a route is a cross-tenant admin route.
fn is_admin_route(path: &str) -> bool {
    path == "/v1/orgs" || path.starts_with("/v1/admin/")
}

/// The middleware: limits management requests per org (after tenant resolution) and
/// cross-tenant admin requests per admin token. A global admin acting inside one org is
/// neither charged to nor refused by that org's budget: an org spending its budget (its
/// gateways share it) must not lock the vendor out of suspending or re-licensing it.
/// Unauthenticated requests pass through to be refused by the handler.
pub(crate) async fn limit_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let limiter = &state.limiter;
    let access = parts.extensions.get::<Access>();
    let decision = if access.is_some_and(|access| access.principal.is_global()) {
        None
    } else if let Some(access) = access {
        let (org_id, slug) = (access.org.id.clone(), access.org.slug.clone());
        let rps = limiter.licensed_rps(&state.store, &org_id).await;
        let decision = limiter.check_management(&org_id, &principal_key(&access.principal), rps);
        let outcome = match decision {
            Some(refused) if !refused.allowed() => "rate_limited",
            _ => "allowed",
        };
        metrics::counter!(ORG_REQUESTS, "org" => slug, "outcome" => outcome).increment(1);
        decision
    } else if is_admin_route(parts.uri.path()) {
        match Principal::from_request_parts(&mut parts, &state).await {
            Ok(principal) => match &principal.org_id {
                None => limiter.check_admin(&principal.token_id),
                Some(org_id) => {
                    let rps = limiter.licensed_rps(&state.store, org_id).await;
                    limiter.check_management(org_id, &principal_key(&principal), rps)
                }
            },
            Err(_) => None,
        }
    } else {
        None
    };
    let mut response = match decision {
        Some(refused) if !refused.allowed() => ApiError::RateLimited(refused).into_response(),
        _ => next.run(Request::from_parts(parts, body)).await,
    };
    if let Some(decision) = decision {
        write_headers(&decision, response.headers_mut());
    }
    response
}
