//! Orgs: the vendor's list (slug, tier, license end with days left, gateways, status;
//! sortable, the next 30 days highlighted; create), and the vendor's forms of an org's
//! overview (suspend or reactivate, set the license; the overview is `overview`).
//! Creating, changing and licensing an org run the API's own functions
//! ([`crate::http::api::orgs`], [`crate::http::api::licenses`]).

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::error::ConsoleError;
use super::extract::{Form, Query};
use super::session::SignedIn;
use super::view::{self, Frame, Section, csrf_field};
use crate::http::api::licenses::{SetLicense, set_license as apply_license};
use crate::http::api::orgs::{CreateOrg, UpdateOrg, create_org, update_org};
use crate::http::authorize::Access;
use crate::http::error::ApiError;
use crate::http::extract::Principal;
use crate::http::state::AppState;
use crate::infra::store::{Actor, OrgSummary};

type Result<T, E = ConsoleError> = std::result::Result<T, E>;

/// Orgs per page of the vendor's list.
const ORGS_PER_PAGE: usize = 100;
/// A license ending within this many days is highlighted.
pub(super) const SOON_DAYS: i64 = 30;

/// `?sort=&page=` of the org list.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    page: Option<usize>,
}

/// How the org list is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Slug,
    LicenseEnd,
    Gateways,
}

impl SortBy {
    fn parse(text: Option<&str>) -> Self {
        match text {
            Some("license_end") => SortBy::LicenseEnd,
            Some("gateways") => SortBy::Gateways,
            _ => SortBy::Slug,
        }
    }

    fn key(self) -> &'static str {
        match self {
            SortBy::Slug => "slug",
            SortBy::LicenseEnd => "license_end",
            SortBy::Gateways => "gateways",
        }
    }
}

/// Whole days from `now` to `end` (negative when past).
pub(super) fn days_left(end: i64, now: i64) -> i64 {
    (end - now).div_euclid(86_400)
}

/// `GET /console/orgs`: every org for a global admin; anyone else goes to their own org.
pub(crate) async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<ListQuery>,
) -> Result<Response> {
    let principal = &signed_in.principal;
    if let Some(org_id) = &principal.org_id {
        let slug = state
            .store
            .org_slug_by_id(org_id)
            .await?
            .ok_or(ApiError::NotFound("organization"))?;
        return Ok(Redirect::to(&format!("/console/orgs/{slug}")).into_response());
    }
    let now = state.now();
    let sort = SortBy::parse(query.sort.as_deref());
    let mut orgs = state.store.org_summaries().await?;
    match sort {
        SortBy::Slug => {}
        // Orgs without a license last.
        SortBy::LicenseEnd => orgs.sort_by_key(|o| (o.valid_until.is_none(), o.valid_until)),
        SortBy::Gateways => orgs.sort_by_key(|o| std::cmp::Reverse(o.gateways)),
    }
    let page = query.page.unwrap_or(0);
    let total = orgs.len();
    let shown: Vec<OrgSummary> = orgs
        .into_iter()
        .skip(page.saturating_mul(ORGS_PER_PAGE))
        .take(ORGS_PER_PAGE)
        .collect();
    let more = (page + 1).saturating_mul(ORGS_PER_PAGE) < total;
    let sort_link = |by: SortBy| format!("/console/orgs?sort={}", by.key());
    let body = html! {
        h1 { "Organizations" }
        (create_form(&signed_in.csrf))
        div class="scroll" {
            table class="orgs" {
                caption { (total) " organizations, sorted by " (sort.key().replace('_', " ")) }
                thead {
                    tr {
                        th scope="col" aria-sort=[(sort == SortBy::Slug).then_some("ascending")] {
                            a href=(sort_link(SortBy::Slug)) { "Slug" }
                        }
                        th scope="col" { "Tier" }
                        th scope="col" aria-sort=[(sort == SortBy::LicenseEnd).then_some("ascending")] {
                            a href=(sort_link(SortBy::LicenseEnd)) { "License end" }
                        }
                        th scope="col" aria-sort=[(sort == SortBy::Gateways).then_some("descending")] {
                            a href=(sort_link(SortBy::Gateways)) { "Gateways" }
                        }
                        th scope="col" { "Status" }
                    }
                }
                tbody {
                    @for org in &shown {
                        @let left = org.valid_until.map(|end| days_left(end, now));
                        @let soon = org.revoked_at.is_none() && left.is_some_and(|d| (0..=SOON_DAYS).contains(&d));
                        tr class=[soon.then_some("soon")] {
                            th scope="row" { a href={ "/console/orgs/" (org.slug) } { (org.slug) } " " span class="muted" { (org.display_name) } }
                            td { (org.tier.as_deref().unwrap_or("none")) }
                            td {
                                @match (org.valid_until, left) {
                                    (Some(end), Some(left)) => {
                                        (view::time(end))
                                        @if org.revoked_at.is_some() { " (revoked)" }
                                        @else if left < 0 { " (ended)" }
                                        @else { " (" (left) " days left)" }
                                    }
                                    _ => { "no license" }
                                }
                            }
                            td { (org.gateways) }
                            td { (org.status) }
                        }
                    }
                }
            }
        }
        nav aria-label="Pages" {
            @if page > 0 {
                a href={ "/console/orgs?sort=" (sort.key()) "&page=" (page - 1) } { "Previous page" } " "
            }
            @if more {
                a href={ "/console/orgs?sort=" (sort.key()) "&page=" (page + 1) } { "Next page" }
            }
        }
    };
    let frame = Frame {
        signed_in: &signed_in,
        org: None,
        section: Section::Orgs,
        manage_access: false,
    };
    Ok(view::page(frame, "Organizations", body).into_response())
}

