//! The `RateLimit-*` headers (and `Retry-After` on a refusal) of a rate-limit decision, on
//! answers and refusals alike.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::infra::limiter::Decision;

const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Writes the `RateLimit-*` headers (and `Retry-After` on a refusal).
pub(crate) fn write_headers(decision: &Decision, headers: &mut HeaderMap) {
    headers.insert(LIMIT, HeaderValue::from(decision.limit));
    headers.insert(REMAINING, HeaderValue::from(decision.remaining));
    headers.insert(RESET, HeaderValue::from(decision.reset));
    if let Some(seconds) = decision.retry_after {
        headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
}
