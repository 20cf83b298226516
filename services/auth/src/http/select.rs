//! Tenant selection: serves every org-scoped route without its `/orgs/{org}` segment
//! (`/v1/workspaces`, `/v1/audit`, …) when something else names the tenant, by rewriting
//! the request's path to `/v1/orgs/{org}…` before routing. [`resolve_tenant`] then runs
//! on the rewritten request exactly as on the prefixed form (visibility, uniform 404,
//! standing, tier gating).
//!
//! The sources, which must agree (else 403 `tenant_mismatch`):
//! 1. the `X-Tenant-ID` header;
//! 2. the caller's token when it is bound to one org (org API tokens, personal and
//!    impersonation tokens, OIDC logins);
//! 3. the host `LABEL.SUFFIX` when `--subdomain-suffix` is set, where the label is the
//!    org's routing name or its slug. When the host is the only
//!    source, the org's license must include `feature:tenancy.subdomain-routing` (checked
//!    in [`resolve_tenant`] after the visibility check, so a hidden org is still 404).
//!
//! None of them → 400 `tenant_required`. Only paths whose first segment is one of an
//! org-scoped route are touched; everything else (the federation token endpoint
//! included) passes after one prefix comparison.
//!
//! [`resolve_tenant`]: crate::http::authorize::resolve_tenant

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use tower::Service;

use crate::http::authorize::{TENANT_HEADER, host_tenant};
use crate::http::error::ApiError;
use crate::http::extract::Principal;
use crate::http::state::AppState;

/// The first path segments (after `/v1/orgs/{org}`) of the org-scoped routes: the routes
/// also served as `/v1/{segment}…`.
pub(crate) const ORG_SCOPED: &[&str] = &["workspaces", "license", "audit", "oidc", "rbac", "users"];

/// The entitlement subdomain routing needs in the org's license.
pub(crate) const SUBDOMAIN_ROUTING: &str = "feature:tenancy.subdomain-routing";

/// Marks a request whose tenant only the host named: [`resolve_tenant`] checks the org's
/// license for [`SUBDOMAIN_ROUTING`].
///
/// [`resolve_tenant`]: crate::http::authorize::resolve_tenant
#[derive(Debug, Clone, Copy)]
pub(crate) struct SelectedByHost;

/// The service around the routed router: other paths go straight to it (one prefix
/// comparison, no allocation: the federation token endpoint is the hot path); selectable
/// ones are rewritten first.
#[derive(Clone)]
pub(crate) struct Selecting {
    state: AppState,
    inner: Router,
}

impl Selecting {
    pub(crate) fn new(state: AppState, inner: Router) -> Self {
        Self { state, inner }
    }
}

impl Service<Request> for Selecting {
    type Response = Response;
    type Error = Infallible;
    type Future = SelectingFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: Request) -> SelectingFuture {
        if !selectable(request.uri().path()) {
            return SelectingFuture::Direct {
                inner: self.inner.call(request),
            };
        }
        let state = self.state.clone();
        let inner = self.inner.clone();
        SelectingFuture::Selected {
            inner: Box::pin(async move { Ok(select_tenant(state, inner, request).await) }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`Selecting`]: the router's own future, or the boxed selection.
    #[project = SelectingProjection]
    pub(crate) enum SelectingFuture {
        Direct { #[pin] inner: RouteFuture<Infallible> },
        Selected { inner: Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>> },
    }
}

impl Future for SelectingFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            SelectingProjection::Direct { inner } => inner.poll(cx),
            SelectingProjection::Selected { inner } => inner.as_mut().poll(cx),
        }
    }
}

