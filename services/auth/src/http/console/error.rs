//! Refusals and failures as pages: the API's error, with its status and stable code, in
//! words a person reads. Server-side causes are logged, never shown.

use axum::response::{IntoResponse, Response};
use maud::html;

use super::view;
use crate::http::error::ApiError;
use crate::infra::store::StoreError;

/// An [`ApiError`] answered as an HTML page (same status, same code).
#[derive(Debug)]
pub(crate) struct ConsoleError(pub(crate) ApiError);

impl From<ApiError> for ConsoleError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl From<StoreError> for ConsoleError {
    fn from(error: StoreError) -> Self {
        Self(ApiError::from(error))
    }
}

impl From<crate::domain::SlugError> for ConsoleError {
    fn from(error: crate::domain::SlugError) -> Self {
        Self(ApiError::from(error))
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, _) = self.0.status_and_code();
        if let ApiError::Internal(cause) = &self.0 {
            tracing::error!(error = format!("{cause:#}"), "console request failed");
        }
        let signed_out = matches!(self.0, ApiError::Unauthenticated);
        let body = html! {
            h1 { (if status.is_server_error() { "Something went wrong" } else { "Refused" }) }
            (view::refusal(&self.0))
            p {
                @if signed_out {
                    a href="/console/sign-in" { "Sign in" }
                } @else {
                    a href="/console" { "Back to the console" }
                }
            }
        };
        (status, view::bare_page("Refused", body)).into_response()
    }
}
