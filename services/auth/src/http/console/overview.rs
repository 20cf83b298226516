//! One org's overview: its license, quotas against the license's limits, tokens and active
//! gateways per day as charts, the latest audit entries, and for the vendor the forms of
//! `orgs` (suspend or reactivate, set the license).

use axum::extract::State;
use maud::{Markup, html};
use mcpg_license_core::LimitKey;

use super::chart::{self, Bar};
use super::error::ConsoleError;
use super::orgs::{SOON_DAYS, days_left, vendor_forms};
use super::session::SignedIn;
use super::view::{self, Frame, Section};
use crate::domain::rbac::Action;
use crate::http::authorize::Access;
use crate::http::state::AppState;
use crate::infra::store::TenantStore;

type Result<T, E = ConsoleError> = std::result::Result<T, E>;

/// Entries of the overview's recent audit.
const RECENT_AUDIT: i64 = 10;
/// Days of the overview's usage charts.
const CHART_DAYS: i64 = 30;

/// `GET /console/orgs/{org}`: the overview.
pub(crate) async fn overview(
    State(state): State<AppState>,
    signed_in: SignedIn,
    access: Access,
) -> Result<Markup> {
    access.require(Action::ReadOrg)?;
    let now = state.now();
    let tenant = access.tenant();
    let license = tenant.license_if_any().await?;
    let counts = tenant.live_counts().await?;
    let charts = if access.allows(Action::ReadUsage) {
        Some(usage_bars(&state, &tenant, now).await?)
    } else {
        None
    };
    let recent = if access.allows(Action::ReadAudit) {
        Some(tenant.recent_audit(RECENT_AUDIT).await?)
    } else {
        None
    };
    let org = &access.org;
    let vendor = access.principal.is_global();
    let limit = |key: LimitKey| license.as_ref().and_then(|l| l.limits.get(key));
    let body = html! {
        h1 { (org.display_name) " " span class="muted" { "(" (org.slug) ")" } }
        p { "Status: " strong { (org.status.as_str()) }
            @if let Some(end) = org.trial_expires_at { ", trial until " (view::time(end)) } }
        section aria-labelledby="license-h" {
            h2 id="license-h" { "License" }
            @match &license {
                None => p { "No license: gateways get Tier-0 only." },
                Some(l) => {
                    @let left = days_left(l.valid_until, now);
                    dl {
                        dt { "Tier" } dd { (l.tier) }
                        dt { "Valid" } dd { (view::time(l.valid_from)) " to " (view::time(l.valid_until)) }
                        dt { "Days left" } dd class=[(0..=SOON_DAYS).contains(&left).then_some("soon")] { (left.max(0)) }
                        dt { "State" } dd {
                            @if l.revoked_at.is_some() { "revoked" }
                            @else if l.in_force_at(now) { "in force" }
                            @else if l.valid_until <= now { "ended" }
                            @else { "not yet valid" }
                        }
                    }
                }
            }
        }
        section aria-labelledby="quota-h" {
            h2 id="quota-h" { "Quotas" }
            (quota("Gateways", counts.gateways, limit(LimitKey::MaxGateways)))
            (quota("Workspaces", counts.workspaces, limit(LimitKey::MaxWorkspaces)))
            (quota("Environments", counts.environments, limit(LimitKey::MaxEnvironments)))
        }
        @if let Some((tokens, gateways)) = &charts {
            section aria-labelledby="usage-h" {
                h2 id="usage-h" { "Usage, last " (CHART_DAYS) " days" }
                (chart::bar_chart("tokens-chart", "Tokens per day", tokens))
                (chart::bar_chart("gateways-chart", "Active gateways per day", gateways))
            }
        }
        @if vendor {
            (vendor_forms(&org.slug, org.status.as_str(), &signed_in.csrf))
        }
        @if let Some(entries) = &recent {
            section aria-labelledby="recent-h" {
                h2 id="recent-h" { "Recent audit" }
                @if entries.is_empty() { p { "No entries yet." } }
                @else {
                    ul class="recent" {
                        @for record in entries {
                            li {
                                "#" (record.entry.seq) " " (record.entry.time) " "
                                strong { (record.entry.action) } " " (record.entry.target)
                                " by " (record.entry.actor)
                            }
                        }
                    }
                    p { a href={ "/console/orgs/" (org.slug) "/audit" } { "The whole chain" } }
                }
            }
        }
    };
    let frame = Frame::org(&signed_in, &access, Section::Overview);
    Ok(view::page(frame, "Overview", body))
}

/// The org's tokens and active gateways for each of the last [`CHART_DAYS`] days (today
/// included, days without a token as 0). Past days come from the console's cache when it
/// has them; one query reads the rest, and today is always read.
async fn usage_bars(
    state: &AppState,
    tenant: &TenantStore<'_>,
    now: i64,
) -> Result<(Vec<Bar>, Vec<Bar>)> {
    let day = |unix: i64| view::time(unix).chars().take(10).collect::<String>();
    let days: Vec<String> = (0..CHART_DAYS)
        .rev()
        .map(|back| day(now - back * 86_400))
        .collect();
    let Some((today, past)) = days.split_last() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let cache = &state.console.usage_days;
    let key = |day: &str| (tenant.org_id().to_owned(), day.to_owned());
    let missing: Vec<&String> = past
        .iter()
        .filter(|d| !cache.contains_key(&key(d)))
        .collect();
    if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
        let rows = tenant.usage_per_day(first, last).await?;
        for day in &missing {
            let found = rows.iter().find(|r| &&r.day == day);
            cache.insert(key(day), found.map_or((0, 0), |r| (r.tokens, r.gateways)));
        }
    }
    let today_row = tenant.usage_per_day(today, today).await?;
    let mut tokens = Vec::with_capacity(days.len());
    let mut gateways = Vec::with_capacity(days.len());
    for label in past {
        let (t, g) = cache.get(&key(label)).unwrap_or_default();
        tokens.push(Bar {
            label: label.clone(),
            value: t,
        });
        gateways.push(Bar {
            label: label.clone(),
            value: g,
        });
    }
    let (t, g) = today_row.first().map_or((0, 0), |r| (r.tokens, r.gateways));
    tokens.push(Bar {
        label: today.clone(),
        value: t,
    });
    gateways.push(Bar {
        label: today.clone(),
        value: g,
    });
    Ok((tokens, gateways))
}

/// A usage-against-limit bar (`<meter>`, so it needs neither script nor style to be read).
fn quota(name: &str, used: i64, limit: Option<u64>) -> Markup {
    let id = format!("quota-{}", name.to_ascii_lowercase());
    html! {
        div class="quota" {
            label for=(id) { (name) ": " (used) " of " (limit.map_or_else(|| "unlimited".to_owned(), |l| l.to_string())) }
            @if let Some(limit) = limit {
                meter id=(id) min="0" max=(limit) high=(limit.saturating_mul(9) / 10) value=(used) { (used) " of " (limit) }
            }
        }
    }
}
