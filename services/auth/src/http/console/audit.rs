//! Audit: the org's chain with filters (action, actor, days) and pages, a verify action
//! showing how far the chain checks, and the latest signed checkpoint as a download. The
//! same [`Action::ReadAudit`] the API's audit routes ask for.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use mcpg_license_core::audit::VerifyReport;
use mcpg_license_core::clock::to_rfc3339;
use serde::Deserialize;

use super::error::ConsoleError;
use super::extract::Query;
use super::session::SignedIn;
use super::view::{self, Frame, Section, csrf_field};
use crate::domain::rbac::Action;
use crate::http::authorize::Access;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::infra::audit_chain;
use crate::infra::store::AuditFilter;

type Result<T, E = ConsoleError> = std::result::Result<T, E>;

/// Entries per page.
const ENTRIES_PER_PAGE: i64 = 50;

/// `?action=&actor=&after_seq=` of the audit page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    after_seq: Option<i64>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

/// The start of day `date` (`YYYY-MM-DD`) as Unix time.
fn day_start(field: &str, date: &str) -> Result<i64> {
    mcpg_license_core::clock::parse_rfc3339(&format!("{date}T00:00:00Z")).ok_or_else(|| {
        ApiError::BadRequest(format!("{field} must be a date, e.g. 2026-12-31")).into()
    })
}

/// A filter field: trimmed, empty meaning none.
fn given(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// `GET /console/orgs/{org}/audit`.
pub(crate) async fn audit(
    signed_in: SignedIn,
    access: Access,
    Query(query): Query<AuditQuery>,
) -> Result<Markup> {
    page(&signed_in, &access, &query, None).await
}

async fn page(
    signed_in: &SignedIn,
    access: &Access,
    query: &AuditQuery,
    report: Option<&VerifyReport>,
) -> Result<Markup> {
    access.require(Action::ReadAudit)?;
    let after_seq = query.after_seq.unwrap_or(0).max(0);
    let action = given(query.action.as_deref());
    let actor = given(query.actor.as_deref());
    let since = given(query.since.as_deref());
    let until = given(query.until.as_deref());
    // Whole days, `until` included: entries from the start of `since` to the end of `until`.
    let since_time = since
        .as_deref()
        .map(|d| day_start("since", d))
        .transpose()?;
    let until_time = until
        .as_deref()
        .map(|d| day_start("until", d))
        .transpose()?;
    let entries = access
        .tenant()
        .audit_entries(&AuditFilter {
            after_seq,
            limit: ENTRIES_PER_PAGE,
            action: action.clone(),
            actor: actor.clone(),
            since: since_time.map(to_rfc3339),
            until: until_time.map(|t| to_rfc3339(t + 86_400)),
        })
        .await?;
    let org = access.org.slug.as_str();
    let here = format!("/console/orgs/{org}/audit");
    let next = match entries.last() {
        Some(last) if entries.len() as i64 == ENTRIES_PER_PAGE => Some(format!(
            "{here}?action={}&actor={}&since={}&until={}&after_seq={}",
            encode(action.as_deref().unwrap_or_default()),
            encode(actor.as_deref().unwrap_or_default()),
            encode(since.as_deref().unwrap_or_default()),
            encode(until.as_deref().unwrap_or_default()),
            last.entry.seq
        )),
        _ => None,
    };
    let body = html! {
        h1 { "Audit chain of " (org) }
        @if let Some(report) = report {
            div class="report" role="status" {
                @if report.ok {
                    p { strong { "The chain verifies." } " Checked " (report.checked) " entries; head #" (report.head_seq) "." }
                } @else {
                    p { strong { "The chain does not verify." } " Checked " (report.checked)
                        " entries; first bad entry: #" (report.first_bad_seq.map_or_else(|| "?".to_owned(), |s| s.to_string())) "." }
                }
                p { "Head hash " code { (report.head_hash) } }
            }
        }
        div class="actions" {
            form class="inline" method="post" action={ (here) "/verify" } {
                (csrf_field(&signed_in.csrf))
                button type="submit" { "Verify the chain" }
            }
            a href={ (here) "/checkpoint" } download { "Download the latest signed checkpoint" }
        }
        form class="inline" method="get" action=(here) {
            label for="action" { "Action" }
            input id="action" name="action" value=[action.as_deref()] placeholder="e.g. gateway.register";
            label for="actor" { "Actor" }
            input id="actor" name="actor" value=[actor.as_deref()] placeholder="e.g. user:…";
            label for="since" { "From" }
            input id="since" name="since" type="date" value=[since.as_deref()];
            label for="until" { "To" }
            input id="until" name="until" type="date" value=[until.as_deref()];
            button type="submit" { "Filter" }
        }
        @if entries.is_empty() {
            p { "No entries match." }
        } @else {
            div class="scroll" {
                table {
                    caption { "Entries after #" (after_seq) }
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "Actor" }
                        th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Hash" }
                    } }
                    tbody {
                        @for record in &entries {
                            tr {
                                td { (record.entry.seq) }
                                td { (record.entry.time) }
                                td { (record.entry.actor) }
                                td { (record.entry.action) }
                                td { (record.entry.target) }
                                td { code title=(record.hash) { (record.hash.get(..12).unwrap_or(&record.hash)) "…" } }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            nav aria-label="Pages" { a href=(next) { "Next entries" } }
        }
    };
    let frame = Frame::org(signed_in, access, Section::Audit);
    Ok(view::page(frame, "Audit", body))
}

/// Percent-encodes a query value (a filter echoed into the next page's link).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `POST /console/orgs/{org}/audit/verify`: verifies the whole chain and shows the report
/// above the first page.
pub(crate) async fn verify(signed_in: SignedIn, access: Access) -> Result<Markup> {
    access.require(Action::ReadAudit)?;
    let report = audit_chain::verify(&access.tenant()).await?;
    if !report.ok {
        tracing::error!(org = %access.org.slug, first_bad_seq = ?report.first_bad_seq,
            "audit chain does not verify");
    }
    page(&signed_in, &access, &AuditQuery::default(), Some(&report)).await
}

/// `GET /console/orgs/{org}/audit/checkpoint`: the latest signed checkpoint note, as a file.
pub(crate) async fn latest_checkpoint(
    State(_state): State<AppState>,
    access: Access,
) -> Result<Response> {
    access.require(Action::ReadAudit)?;
    let record = access
        .tenant()
        .latest_checkpoint()
        .await?
        .ok_or(ApiError::NotFound("checkpoint"))?;
    let disposition = format!(
        "attachment; filename=\"{}-checkpoint-{}.txt\"",
        access.org.slug, record.seq
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        record.note,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_percent_encoded_in_links() {
        assert_eq!(encode("user:a b&c"), "user%3Aa%20b%26c");
        assert_eq!(encode("gateway.register"), "gateway.register");
    }
}