async fn select_tenant(state: AppState, mut inner: Router, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let slug = match select(&state, &mut parts).await {
        Ok((slug, by_host)) => {
            if by_host {
                parts.extensions.insert(SelectedByHost);
            }
            slug
        }
        // A refusal still goes through the router, to the org the request named (the one
        // it may be probing), so the denials recorder counts it with its route and caller;
        // tenant resolution answers with it before anything else.
        Err(error) => {
            let named = parts
                .headers
                .get(TENANT_HEADER)
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
                .filter(|named| slug_like(named))
                .map(str::to_owned)
                .or_else(|| {
                    let suffix = state.info.subdomain_suffix.as_deref()?;
                    host_tenant(&parts, suffix).filter(|named| slug_like(named))
                });
            parts
                .extensions
                .insert(SelectionRefused(Arc::new(Mutex::new(Some(error)))));
            named.unwrap_or_else(|| "-".to_owned())
        }
    };
    match rewritten(&parts.uri, &slug) {
        Some(uri) => parts.uri = uri,
        None => return ApiError::BadRequest("invalid request path".into()).into_response(),
    }
    match inner.call(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The refusal of the selection step, answered by tenant resolution.
#[derive(Debug, Clone)]
pub(crate) struct SelectionRefused(Arc<Mutex<Option<ApiError>>>);

impl SelectionRefused {
    /// The refusal (taken once).
    pub(crate) fn take(&self) -> ApiError {
        self.0
            .lock()
            .ok()
            .and_then(|mut error| error.take())
            .unwrap_or(ApiError::TenantRequired)
    }
}

/// Whether `path` is an org-scoped route without its org: `/v1/{segment}` or
/// `/v1/{segment}/…` with `segment` in [`ORG_SCOPED`].
fn selectable(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return false;
    };
    let first = rest.split_once('/').map_or(rest, |(first, _)| first);
    ORG_SCOPED.contains(&first)
}

/// `/v1/orgs/{slug}/{rest}` with the query kept.
fn rewritten(uri: &Uri, slug: &str) -> Option<Uri> {
    let rest = uri.path().strip_prefix("/v1")?;
    let path_and_query = match uri.query() {
        Some(query) => format!("/v1/orgs/{slug}{rest}?{query}"),
        None => format!("/v1/orgs/{slug}{rest}"),
    };
    let mut builder = Uri::builder();
    if let Some(scheme) = uri.scheme() {
        builder = builder.scheme(scheme.clone());
    }
    if let Some(authority) = uri.authority() {
        builder = builder.authority(authority.clone());
    }
    builder.path_and_query(path_and_query).build().ok()
}

/// Whether `name` can be an org slug (and so goes into a path unchanged).
fn slug_like(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The slug of the org a host label names (its routing name or its slug); a label no
/// org answers to is returned as it is.
pub(crate) async fn host_org_slug(state: &AppState, label: String) -> Result<String, ApiError> {
    Ok(state
        .store
        .org_slug_by_host_label(&label)
        .await?
        .unwrap_or(label))
}

/// The selected tenant, and whether only the host named it.
async fn select(
    state: &AppState,
    parts: &mut axum::http::request::Parts,
) -> Result<(String, bool), ApiError> {
    let header = match parts.headers.get(TENANT_HEADER) {
        Some(value) => {
            let named = value
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|named| slug_like(named))
                .ok_or_else(|| ApiError::BadRequest("X-Tenant-ID must be an org slug".into()))?;
            Some(named.to_owned())
        }
        None => None,
    };
    // Next to a header, the host only has to agree with the org, and that is checked by
    // tenant resolution after the visibility check (a routing name is known only from the
    // org's row; comparing here would tell a caller which hidden org a label names).
    let host = match state
        .info
        .subdomain_suffix
        .as_deref()
        .and_then(|suffix| host_tenant(parts, suffix))
        .filter(|named| header.is_none() && slug_like(named))
    {
        // A label no org answers to stays as it is: the uniform 404 answers it.
        Some(label) => Some(host_org_slug(state, label).await?),
        None => None,
    };
    let named = header.clone().or_else(|| host.clone());
    // Authenticates once (the principal is kept for tenant resolution); a token bound to
    // one org costs one lookup of its slug.
    let principal = Principal::authenticate(parts, state, named.as_deref()).await?;
    let own = match &principal.org_id {
        Some(id) => Some(
            state
                .store
                .org_slug_by_id(id)
                .await?
                .ok_or(ApiError::Unauthenticated)?,
        ),
        None => None,
    };
    // The host selects only when it alone names the tenant; next to another source it
    // only has to agree, as on the prefixed routes.
    let by_host = header.is_none() && own.is_none();
    match (named, own) {
        (Some(named), Some(own)) if named != own => Err(ApiError::TenantMismatch),
        (Some(named), _) => Ok((named, by_host)),
        (None, Some(own)) => Ok((own, false)),
        (None, None) => Err(ApiError::TenantRequired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_org_scoped_segments_are_selectable() {
        assert!(selectable("/v1/workspaces"));
        assert!(selectable("/v1/workspaces/main/environments"));
        assert!(selectable("/v1/audit"));
        assert!(!selectable("/v1/orgs/acme/workspaces"));
        assert!(!selectable("/v1/federation/token"));
        assert!(!selectable("/v1/workspacesx"));
        assert!(!selectable("/v1/nothing"));
        assert!(!selectable("/workspaces"));
    }

    #[test]
    fn the_rewrite_keeps_the_rest_and_the_query() {
        let uri: Uri = "/v1/workspaces/main?limit=2".parse().expect("uri");
        let uri = rewritten(&uri, "acme").expect("rewritten");
        assert_eq!(uri.to_string(), "/v1/orgs/acme/workspaces/main?limit=2");
    }

    #[test]
    fn slugs_cannot_carry_a_path() {
        assert!(slug_like("acme-2"));
        assert!(!slug_like("acme/workspaces"));
        assert!(!slug_like("Acme"));
        assert!(!slug_like(""));
    }
}
