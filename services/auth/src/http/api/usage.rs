//! Usage: an org's (its admins and the vendor) and every org's (the vendor), per UTC day
//! or month, from the counts the token path keeps (see `infra::usage_meter`) and the days
//! imported from air-gapped deployments' receipts.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use mcpg_license_core::{Limits, Tier};
use serde::{Deserialize, Serialize};

use crate::domain::rbac::Action;
use crate::domain::usage::{Day, day_of, day_text, month_text, parse_day};
use crate::domain::usage_summary::{By, Group, MAX_RANGE_DAYS, UsageRow, summarise};
use crate::http::authorize::Access;
use crate::http::error::{ApiError, Result};
use crate::http::extract::Principal;
use crate::http::state::AppState;
use crate::infra::store::{StoreError, TenantStore};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs/{org}/usage", get(org_usage))
        .route("/v1/admin/usage", get(all_usage))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    group: Option<String>,
}

/// What a request asks for, checked.
#[derive(Debug, Clone, Copy)]
struct Range {
    from: Day,
    to: Day,
    by: By,
    group: Option<Group>,
}

impl Range {
    /// Reads the query: dates `YYYY-MM-DD` (or `YYYY-MM` with `by=month`), `from` ≤ `to`,
    /// at most [`MAX_RANGE_DAYS`] days. Defaults: `to` today (UTC), `from` 29 days before
    /// (`by=day`) or the first day of `to`'s month (`by=month`).
    fn parse(query: UsageQuery, now: i64) -> Result<Self> {
        let by = match query.by.as_deref() {
            None => By::Day,
            Some(text) => By::parse(text)
                .ok_or_else(|| ApiError::BadRequest("by must be day or month".into()))?,
        };
        let group = query
            .group
            .as_deref()
            .map(|text| {
                Group::parse(text).ok_or_else(|| {
                    ApiError::BadRequest(
                        "group must be workspace, environment, gateway or plugin".into(),
                    )
                })
            })
            .transpose()?;
        let date = |field: &str, text: &str, end: bool| -> Result<Day> {
            if let Some(day) = parse_day(text) {
                return Ok(day);
            }
            let month = (by == By::Month && text.len() == 7)
                .then(|| parse_day(&format!("{text}-01")))
                .flatten();
            match month {
                // The last day of the month: the day before the next month's first.
                Some(first) if end => Ok(parse_day(&format!("{}-01", month_text(first + 31)))
                    .map_or(first, |next| next - 1)),
                Some(first) => Ok(first),
                None => Err(ApiError::BadRequest(format!(
                    "{field} must be a date YYYY-MM-DD{}",
                    if by == By::Month {
                        " or a month YYYY-MM"
                    } else {
                        ""
                    }
                ))),
            }
        };
        let to = match query.to.as_deref() {
            Some(text) => date("to", text, true)?,
            None => day_of(now),
        };
        let from = match query.from.as_deref() {
            Some(text) => date("from", text, false)?,
            None => match by {
                By::Day => to - 29,
                By::Month => parse_day(&format!("{}-01", month_text(to))).unwrap_or(to),
            },
        };
        if from > to {
            return Err(ApiError::BadRequest(format!(
                "from ({}) is after to ({})",
                day_text(from),
                day_text(to)
            )));
        }
        if to - from + 1 > MAX_RANGE_DAYS {
            return Err(ApiError::BadRequest(format!(
                "the range spans {} days; at most {MAX_RANGE_DAYS} per request",
                to - from + 1
            )));
        }
        Ok(Self {
            from,
            to,
            by,
            group,
        })
    }

    /// The smallest and largest stored day texts the range needs: the day before `from`
    /// (its tokens count towards `from`'s peak) and rolled-up month rows (`YYYY-MM`).
    fn stored_bounds(&self) -> (String, String) {
        let before = day_text(self.from - 1);
        let month = month_text(self.from);
        (before.min(month), day_text(self.to))
    }
}

fn query_of(query: std::result::Result<Query<UsageQuery>, QueryRejection>) -> Result<UsageQuery> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))
}

/// One org's usage.
#[derive(Debug, Serialize)]
struct OrgUsageView {
    org: String,
    from: String,
    to: String,
    by: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'static str>,
    /// The license's tier (`null`: no license).
    tier: Option<Tier>,
    /// The license's gateway limit (`null`: none).
    max_gateways: Option<u64>,
    rows: Vec<UsageRow>,
}

