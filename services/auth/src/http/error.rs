//! The one error type of the HTTP layer. Every failure leaves as
//! `{"error":{"code","message"}}` with a stable code; server-side causes are logged with
//! their chain and never sent to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::domain::Refusal;
use crate::domain::plugin_sets::{AffectedSet, PluginSetRefusal, describe};
use crate::http::denials::{DenialReason, Denied};
use crate::http::rate_headers::write_headers;
use crate::infra::store::StoreError;

/// `Result` with [`ApiError`] as the default error.
pub(crate) type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Every error a handler can return.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The request is malformed (body, header, parameter).
    #[error("{0}")]
    BadRequest(String),
    /// A tenants document with a YAML anchor or alias.
    #[error("{0}")]
    YamlAlias(String),
    /// A tenants document (or its plan) over a bound.
    #[error("{0}")]
    TenantsTooLarge(String),
    /// A license names entitlement ids the plugin catalog does not know (the message names
    /// each, with a suggestion when one catalog id is close).
    #[error("{0}")]
    UnknownEntitlement(String),
    /// A plugin set names plugins the catalog does not know (the message names each, with a
    /// suggestion when one catalog id is close).
    #[error("{0}")]
    UnknownPlugin(String),
    /// A plugin set names plugins the org's license in force does not entitle: the message
    /// and `plugins` (`[{id, entitlement}]`) name each.
    #[error("{message}")]
    NotEntitled {
        /// The refusal in words.
        message: String,
        /// Each plugin and the entitlement it needs.
        plugins: Value,
    },
    /// A license change would take entitlements from plugin sets in use: the message and
    /// `plugin_sets` (`[{workspace, environment?, plugins}]`) name each.
    #[error("{message}")]
    PluginSetConflict {
        /// The refusal in words.
        message: String,
        /// Each affected set and the plugins it would lose.
        plugin_sets: Value,
    },
    /// Neither the environment nor its workspace has a plugin set (or the one to delete
    /// does not exist).
    #[error("{0}")]
    PluginSetNotFound(String),
    /// A body that is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is larger than allowed.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// Missing or bad management credentials.
    #[error("missing or invalid API token")]
    Unauthenticated,
    /// Missing, malformed, unknown or revoked gateway credential.
    #[error("unknown, malformed or revoked gateway credential")]
    InvalidCredential,
    /// Authenticated but not allowed.
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    /// The tenant named by the path, the `X-Tenant-ID` header or the host disagree.
    #[error("the tenant named by the path, header and host disagree")]
    TenantMismatch,
    /// An org-scoped route without `/orgs/{org}` and nothing else naming the tenant.
    #[error(
        "no tenant named: use /v1/orgs/{{org}}/…, an X-Tenant-ID header, a host ORG.SUFFIX \
         (subdomain routing) or a token bound to one org"
    )]
    TenantRequired,
    /// The org's license lacks the entitlement a feature needs (the message names it).
    #[error("{0}")]
    EntitlementRequired(String),
    /// A create would pass a license limit (the message gives limit and usage).
    #[error("{0}")]
    QuotaExceeded(String),
    /// A delete of something with children, without `cascade=true`.
    #[error("{0}")]
    HasChildren(String),
    /// An explicit no from the token endpoint.
    #[error("{}", .0.message())]
    Refused(Refusal),
    /// The token would lie outside the signing key's issuer certificate (the message names
    /// the bound).
    #[error("{0}")]
    OutsideCertificateBounds(String),
    /// The route exists but not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// Nothing by that name (uniform for unknown and hidden resources).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The resource exists already or the change conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Too many requests; the decision gives the wait and the `RateLimit-*` headers.
    #[error("rate limit exceeded")]
    RateLimited(crate::infra::limiter::Decision),
    /// Overloaded, timed out or not ready; retry later.
    #[error("{0}")]
    Unavailable(&'static str),
    /// A usage bundle refused by its verification (`mcpg_license_core::usage`): 400
    /// `malformed` for a body that is not a well-formed bundle, else 422 with the receipt's
    /// stable code (`bad_signature`, `wrong_deployment_key`, `gap`, `edited`, `removed_day`,
    /// `replayed`, `reordered`, `license_mismatch`).
    #[error("{0}")]
    Receipt(mcpg_license_core::usage::ReceiptError),
    /// A bug or an infrastructure failure; the cause is logged, not returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The status and stable code this error answers with.
    pub(crate) fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::YamlAlias(_) => (StatusCode::BAD_REQUEST, "yaml_alias"),
            ApiError::TenantsTooLarge(_) => (StatusCode::BAD_REQUEST, "tenants_too_large"),
            ApiError::UnknownEntitlement(_) => (StatusCode::BAD_REQUEST, "unknown_entitlement"),
            ApiError::UnknownPlugin(_) => (StatusCode::BAD_REQUEST, "unknown_plugin"),
            ApiError::NotEntitled { .. } => (StatusCode::FORBIDDEN, "not_entitled"),
            ApiError::PluginSetConflict { .. } => (StatusCode::CONFLICT, "plugin_set_conflict"),
            ApiError::PluginSetNotFound(_) => (StatusCode::NOT_FOUND, "plugin_set_not_found"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::InvalidCredential => (StatusCode::UNAUTHORIZED, "invalid_credential"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Refused(refusal) => (StatusCode::FORBIDDEN, refusal.code()),
            ApiError::OutsideCertificateBounds(_) => {
                (StatusCode::FORBIDDEN, "outside_certificate_bounds")
            }
            ApiError::TenantMismatch => (StatusCode::FORBIDDEN, "tenant_mismatch"),
            ApiError::TenantRequired => (StatusCode::BAD_REQUEST, "tenant_required"),
            ApiError::EntitlementRequired(_) => (StatusCode::FORBIDDEN, "entitlement_required"),
            ApiError::QuotaExceeded(_) => (StatusCode::FORBIDDEN, "quota_exceeded"),
            ApiError::HasChildren(_) => (StatusCode::CONFLICT, "has_children"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Receipt(refusal @ mcpg_license_core::usage::ReceiptError::Malformed(_)) => {
                (StatusCode::BAD_REQUEST, refusal.code())
            }
            ApiError::Receipt(refusal) => (StatusCode::UNPROCESSABLE_ENTITY, refusal.code()),
        }
    }

    /// Why this error refuses access, if it does: what `record_denials` counts and logs.
    /// Other 403s (an entitlement, a quota, a certificate bound) refuse a change, not access.
    fn denial(&self) -> Option<DenialReason> {
        match self {
            ApiError::Unauthenticated => Some(DenialReason::Unauthenticated),
            ApiError::Forbidden(_) => Some(DenialReason::Forbidden),
            ApiError::TenantMismatch => Some(DenialReason::TenantMismatch),
            ApiError::NotFound("organization") => Some(DenialReason::OrgNotFound),
            ApiError::Refused(refusal) => Some(DenialReason::OrgStanding(*refusal)),
            _ => None,
        }
    }

    /// A structured member of the error object beside `code` and `message`, if any.
    fn detail(&self) -> Option<(&'static str, &Value)> {
        match self {
            ApiError::NotEntitled { plugins, .. } => Some(("plugins", plugins)),
            ApiError::PluginSetConflict { plugin_sets, .. } => Some(("plugin_sets", plugin_sets)),
            _ => None,
        }
    }

    /// Wraps any server-side failure.
    pub(crate) fn internal(error: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(error.into())
    }
}

impl From<crate::domain::TextError> for ApiError {
    fn from(error: crate::domain::TextError) -> Self {
        ApiError::BadRequest(error.to_string())
    }
}

impl From<crate::domain::SlugError> for ApiError {
    fn from(error: crate::domain::SlugError) -> Self {
        ApiError::BadRequest(format!("slug: {error}"))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(what) => ApiError::Conflict(what.to_owned()),
            StoreError::Duplicate(what) => ApiError::Conflict(what),
            StoreError::Quota { .. } => ApiError::QuotaExceeded(error.to_string()),
            StoreError::HasChildren(what) => ApiError::HasChildren(what),
            StoreError::PluginSetRefused(refusal) => plugin_set_refused(refusal),
            StoreError::PluginSetConflict(affected) => plugin_set_conflict(&affected),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// 400 `unknown_plugin` or 403 `not_entitled` (with `error.plugins`), naming each plugin.
fn plugin_set_refused(refusal: PluginSetRefusal) -> ApiError {
    let message = refusal.message();
    match refusal {
        PluginSetRefusal::Unknown(_) => ApiError::UnknownPlugin(message),
        PluginSetRefusal::NotEntitled(plugins) => ApiError::NotEntitled {
            message,
            plugins: serde_json::to_value(plugins).unwrap_or_default(),
        },
    }
}

/// 409 `plugin_set_conflict` of a license change that would take plugins from `affected`
/// (with `error.plugin_sets`).
fn plugin_set_conflict(affected: &[AffectedSet]) -> ApiError {
    let named: Vec<String> = affected
        .iter()
        .map(|a| format!("{}: {}", a.place(), describe(&a.plugins)))
        .collect();
    ApiError::PluginSetConflict {
        message: format!(
            "the new license would no longer entitle plugins of {} plugin set{} ({}); change \
             the plugin sets first, or repeat with ?force=true",
            affected.len(),
            if affected.len() == 1 { "" } else { "s" },
            named.join("; ")
        ),
        plugin_sets: serde_json::to_value(affected).unwrap_or_default(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let mut error = json!({"code": code, "message": self.to_string()});
        if let (Some((name, value)), Some(object)) = (self.detail(), error.as_object_mut()) {
            object.insert(name.to_owned(), value.clone());
        }
        let body = Json(json!({ "error": error }));
        let mut response = (status, body).into_response();
        match &self {
            ApiError::RateLimited(decision) => write_headers(decision, response.headers_mut()),
            ApiError::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            _ => {}
        }
        if let Some(reason) = self.denial() {
            response.extensions_mut().insert(Denied(reason));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
