//! Refused management requests, recorded (seed 003, "audit tenant access attempts").
//!
//! [`ApiError`](crate::http::error::ApiError) marks an access refusal — 401, 403 for want
//! of a role or for an org's standing, the uniform 404 of a missing or hidden org — with a
//! [`Denied`] response extension; authentication leaves the caller in the request's
//! [`CallerSlot`]. The [`record_denials`] middleware, the outermost route layer of the
//! management routes, sees both with the route template: it counts each refusal by reason
//! (no org label: `/metrics` lists no more tenants than before), logs it at info with the
//! caller's id and kind (never a credential) under a [`LogBudget`], and counts a caller of
//! one org refused on another org's routes as a cross-tenant probe, with a warning.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::Extensions;
use axum::middleware::Next;
use axum::response::Response;

use crate::domain::Refusal;
use crate::http::extract::Principal;
use crate::http::state::AppState;
use crate::infra::log_budget::{Admission, LogBudget};
use crate::infra::store::StoreError;
use crate::infra::telemetry::{CROSS_TENANT_PROBES, DENIED_REQUESTS};

/// Info lines about refusals written at once before the budget applies.
const INFO_BURST: u32 = 20;
/// Info lines about refusals a second, after the burst.
const INFO_PER_SECOND: u32 = 10;
/// Cross-tenant probe warnings written at once.
const WARN_BURST: u32 = 5;
/// Cross-tenant probe warnings a second, after the burst.
const WARN_PER_SECOND: u32 = 1;

/// Why an access attempt was refused: the `reason` label of [`DENIED_REQUESTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DenialReason {
    /// No credential, or one that is unknown, expired or revoked (401).
    Unauthenticated,
    /// Authenticated, but the role does not allow it (403).
    Forbidden,
    /// The path, `X-Tenant-ID` and host name different orgs (403).
    TenantMismatch,
    /// The org does not exist or the caller may not see it (the uniform 404).
    OrgNotFound,
    /// The org's standing (suspended, trial ended…) refuses non-global callers (403).
    OrgStanding(Refusal),
}

impl DenialReason {
    /// The metric label and log field.
    pub(crate) fn label(self) -> &'static str {
        match self {
            DenialReason::Unauthenticated => "unauthenticated",
            DenialReason::Forbidden => "forbidden",
            DenialReason::TenantMismatch => "tenant_mismatch",
            DenialReason::OrgNotFound => "org_not_found",
            DenialReason::OrgStanding(refusal) => refusal.code(),
        }
    }

    /// Whether the refusal may come from naming an org that is not the caller's own.
    fn may_be_probe(self) -> bool {
        matches!(
            self,
            DenialReason::OrgNotFound | DenialReason::TenantMismatch
        )
    }
}

/// Response extension: this response refuses access, for this reason.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Denied(pub(crate) DenialReason);

/// Request extension: where authentication leaves the caller, for [`record_denials`] to
/// read once the response is made (the request's own extensions are gone by then).
#[derive(Debug, Clone, Default)]
pub(crate) struct CallerSlot(Arc<OnceLock<Principal>>);

impl CallerSlot {
    /// Notes `principal` as the caller of the request with `extensions`, if it has a slot.
    pub(crate) fn fill(extensions: &Extensions, principal: &Principal) {
        if let Some(slot) = extensions.get::<CallerSlot>() {
            let _ = slot.0.set(principal.clone());
        }
    }
}

/// What kind of caller a principal is, for the logs.
fn principal_kind(principal: &Principal) -> &'static str {
    match principal {
        Principal { org_id: None, .. } => "global_admin",
        Principal {
            impersonator_id: Some(_),
            ..
        } => "impersonation",
        Principal { oidc: Some(_), .. } => "oidc_login",
        Principal {
            user_id: Some(_), ..
        } => "user_token",
        _ => "org_api_key",
    }
}

/// One refusal, as logged.
#[derive(Debug)]
pub(crate) struct DenialEvent<'a> {
    /// Why.
    pub(crate) reason: DenialReason,
    /// The route template (`/v1/orgs/{org}/workspaces`).
    pub(crate) route: &'a str,
    /// The method.
    pub(crate) method: &'a str,
    /// The caller, when it authenticated.
    pub(crate) caller: Option<&'a Principal>,
}

/// The log budgets of refusals and probes.
#[derive(Debug)]
pub(crate) struct DenialLog {
    refusals: LogBudget,
    probes: LogBudget,
}

