//! The org of `/console/orgs/{org}/…`, resolved before the page runs by the API's own
//! [`crate::http::authorize::resolve`]: the same visibility rule (an org the caller may
//! not see is the same 404 as one that does not exist), the same standing checks, the same
//! tier-gated grants. Pages then ask the resulting [`crate::http::authorize::Access`]
//! exactly what the API's handlers ask it.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ConsoleError;
use crate::http::authorize;
use crate::http::state::AppState;

/// The middleware: puts the org's [`crate::http::authorize::Access`] in the request, or
/// answers the refusal as a page.
pub(crate) async fn resolve(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    authorize::resolve_tenant_then(&state, request, next, |error| {
        ConsoleError(error).into_response()
    })
    .await
}
