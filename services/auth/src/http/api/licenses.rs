//! An org's license: set, show, revoke.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::{Catalog, EntitlementId, EntitlementSet, LimitKey, Limits, Tier};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::orgs::time;
use crate::domain::plugin_sets::AffectedSet;
use crate::domain::rbac::Action;
use crate::http::authorize::Access;
use crate::http::error::{ApiError, Result};
use crate::http::extract::{ApiJson, Integer};
use crate::http::state::AppState;
use crate::infra::issuer::check_grant_fits;
use crate::infra::store::{LicenseRecord, LicenseSpec};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs/{org}/license", get(show).put(set))
        .route("/v1/orgs/{org}/license/revoke", post(revoke))
}

/// Default license length when neither `valid_until` nor `valid_for_days` is given.
const DEFAULT_DAYS: i64 = 365;
/// Longest license accepted, in days: `valid_for_days` at most this, and a license (however
/// its end is given) ends at most this many days from now.
const MAX_DAYS: i64 = 100 * 365;

/// The one bound on a license's end, whether given as `valid_until` or as
/// `valid_from` + `valid_for_days`.
fn check_end(valid_until: i64, now: i64) -> Result<()> {
    if valid_until > now.saturating_add(MAX_DAYS * 86_400) {
        return Err(ApiError::BadRequest(format!(
            "the license must end within {MAX_DAYS} days from now (valid_until, or valid_from + valid_for_days)"
        )));
    }
    Ok(())
}

/// The body of a license `PUT` (the console's license form builds the same).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetLicense {
    tier: Tier,
    #[serde(default)]
    entitlements_add: Vec<EntitlementId>,
    #[serde(default)]
    entitlements_remove: Vec<EntitlementId>,
    #[serde(default)]
    limits: BTreeMap<String, Integer<u64>>,
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    valid_from: Option<String>,
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    valid_until: Option<String>,
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    valid_for_days: Option<Integer<i64>>,
    /// Accept entitlement ids the plugin catalog does not know yet (a plugin that ships
    /// later); without it they are refused with `unknown_entitlement`.
    #[serde(default)]
    allow_future_entitlements: bool,
}

/// The query of a license `PUT`: `?force=true` applies a change that takes plugins from
/// plugin sets in use (without it such a change is refused with `plugin_set_conflict`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetQuery {
    #[serde(default)]
    force: bool,
}

/// The answer to a license `PUT`: the license, and the plugin sets a forced change took
/// plugins from (omitted when none).
#[derive(Debug, Serialize)]
struct SetLicenseView {
    #[serde(flatten)]
    license: LicenseView,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    plugin_sets_affected: Vec<AffectedSet>,
}

#[derive(Debug, Serialize)]
struct LicenseView {
    id: String,
    org: String,
    tier: Tier,
    entitlements_add: Vec<EntitlementId>,
    entitlements_remove: Vec<EntitlementId>,
    entitlements: EntitlementSet,
    limits: Limits,
    valid_from: String,
    valid_until: String,
    revoked_at: Option<String>,
    status: &'static str,
    revision: i64,
    created_at: String,
    updated_at: String,
}

impl LicenseView {
    fn new(org: &str, license: LicenseRecord, now: i64) -> Self {
        let status = if license.revoked_at.is_some() {
            "revoked"
        } else if license.valid_until <= now {
            "expired"
        } else if license.valid_from > now {
            "not_yet_valid"
        } else {
            "active"
        };
        Self {
            entitlements: Catalog::builtin().license_entitlements(
                license.tier,
                &license.add,
                &license.remove,
            ),
            id: license.id,
            org: org.to_owned(),
            tier: license.tier,
            entitlements_add: license.add,
            entitlements_remove: license.remove,
            limits: license.limits,
            valid_from: to_rfc3339(license.valid_from),
            valid_until: to_rfc3339(license.valid_until),
            revoked_at: license.revoked_at.map(to_rfc3339),
            status,
            revision: license.revision,
            created_at: to_rfc3339(license.created_at),
            updated_at: to_rfc3339(license.updated_at),
        }
    }
}