impl Default for DenialLog {
    fn default() -> Self {
        Self {
            refusals: LogBudget::new(INFO_BURST, INFO_PER_SECOND),
            probes: LogBudget::new(WARN_BURST, WARN_PER_SECOND),
        }
    }
}

impl DenialLog {
    /// Counts a refusal and logs it at info, within budget.
    pub(crate) fn refused(&self, event: &DenialEvent<'_>, now: Instant) {
        metrics::counter!(DENIED_REQUESTS, "reason" => event.reason.label()).increment(1);
        let Admission::Write { suppressed } = self.refusals.admit(now) else {
            return;
        };
        report_suppressed_refusals(suppressed);
        let (kind, id) = caller_fields(event.caller);
        tracing::info!(
            reason = event.reason.label(),
            principal_kind = kind,
            principal_id = id,
            method = event.method,
            route = event.route,
            "request denied"
        );
    }

    /// Counts a cross-tenant probe (a caller of one org refused on `target`, another org's
    /// route) and warns, within budget.
    pub(crate) fn probe(&self, event: &DenialEvent<'_>, target: &str, now: Instant) {
        metrics::counter!(CROSS_TENANT_PROBES).increment(1);
        let Admission::Write { suppressed } = self.probes.admit(now) else {
            return;
        };
        report_suppressed_probes(suppressed);
        let (kind, id) = caller_fields(event.caller);
        tracing::warn!(
            principal_kind = kind,
            principal_id = id,
            principal_org = event
                .caller
                .and_then(|c| c.org_id.as_deref())
                .unwrap_or("-"),
            target_org = target,
            method = event.method,
            route = event.route,
            "cross-tenant probe: a caller of one org was refused on another org's route"
        );
    }

    /// Writes the summaries of lines suppressed since the last one (called periodically,
    /// so the end of a flood is reported even when no refusal follows it).
    pub(crate) fn report_suppressed(&self) {
        report_suppressed_refusals(self.refusals.take_suppressed());
        report_suppressed_probes(self.probes.take_suppressed());
    }
}

fn caller_fields(caller: Option<&Principal>) -> (&'static str, &str) {
    match caller {
        Some(principal) => (principal_kind(principal), principal.token_id.as_str()),
        None => ("anonymous", "-"),
    }
}

fn report_suppressed_refusals(count: u64) {
    if count > 0 {
        tracing::info!(
            suppressed = count,
            "suppressed {count} denied-request lines"
        );
    }
}

fn report_suppressed_probes(count: u64) {
    if count > 0 {
        tracing::warn!(
            suppressed = count,
            "suppressed {count} cross-tenant probe lines"
        );
    }
}

/// The middleware: gives the request a [`CallerSlot`], and records the response when it
/// carries [`Denied`].
pub(crate) async fn record_denials(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let slot = CallerSlot::default();
    parts.extensions.insert(slot.clone());
    let route = parts.extensions.get::<MatchedPath>().cloned();
    let target = match RawPathParams::from_request_parts(&mut parts, &state).await {
        Ok(params) => params
            .iter()
            .find(|(name, _)| *name == "org")
            .map(|(_, value)| value.to_owned()),
        Err(_) => None,
    };
    let method = crate::infra::telemetry::method_label(&parts.method);
    let response = next.run(Request::from_parts(parts, body)).await;
    let Some(Denied(reason)) = response.extensions().get::<Denied>().copied() else {
        return response;
    };
    let event = DenialEvent {
        reason,
        route: route.as_ref().map_or("unmatched", MatchedPath::as_str),
        method,
        caller: slot.0.get(),
    };
    let now = Instant::now();
    state.denials.refused(&event, now);
    if let Some(target) = target
        && reason.may_be_probe()
        && is_foreign(&state, event.caller, &target).await
    {
        state.denials.probe(&event, &target, now);
    }
    response
}

/// Whether `slug` names an org other than the org-scoped caller's own (one that does not
/// exist included). A global admin, or an anonymous caller, probes nothing.
async fn is_foreign(state: &AppState, caller: Option<&Principal>, slug: &str) -> bool {
    let Some(own) = caller.and_then(|caller| caller.org_id.as_deref()) else {
        return false;
    };
    match state.store.org_by_slug(slug).await {
        Ok(org) => org.id != own,
        Err(StoreError::NotFound(_)) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
