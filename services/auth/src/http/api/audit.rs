//! An org's audit chain: list with filters and a cursor, verify, NDJSON export, and signed
//! checkpoints (latest, and one signed on demand).

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mcpg_license_core::audit::{AuditRecord, VerifyReport};
use mcpg_license_core::clock::to_rfc3339;
use serde::{Deserialize, Serialize};

use super::orgs::time;
use crate::domain::rbac::Action;
use crate::http::authorize::Access;
use crate::http::error::{ApiError, Result};
use crate::http::state::AppState;
use crate::infra::audit_chain::{self, CheckpointFailure, PAGE};
use crate::infra::store::{AuditFilter, CheckpointRecord};

const BASE: &str = "/v1/orgs/{org}/audit";
/// Entries per list page unless `limit` says otherwise.
const DEFAULT_LIMIT: i64 = 100;
/// Largest list page.
const MAX_LIMIT: i64 = 1_000;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(BASE, get(list))
        .route(&format!("{BASE}/verify"), get(verify))
        .route(&format!("{BASE}/export"), get(export))
        .route(&format!("{BASE}/checkpoints"), post(checkpoint))
        .route(
            &format!("{BASE}/checkpoints/latest"),
            get(latest_checkpoint),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    after_seq: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

#[derive(Debug, Serialize)]
struct ListView {
    entries: Vec<AuditRecord>,
    /// The `after_seq` of the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

async fn list(
    access: Access,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<axum::Json<ListView>> {
    access.require(Action::ReadAudit)?;
    let Query(query) =
        query.map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1-{MAX_LIMIT}")));
    }
    let after_seq = query.after_seq.unwrap_or(0);
    if after_seq < 0 {
        return Err(ApiError::BadRequest("after_seq must be 0 or more".into()));
    }
    let normalise = |field: &str, text: Option<String>| -> Result<Option<String>> {
        text.map(|t| time(field, &t).map(to_rfc3339)).transpose()
    };
    let filter = AuditFilter {
        after_seq,
        limit,
        action: query.action,
        actor: query.actor,
        since: normalise("since", query.since)?,
        until: normalise("until", query.until)?,
    };
    let entries = access.tenant().audit_entries(&filter).await?;
    let next_cursor = match entries.last() {
        Some(last) if entries.len() as i64 == limit => Some(last.entry.seq.to_string()),
        _ => None,
    };
    Ok(axum::Json(ListView {
        entries,
        next_cursor,
    }))
}

async fn verify(access: Access) -> Result<axum::Json<VerifyReport>> {
    access.require(Action::ReadAudit)?;
    let report = audit_chain::verify(&access.tenant()).await?;
    if !report.ok {
        tracing::error!(org = %access.org.slug, first_bad_seq = ?report.first_bad_seq,
            "audit chain does not verify");
    }
    Ok(axum::Json(report))
}

/// Every entry, one JSON object per line, with its details, `prev_hash` and `hash`: what
/// `mcpg-ctl audit verify --file` checks offline.
async fn export(access: Access) -> Result<impl IntoResponse> {
    access.require(Action::ReadAudit)?;
    let tenant = access.tenant();
    let mut body = String::new();
    let mut after = 0;
    loop {
        let page = tenant.audit_page(after, PAGE).await?;
        for record in &page {
            body.push_str(&serde_json::to_string(record).map_err(ApiError::internal)?);
            body.push('\n');
        }
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = last.entry.seq,
            _ => break,
        }
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body))
}

#[derive(Debug, Serialize)]
struct CheckpointView {
    org: String,
    seq: i64,
    head_hash: String,
    key_id: Option<String>,
    created_at: String,
    note: String,
}

impl CheckpointView {
    fn new(org: &str, record: CheckpointRecord) -> Self {
        let key_id = record
            .note
            .split_once("\n\n\u{2014} ")
            .and_then(|(_, line)| line.split_once(' '))
            .map(|(name, _)| name.to_owned());
        Self {
            org: org.to_owned(),
            seq: record.seq,
            head_hash: record.hash,
            key_id,
            created_at: to_rfc3339(record.created_at),
            note: record.note,
        }
    }
}

async fn latest_checkpoint(access: Access) -> Result<axum::Json<CheckpointView>> {
    access.require(Action::ReadAudit)?;
    let record = access
        .tenant()
        .latest_checkpoint()
        .await?
        .ok_or(ApiError::NotFound("checkpoint"))?;
    Ok(axum::Json(CheckpointView::new(&access.org.slug, record)))
}

async fn checkpoint(
    State(state): State<AppState>,
    access: Access,
) -> Result<(StatusCode, axum::Json<CheckpointView>)> {
    access.require(Action::SignCheckpoint)?;
    let record = audit_chain::sign_checkpoint(&access.tenant(), &state.keyring, state.now())
        .await
        .map_err(|error| match error {
            CheckpointFailure::Store(error) => error.into(),
            CheckpointFailure::Broken(_) => ApiError::Conflict(error.to_string()),
            CheckpointFailure::NoKey => ApiError::Unavailable("no active signing key"),
        })?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CheckpointView::new(&access.org.slug, record)),
    ))
}
