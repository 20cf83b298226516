//! Workspaces and environments of an org (gateways: `super::gateways`). Deletes answer with
//! the export of what they removed; a parent with children needs `?cascade=true`.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use mcpg_license_core::clock::to_rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::Slug;
use crate::domain::rbac::Action;
use crate::http::authorize::Access;
use crate::http::error::{ApiError, Result};
use crate::http::extract::ApiJson;
use crate::http::page::{ListRoute, PageRequest, Paged};
use crate::http::state::AppState;
use crate::infra::store::{DeleteTarget, EnvironmentRecord, WorkspaceRecord};

const WS: &str = "/v1/orgs/{org}/workspaces";
const ENV: &str = "/v1/orgs/{org}/workspaces/{ws}/environments";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(WS, get(list_workspaces).post(create_workspace))
        .route(&format!("{WS}/{{ws}}"), delete(delete_workspace))
        .route(ENV, get(list_environments).post(create_environment))
        .route(&format!("{ENV}/{{env}}"), delete(delete_environment))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSlug {
    slug: Slug,
}

#[derive(Debug, Serialize)]
struct WorkspaceView {
    id: String,
    slug: String,
    created_at: String,
}

impl From<WorkspaceRecord> for WorkspaceView {
    fn from(ws: WorkspaceRecord) -> Self {
        Self {
            id: ws.id,
            slug: ws.slug,
            created_at: to_rfc3339(ws.created_at),
        }
    }
}

#[derive(Debug, Serialize)]
struct EnvironmentView {
    id: String,
    slug: String,
    workspace: String,
    created_at: String,
}

impl From<EnvironmentRecord> for EnvironmentView {
    fn from(env: EnvironmentRecord) -> Self {
        Self {
            id: env.id,
            slug: env.slug,
            workspace: env.workspace,
            created_at: to_rfc3339(env.created_at),
        }
    }
}

/// The query of a delete: `?cascade=true` also deletes the children.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteQuery {
    #[serde(default)]
    cascade: bool,
}

/// `?cascade=true`, with bad query strings answered in our error shape.
pub(super) fn cascade(query: Result<Query<DeleteQuery>, QueryRejection>) -> Result<bool> {
    query
        .map(|Query(q)| q.cascade)
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))
}

async fn create_workspace(
    State(state): State<AppState>,
    access: Access,
    ApiJson(body): ApiJson<CreateSlug>,
) -> Result<(StatusCode, axum::Json<WorkspaceView>)> {
    access.require(Action::ManageStructure)?;
    let ws = access
        .tenant()
        .create_workspace(&body.slug, state.now())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(ws.into())))
}

async fn list_workspaces(access: Access, page: PageRequest) -> Result<Paged<WorkspaceView>> {
    let after: Option<String> = page.after(ListRoute::Workspaces)?;
    let rows = access
        .tenant()
        .workspaces(after.as_deref().unwrap_or(""), page.fetch())
        .await?;
    Ok(page
        .answer(ListRoute::Workspaces, rows, |ws| ws.slug.clone())
        .filter_map(|ws| {
            access
                .allows(Action::SeeWorkspace(&ws.slug))
                .then(|| WorkspaceView::from(ws))
        }))
}

async fn delete_workspace(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws)): Path<(String, String)>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<axum::Json<Value>> {
    access.require(Action::ManageStructure)?;
    let export = access
        .tenant()
        .delete(
            &access.org.slug,
            DeleteTarget::Workspace(&ws),
            cascade(query)?,
            state.now(),
        )
        .await?;
    tracing::info!(org = %access.org.slug, workspace = %ws, "workspace deleted");
    Ok(axum::Json(export))
}

async fn create_environment(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws)): Path<(String, String)>,
    ApiJson(body): ApiJson<CreateSlug>,
) -> Result<(StatusCode, axum::Json<EnvironmentView>)> {
    access.require(Action::ManageStructure)?;
    let env = access
        .tenant()
        .create_environment(&ws, &body.slug, state.now())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(env.into())))
}

async fn list_environments(
    access: Access,
    Path((_, ws)): Path<(String, String)>,
    page: PageRequest,
) -> Result<Paged<EnvironmentView>> {
    access.require(Action::SeeWorkspace(&ws))?;
    let after: Option<String> = page.after(ListRoute::Environments)?;
    let rows = access
        .tenant()
        .environments(&ws, after.as_deref().unwrap_or(""), page.fetch())
        .await?;
    Ok(page
        .answer(ListRoute::Environments, rows, |env| env.slug.clone())
        .filter_map(|env| {
            access
                .allows(Action::ReadEnvironment(&ws, &env.slug))
                .then(|| EnvironmentView::from(env))
        }))
}

async fn delete_environment(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws, env)): Path<(String, String, String)>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<axum::Json<Value>> {
    access.require(Action::ManageStructure)?;
    let export = access
        .tenant()
        .delete(
            &access.org.slug,
            DeleteTarget::Environment(&ws, &env),
            cascade(query)?,
            state.now(),
        )
        .await?;
    tracing::info!(org = %access.org.slug, workspace = %ws, environment = %env, "environment deleted");
    Ok(axum::Json(export))
}
