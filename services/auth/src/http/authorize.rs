//! Tenant resolution, run as middleware before any handler of an org-scoped route
//! (`/v1/orgs/{org}…`): it authenticates the caller, checks that the tenant named by the
//! path, by an `X-Tenant-ID` header and (with subdomain routing) by the host agree (else 403 `tenant_mismatch`), looks the org up
//! and decides whether the caller may see it — an org that does not exist and one the
//! caller may not see leave through the same line with the same 404 — refuses suspended
//! orgs and ended trials to non-global callers, and hands the handler an [`Access`]: the
//! org, the caller, what the caller may do there, and a store handle bound to the org.
//! What the caller may do is tier-gated here, at every request ([`Gated`]): a binding the
//! org's license no longer entitles grants nothing, and a caller whose every binding is
//! inert is refused with 403 `entitlement_required`.

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::rbac::{Action, Binding, Gated, Grants, Scope, needs_license};
use crate::domain::{entitlements_at, org_standing};
use crate::http::denials::CallerSlot;
use crate::http::error::ApiError;
use crate::http::extract::{OidcRole, Principal, request_id};
use crate::http::select::{SUBDOMAIN_ROUTING, SelectedByHost, SelectionRefused};
use crate::http::state::AppState;
use crate::infra::store::{Actor, OrgRecord, Store, StoreError, TenantStore};
use crate::infra::telemetry::record_org;

/// The header a client may name its tenant with.
pub(crate) const TENANT_HEADER: &str = "x-tenant-id";

/// What an org-scoped handler knows about the request, resolved before it runs.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    /// The org of the request.
    pub(crate) org: OrgRecord,
    /// The caller.
    pub(crate) principal: Principal,
    /// What the caller may do in the org, tier-gated (inert bindings are kept only to say
    /// why a refused action was refused).
    gated: Gated,
    /// Who the audit chain names for the request's changes.
    pub(crate) actor: Actor,
    store: Store,
}

impl Access {
    /// The store handle bound to this org: the only way handlers reach tenant data.
    pub(crate) fn tenant(&self) -> TenantStore<'_> {
        self.store.tenant(&self.org.id).acting(&self.actor)
    }

    /// Refuses `action` unless the caller's role allows it; when only an inert binding
    /// would have allowed it, the refusal is `entitlement_required` naming the feature.
    pub(crate) fn require(&self, action: Action<'_>) -> Result<(), ApiError> {
        if self.allows(action) {
            Ok(())
        } else if self.gated.inert_would_allow(action) {
            Err(inert_refusal(&self.gated))
        } else {
            Err(ApiError::Forbidden("your role does not allow this here"))
        }
    }

    /// Whether the caller's bindings in effect allow `action`.
    pub(crate) fn allows(&self, action: Action<'_>) -> bool {
        self.gated.grants.allows(action)
    }

    /// Refuses anyone but the global (vendor) admin.
    pub(crate) fn require_global(&self) -> Result<(), ApiError> {
        self.principal.require_global()
    }
}

impl FromRequestParts<AppState> for Access {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        parts.extensions.get::<Access>().cloned().ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("route has no tenant resolution layer"))
        })
    }
}

/// The middleware: resolves the tenant of routes with an `{org}` segment; other routes pass.
pub(crate) async fn resolve_tenant(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    resolve_tenant_then(&state, request, next, IntoResponse::into_response).await
}