impl SetLicense {
    fn into_spec(self, now: i64) -> Result<LicenseSpec> {
        let mut limits = Limits::default();
        for (name, value) in &self.limits {
            let key: LimitKey =
                name.parse()
                    .map_err(|e: mcpg_license_core::limits::LimitError| {
                        ApiError::BadRequest(e.to_string())
                    })?;
            limits.set(key, Some(value.0));
        }
        let valid_from = self
            .valid_from
            .as_deref()
            .map(|t| time("valid_from", t))
            .transpose()?
            .unwrap_or(now);
        let valid_until = match (
            self.valid_until.as_deref(),
            self.valid_for_days.map(|d| d.0),
        ) {
            (Some(_), Some(_)) => {
                return Err(ApiError::BadRequest(
                    "give valid_until or valid_for_days, not both".into(),
                ));
            }
            (Some(text), None) => time("valid_until", text)?,
            (None, Some(days)) if (1..=MAX_DAYS).contains(&days) => valid_from + days * 86_400,
            (None, Some(_)) => {
                return Err(ApiError::BadRequest(format!(
                    "valid_for_days must be 1-{MAX_DAYS}"
                )));
            }
            (None, None) => valid_from + DEFAULT_DAYS * 86_400,
        };
        check_end(valid_until, now)?;
        if valid_until <= valid_from {
            return Err(ApiError::BadRequest(
                "valid_until must be after valid_from".into(),
            ));
        }
        if !self.allow_future_entitlements {
            let written = self
                .entitlements_add
                .iter()
                .chain(&self.entitlements_remove);
            Catalog::builtin().check_known(written).map_err(|e| {
                ApiError::UnknownEntitlement(format!(
                    "{e}; fix the id, or set allow_future_entitlements: true for a plugin that \
                     ships later"
                ))
            })?;
        }
        if let Some(both) = self
            .entitlements_add
            .iter()
            .find(|e| self.entitlements_remove.contains(e))
        {
            return Err(ApiError::BadRequest(format!(
                "{both} is both added and removed"
            )));
        }
        Ok(LicenseSpec {
            tier: self.tier,
            add: self.entitlements_add,
            remove: self.entitlements_remove,
            limits,
            valid_from,
            valid_until,
        })
    }
}

async fn set(
    State(state): State<AppState>,
    access: Access,
    query: std::result::Result<Query<SetQuery>, QueryRejection>,
    ApiJson(body): ApiJson<SetLicense>,
) -> Result<axum::Json<SetLicenseView>> {
    let force = query
        .map(|Query(q)| q.force)
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))?;
    let (license, affected) = set_license(&state, &access, body, force).await?;
    Ok(axum::Json(SetLicenseView {
        license: LicenseView::new(&access.org.slug, license, state.now()),
        plugin_sets_affected: affected,
    }))
}

/// Sets the org's license (global admin only): the license `PUT`, and the console's
/// license form. Returns the license and the plugin sets a forced change took plugins from.
pub(crate) async fn set_license(
    state: &AppState,
    access: &Access,
    body: SetLicense,
    force: bool,
) -> Result<(LicenseRecord, Vec<AffectedSet>)> {
    access.require_global()?;
    let org = &access.org;
    let now = state.now();
    let spec = body.into_spec(now)?;
    let entitlements = Catalog::builtin().license_entitlements(spec.tier, &spec.add, &spec.remove);
    let snapshot = state.keyring.snapshot();
    check_grant_fits(
        snapshot.as_deref(),
        &org.slug,
        spec.tier,
        &entitlements,
        now,
    )
    .map_err(outside_bounds)?;
    let (license, affected) = access.tenant().set_license(&spec, force, now).await?;
    tracing::info!(org = %org.slug, license = %license.id, tier = %license.tier,
        plugin_sets_affected = affected.len(), "license set");
    Ok((license, affected))
}

async fn show(State(state): State<AppState>, access: Access) -> Result<axum::Json<LicenseView>> {
    access.require(Action::ReadOrg)?;
    let license = access.tenant().license().await?;
    Ok(axum::Json(LicenseView::new(
        &access.org.slug,
        license,
        state.now(),
    )))
}

async fn revoke(State(state): State<AppState>, access: Access) -> Result<axum::Json<LicenseView>> {
    access.require_global()?;
    let org = &access.org;
    let now = state.now();
    let license = access.tenant().revoke_license(now).await?;
    tracing::info!(org = %org.slug, license = %license.id, "license revoked");
    Ok(axum::Json(LicenseView::new(&org.slug, license, now)))
}

/// A write refused because no live certificate of the active signing key allows it: said
/// now rather than on every token request.
pub(super) fn outside_bounds(violation: mcpg_license_core::BoundsViolation) -> ApiError {
    ApiError::OutsideCertificateBounds(format!(
        "the signing key's certificate does not allow this: {violation} ({})",
        violation.code()
    ))
}