/// Every org's usage.
#[derive(Debug, Serialize)]
struct AllUsageView {
    from: String,
    to: String,
    by: &'static str,
    orgs: Vec<OrgUsageView>,
}

fn by_text(by: By) -> &'static str {
    match by {
        By::Day => "day",
        By::Month => "month",
    }
}

fn group_text(group: Group) -> &'static str {
    match group {
        Group::Workspace => "workspace",
        Group::Environment => "environment",
        Group::Gateway => "gateway",
        Group::Plugin => "plugin",
    }
}

async fn org_view(
    tenant: &TenantStore<'_>,
    slug: &str,
    range: &Range,
    tier: Option<Tier>,
    limits: Limits,
) -> std::result::Result<OrgUsageView, StoreError> {
    let (first, last) = range.stored_bounds();
    let records = tenant.usage_records(&first, &last).await?;
    Ok(OrgUsageView {
        org: slug.to_owned(),
        from: day_text(range.from),
        to: day_text(range.to),
        by: by_text(range.by),
        group: range.group.map(group_text),
        tier,
        max_gateways: limits.max_gateways,
        rows: summarise(&records, range.from, range.to, range.by, range.group),
    })
}

/// `GET /v1/orgs/{org}/usage`: the org's admins and the vendor.
async fn org_usage(
    State(state): State<AppState>,
    access: Access,
    query: std::result::Result<Query<UsageQuery>, QueryRejection>,
) -> Result<axum::Json<OrgUsageView>> {
    access.require(Action::ReadUsage)?;
    let range = Range::parse(query_of(query)?, state.now())?;
    let tenant = access.tenant();
    let license = tenant.license_if_any().await?;
    let (tier, limits) = license.map_or((None, Limits::default()), |l| (Some(l.tier), l.limits));
    let view = org_view(&tenant, &access.org.slug, &range, tier, limits).await?;
    Ok(axum::Json(view))
}

/// `GET /v1/admin/usage`: every org, one row per period (the vendor only).
async fn all_usage(
    State(state): State<AppState>,
    principal: Principal,
    query: std::result::Result<Query<UsageQuery>, QueryRejection>,
) -> Result<axum::Json<AllUsageView>> {
    principal.require_global()?;
    let range = Range::parse(query_of(query)?, state.now())?;
    if range.group.is_some() {
        return Err(ApiError::BadRequest(
            "group is for one org's usage (GET /v1/orgs/{org}/usage)".into(),
        ));
    }
    let mut orgs = Vec::new();
    for org in state.store.usage_orgs().await? {
        let tier = org.tier.as_deref().and_then(|t| t.parse::<Tier>().ok());
        let limits: Limits = match org.limits.as_deref() {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| ApiError::internal(StoreError::Corrupt(e.to_string())))?,
            None => Limits::default(),
        };
        let tenant = state.store.tenant(&org.id);
        orgs.push(org_view(&tenant, &org.slug, &range, tier, limits).await?);
    }
    Ok(axum::Json(AllUsageView {
        from: day_text(range.from),
        to: day_text(range.to),
        by: by_text(range.by),
        orgs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(from: Option<&str>, to: Option<&str>, by: Option<&str>) -> UsageQuery {
        UsageQuery {
            from: from.map(Into::into),
            to: to.map(Into::into),
            by: by.map(Into::into),
            group: None,
        }
    }

    #[test]
    fn ranges_are_checked_and_months_may_be_named() {
        let now = parse_day("2026-11-20").expect("day") * 86_400;
        let range = Range::parse(query(None, None, None), now).expect("defaults");
        assert_eq!(
            (day_text(range.from), day_text(range.to)),
            ("2026-10-22".into(), "2026-11-20".into())
        );
        let months = Range::parse(query(Some("2026-02"), Some("2026-02"), Some("month")), now)
            .expect("months");
        assert_eq!(
            (day_text(months.from), day_text(months.to)),
            ("2026-02-01".into(), "2026-02-28".into())
        );
        for bad in [
            query(Some("2026-11-31"), None, None),
            query(Some("2026-11"), None, None),
            query(Some("2026-11-10"), Some("2026-11-01"), None),
            query(Some("2024-01-01"), Some("2026-11-01"), None),
            query(None, None, Some("week")),
        ] {
            assert!(matches!(
                Range::parse(bad, now),
                Err(ApiError::BadRequest(_))
            ));
        }
    }
}