/// [`resolve_tenant`] with the refusal answered by `refuse` (the console answers pages):
/// puts the org's [`Access`] in the request of a route with an `{org}` segment.
pub(crate) async fn resolve_tenant_then(
    state: &AppState,
    request: Request,
    next: Next,
    refuse: impl FnOnce(ApiError) -> Response,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let slug = match RawPathParams::from_request_parts(&mut parts, state).await {
        Ok(params) => params
            .iter()
            .find(|(name, _)| *name == "org")
            .map(|(_, value)| value.to_owned()),
        Err(_) => None,
    };
    let Some(slug) = slug else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    match resolve(state, &mut parts, &slug).await {
        Ok(access) => {
            parts.extensions.insert(access);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(error) => refuse(error),
    }
}

/// Resolves the org named `slug` for the request's caller (see the module docs): the
/// API's middleware and the console's both call it.
pub(crate) async fn resolve(
    state: &AppState,
    parts: &mut Parts,
    slug: &str,
) -> Result<Access, ApiError> {
    if let Some(refused) = parts.extensions.get::<SelectionRefused>() {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            CallerSlot::fill(&parts.extensions, principal);
        }
        return Err(refused.take());
    }
    let principal = Principal::authenticate(parts, state, Some(slug)).await?;
    if let Some(named) = parts.headers.get(TENANT_HEADER) {
        let named = named
            .to_str()
            .map_err(|_| ApiError::BadRequest("X-Tenant-ID must be an org slug".into()))?;
        if named.trim() != slug {
            return Err(ApiError::TenantMismatch);
        }
    }
    // A host label other than the path's slug may still be the org's routing name; that is
    // known only from the org's row, so the check waits for the visibility check: an org the
    // caller cannot see stays the uniform 404 whatever the host says (deciding it before
    // would tell a probing caller which hidden slug a public routing name belongs to).
    let host_label = state
        .info
        .subdomain_suffix
        .as_deref()
        .and_then(|suffix| host_tenant(parts, suffix))
        .filter(|label| label != slug);
    let (org, gated) = visible_org(state, &principal, slug)
        .await?
        .ok_or(ApiError::NotFound("organization"))?;
    if let Some(label) = host_label
        && org.routing_name.as_deref() != Some(label.as_str())
    {
        return Err(ApiError::TenantMismatch);
    }
    if !principal.is_global() {
        org_standing(org.status, org.trial_expires_at, state.now()).map_err(ApiError::Refused)?;
    }
    if !gated.grants.sees_org() {
        return Err(inert_refusal(&gated));
    }
    if parts.extensions.get::<SelectedByHost>().is_some() {
        let license = state.store.tenant(&org.id).license_if_any().await?;
        if !entitlements_at(license.as_ref(), state.now()).contains(SUBDOMAIN_ROUTING) {
            return Err(ApiError::EntitlementRequired(format!(
                "subdomain routing needs {SUBDOMAIN_ROUTING} in the organization's license; \
                 name the tenant with X-Tenant-ID or /v1/orgs/{{org}}/… instead"
            )));
        }
    }
    if let Some(admin) = &principal.impersonator_id {
        tracing::info!(
            impersonator = %admin,
            token = %principal.token_id,
            org = %org.slug,
            method = %parts.method,
            path = %parts.uri.path(),
            "request under impersonation"
        );
    }
    record_org(&org.slug);
    Ok(Access {
        org,
        actor: Actor {
            id: principal.audit_id(),
            request_id: request_id(parts),
        },
        principal,
        gated,
        store: state.store.clone(),
    })
}

/// The org named by the request's host under `suffix` (`acme.mcpg.dev` → `acme`), if any.
pub(crate) fn host_tenant(parts: &Parts, suffix: &str) -> Option<String> {
    let host = parts.headers.get(axum::http::header::HOST)?.to_str().ok()?;
    let host = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let label = host
        .to_ascii_lowercase()
        .strip_suffix(suffix)?
        .strip_suffix('.')?
        .to_owned();
    (!label.is_empty() && !label.contains('.')).then_some(label)
}

/// The 403 of a caller whose bindings that would allow the request are inert.
fn inert_refusal(gated: &Gated) -> ApiError {
    ApiError::EntitlementRequired(format!(
        "your role binding here is inactive: the organization's license does not include {}",
        gated.missing().join(", ")
    ))
}

/// The binding of an OIDC login in its own org: its mapped role, org-wide (tier-gated like
/// a stored binding of that role); a login whose role claim maps to nothing is refused
/// (403) — the IdP vouched for the org, so this reveals nothing the caller did not know.
fn oidc_binding(principal: &Principal) -> Result<Binding, ApiError> {
    match principal.oidc {
        Some(OidcRole(Some(role))) => Ok(Binding {
            role,
            scope: Scope::Org,
        }),
        _ => Err(ApiError::Forbidden(
            "your identity provider's role claim maps to no role in this organization",
        )),
    }
}

/// The org and the caller's grants there, or `None` when it does not exist or the caller
/// may not see it — one answer for both, so nobody learns which orgs exist.
async fn visible_org(
    state: &AppState,
    principal: &Principal,
    slug: &str,
) -> Result<Option<(OrgRecord, Gated)>, ApiError> {
    let org = match state.store.org_by_slug(slug).await {
        Ok(org) => org,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    Ok(grants_in(state, principal, &org)
        .await?
        .map(|grants| (org, grants)))
}

/// The caller's grants in `org`, tier-gated, or `None` when the caller may not see it: a
/// global admin sees every org, an org API key its own org, a user their own org when they
/// hold any binding in it (at the org, a workspace or an environment; in effect or inert).
/// `GET /v1/orgs` lists with the same rule, so a listed org can be read (or is refused with
/// `entitlement_required`) and an unlisted one is 404.
pub(crate) async fn grants_in(
    state: &AppState,
    principal: &Principal,
    org: &OrgRecord,
) -> Result<Option<Gated>, ApiError> {
    let bindings = match (&principal.org_id, &principal.user_id) {
        (None, _) => return Ok(Some(Gated::ungated(Grants::OrgAdmin))),
        (Some(own), _) if *own != org.id => return Ok(None),
        (Some(_), _) if principal.oidc.is_some() => vec![oidc_binding(principal)?],
        (Some(_), Some(user)) => state.store.tenant(&org.id).user_bindings(user).await?,
        (Some(_), None) => return Ok(Some(Gated::ungated(Grants::OrgAdmin))),
    };
    // Org admins (the common case) need no feature, so only a binding below the org costs
    // the one extra read of the org's license.
    let license = if needs_license(&bindings) {
        state.store.tenant(&org.id).license_if_any().await?
    } else {
        None
    };
    let gated = Gated::split(bindings, &entitlements_at(license.as_ref(), state.now()));
    Ok(gated.belongs().then_some(gated))
}