fn create_form(csrf: &str) -> Markup {
    html! {
        details {
            summary { "Create an organization" }
            form class="stack" method="post" action="/console/orgs" {
                (csrf_field(csrf))
                label for="org-slug" { "Slug" }
                input id="org-slug" name="slug" required autocomplete="off" pattern="[a-z0-9][a-z0-9-]*";
                label for="org-name" { "Display name" }
                input id="org-name" name="display_name" required maxlength="200" autocomplete="off";
                button type="submit" { "Create organization" }
            }
        }
    }
}

/// The create form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    slug: String,
    #[serde(default)]
    display_name: String,
}

/// `POST /console/orgs` (global admin): `POST /v1/orgs` with the form's fields.
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    Form(form): Form<CreateForm>,
) -> Result<Redirect> {
    let body: CreateOrg = from_form(json!({
        "slug": form.slug.trim(),
        "display_name": form.display_name.trim(),
    }))?;
    let created = create_org(&state, &principal, &actor, body).await?;
    Ok(Redirect::to(&format!("/console/orgs/{}", created.slug)))
}

/// A form's fields as the API's body type, checked by the same rules.
fn from_form<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value)
        .map_err(|e| ApiError::BadRequest(format!("invalid form: {e}")).into())
}

/// The vendor's forms on an org's overview: suspend or reactivate, set the license.
pub(super) fn vendor_forms(slug: &str, status: &str, csrf: &str) -> Markup {
    let suspend = status != "suspended";
    html! {
        section aria-labelledby="vendor-h" {
            h2 id="vendor-h" { "Vendor actions" }
            form class="inline" method="post" action={ "/console/orgs/" (slug) "/status" } {
                (csrf_field(csrf))
                input type="hidden" name="status" value=(if suspend { "suspended" } else { "active" });
                button type="submit" class=[suspend.then_some("danger")] {
                    (if suspend { "Suspend organization" } else { "Reactivate organization" })
                }
            }
            form class="stack" method="post" action={ "/console/orgs/" (slug) "/license" } {
                (csrf_field(csrf))
                label for="tier" { "Tier" }
                select id="tier" name="tier" {
                    option value="team" { "team" }
                    option value="enterprise" { "enterprise" }
                    option value="free" { "free" }
                }
                label for="valid-days" { "Valid for days" }
                input id="valid-days" name="valid_for_days" type="number" min="1" value="365" required;
                label for="max-gateways" { "Max gateways (empty: no limit)" }
                input id="max-gateways" name="max_gateways" type="number" min="0";
                button type="submit" { "Set license" }
            }
        }
    }
}

/// The status form's field.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusForm {
    #[serde(default)]
    status: String,
}

/// `POST /console/orgs/{org}/status` (global admin): `PATCH /v1/orgs/{org}` with the
/// new status.
pub(crate) async fn set_status(
    State(state): State<AppState>,
    access: Access,
    Form(form): Form<StatusForm>,
) -> Result<Redirect> {
    let body: UpdateOrg = from_form(json!({ "status": form.status }))?;
    let updated = update_org(&state, &access, body).await?;
    Ok(Redirect::to(&format!("/console/orgs/{}", updated.slug)))
}

/// The license form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct LicenseForm {
    #[serde(default)]
    tier: String,
    #[serde(default)]
    valid_for_days: String,
    #[serde(default)]
    max_gateways: String,
}

/// `POST /console/orgs/{org}/license` (global admin): `PUT /v1/orgs/{org}/license`.
pub(crate) async fn set_license(
    State(state): State<AppState>,
    access: Access,
    Form(form): Form<LicenseForm>,
) -> Result<Redirect> {
    let number = |field: &str, text: &str| -> Result<u64> {
        text.trim()
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("{field} must be a whole number")).into())
    };
    let mut body = json!({
        "tier": form.tier,
        "valid_for_days": number("valid_for_days", &form.valid_for_days)?,
    });
    if !form.max_gateways.trim().is_empty() {
        body["limits"] = json!({ "max_gateways": number("max_gateways", &form.max_gateways)? });
    }
    let body: SetLicense = from_form(body)?;
    apply_license(&state, &access, body, false).await?;
    Ok(Redirect::to(&format!("/console/orgs/{}", access.org.slug)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_rounds_down_and_goes_negative_after_the_end() {
        assert_eq!(days_left(86_400 * 3 - 1, 0), 2);
        assert_eq!(days_left(86_400 * 3, 0), 3);
        assert_eq!(days_left(-1, 0), -1);
    }

    #[test]
    fn unknown_sort_keys_sort_by_slug() {
        assert_eq!(SortBy::parse(Some("bogus")), SortBy::Slug);
        assert_eq!(SortBy::parse(Some("license_end")), SortBy::LicenseEnd);
        assert_eq!(SortBy::parse(None).key(), "slug");
    }
}
