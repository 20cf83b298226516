//! Archives of deleted orgs (global admin only): list, read, verify the archived audit
//! chain, restore within the retention window. The purge after the window is the
//! `archive-purge` background task.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use mcpg_license_core::clock::to_rfc3339;
use serde::Serialize;
use serde_json::Value;

use crate::http::error::{ApiError, Result};
use crate::http::extract::Principal;
use crate::http::state::AppState;
use crate::infra::audit_chain::{ArchiveVerification, verify_archived};
use crate::infra::store::{Actor, ArchiveSummary, ArchivedChain, RestoreRefusal};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/archives", get(list))
        .route("/v1/admin/archives/{id}", get(show))
        .route("/v1/admin/archives/{id}/verify", post(verify))
        .route("/v1/admin/archives/{id}/restore", post(restore))
}

/// An archive in a listing.
#[derive(Debug, Serialize)]
struct ArchiveView {
    id: String,
    org: String,
    org_id: Option<String>,
    deleted_at: String,
    purge_at: String,
    size: i64,
}

/// An archive with its content (the export and the audit chain; the rows a restore writes
/// back, with the gateways' credential hashes, stay on the server).
#[derive(Debug, Serialize)]
struct ArchiveDetail {
    #[serde(flatten)]
    summary: ArchiveView,
    restorable: bool,
    archive: Value,
}

#[derive(Debug, Serialize)]
struct RestoredView {
    org: String,
    org_id: String,
    archive_id: String,
}

fn retention(state: &AppState) -> i64 {
    i64::try_from(state.info.retention.as_secs()).unwrap_or(i64::MAX)
}

fn view(state: &AppState, archive: ArchiveSummary) -> ArchiveView {
    ArchiveView {
        purge_at: to_rfc3339(archive.deleted_at.saturating_add(retention(state))),
        deleted_at: to_rfc3339(archive.deleted_at),
        id: archive.id,
        org: archive.org_slug,
        org_id: archive.org_id,
        size: archive.size,
    }
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<Vec<ArchiveView>>> {
    principal.require_global()?;
    let archives = state.store.archives().await?;
    Ok(axum::Json(
        archives.into_iter().map(|a| view(&state, a)).collect(),
    ))
}

async fn load(state: &AppState, id: &str) -> Result<(ArchiveSummary, Value)> {
    state
        .store
        .archive(id)
        .await?
        .ok_or(ApiError::NotFound("archive"))
}

async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<ArchiveDetail>> {
    principal.require_global()?;
    let (summary, mut archive) = load(&state, &id).await?;
    let restorable = archive
        .as_object_mut()
        .and_then(|fields| fields.remove("restore"))
        .is_some();
    Ok(axum::Json(ArchiveDetail {
        summary: view(&state, summary),
        restorable,
        archive,
    }))
}

async fn verify(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<ArchiveVerification>> {
    principal.require_global()?;
    let (summary, archive) = load(&state, &id).await?;
    let chain: ArchivedChain = match archive.get("audit") {
        Some(audit) => serde_json::from_value(audit.clone()).map_err(|e| {
            ApiError::Conflict(format!("the archived audit chain is unreadable: {e}"))
        })?,
        None => ArchivedChain::default(),
    };
    let org_id = summary.org_id.as_deref().unwrap_or_default();
    let report = verify_archived(org_id, &chain);
    if !report.ok {
        tracing::error!(org = %summary.org_slug, archive_id = %summary.id,
            first_bad_seq = ?report.chain.first_bad_seq,
            first_bad_checkpoint = ?report.first_bad_checkpoint,
            "archived audit chain does not verify");
    }
    Ok(axum::Json(report))
}

async fn restore(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<RestoredView>)> {
    principal.require_global()?;
    let now = state.now();
    let outcome = state
        .store
        .restore_archive(&id, now.saturating_sub(retention(&state)), &actor, now)
        .await?;
    match outcome {
        Ok((org_id, org)) => {
            tracing::info!(org = %org, archive_id = %id, by = %principal.token_id,
                "organization restored from its archive");
            Ok((
                StatusCode::CREATED,
                axum::Json(RestoredView {
                    org,
                    org_id,
                    archive_id: id,
                }),
            ))
        }
        Err(RestoreRefusal::NotFound) => Err(ApiError::NotFound("archive")),
        Err(RestoreRefusal::Expired) => Err(ApiError::Conflict(
            "the archive's retention has passed; it can no longer be restored".into(),
        )),
        Err(RestoreRefusal::SlugTaken) => Err(ApiError::Conflict(
            "an organization with this slug exists again; delete or rename it first".into(),
        )),
        Err(RestoreRefusal::NotRestorable) => Err(ApiError::Conflict(
            "this archive predates restore support and can only be read".into(),
        )),
    }
}
