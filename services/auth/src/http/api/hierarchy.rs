//! Workspaces, environments and gateway registrations of an org. Deletes answer with
//! the export of what they removed; a parent with children needs `?cascade=true`.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use mcpg_license_core::clock::to_rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::Slug;
use crate::domain::credential::{Credential, CredentialKind};
use crate::domain::rbac::Action;
use crate::http::authorize::Access;
use crate::http::error::{ApiError, Result};
use crate::http::extract::ApiJson;
use crate::http::page::{ListRoute, PageRequest, Paged};
use crate::http::state::AppState;
use crate::infra::store::{
    BatchGateway, DeleteTarget, EnvironmentRecord, GatewayRecord, MAX_BATCH, NewGateway,
    WorkspaceRecord,
};

const WS: &str = "/v1/orgs/{org}/workspaces";
const ENV: &str = "/v1/orgs/{org}/workspaces/{ws}/environments";
const GW: &str = "/v1/orgs/{org}/workspaces/{ws}/environments/{env}/gateways";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(WS, get(list_workspaces).post(create_workspace))
        .route(&format!("{WS}/{{ws}}"), delete(delete_workspace))
        .route(ENV, get(list_environments).post(create_environment))
        .route(&format!("{ENV}/{{env}}"), delete(delete_environment))
        .route(GW, get(list_gateways).post(register_gateway))
        .route(&format!("{GW}/{{id}}"), delete(revoke_gateway))
        .route(
            &format!("{GW}/batch"),
            post(register_gateways).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)),
        )
}

/// A batch body: up to [`MAX_BATCH`] names of at most [`MAX_GATEWAY_NAME`] bytes.
const MAX_BATCH_BODY_BYTES: usize = 512 * 1024;

const MAX_GATEWAY_NAME: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSlug {
    slug: Slug,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterGateway {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterGateways {
    gateways: Vec<RegisterGateway>,
}

#[derive(Debug, Serialize)]
struct RegisteredGateways {
    gateways: Vec<GatewayView>,
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

#[derive(Debug, Serialize)]
struct GatewayView {
    id: String,
    name: String,
    workspace: String,
    environment: String,
    credential_prefix: String,
    created_at: String,
    last_token_at: Option<String>,
    revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
}

impl From<GatewayRecord> for GatewayView {
    fn from(gw: GatewayRecord) -> Self {
        Self {
            id: gw.id,
            name: gw.name,
            workspace: gw.workspace,
            environment: gw.environment,
            credential_prefix: gw.credential_prefix,
            created_at: to_rfc3339(gw.created_at),
            last_token_at: gw.last_token_at.map(to_rfc3339),
            revoked_at: gw.revoked_at.map(to_rfc3339),
            credential: None,
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

async fn register_gateway(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<RegisterGateway>,
) -> Result<(StatusCode, axum::Json<GatewayView>)> {
    access.require(Action::ManageGateways(&ws, &env))?;
    let name = crate::domain::display_text("name", &body.name, MAX_GATEWAY_NAME)?;
    let credential = Credential::generate(CredentialKind::Gateway).map_err(ApiError::internal)?;
    let hash = credential.hash().to_hex();
    let gateway = NewGateway {
        workspace: &ws,
        environment: &env,
        name: &name,
        credential_hash: &hash,
        credential_prefix: credential.display_prefix(),
    };
    let record = access
        .tenant()
        .register_gateway(&gateway, state.now())
        .await?;
    tracing::info!(org = %access.org.slug, gateway = %record.id, "gateway registered");
    let mut view = GatewayView::from(record);
    view.credential = Some(credential.expose().to_owned());
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// Registers up to [`MAX_BATCH`] gateways of one environment at once, all or none (a
/// fleet's bulk path): each gets its own credential, shown once in the answer.
async fn register_gateways(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<RegisterGateways>,
) -> Result<(StatusCode, axum::Json<RegisteredGateways>)> {
    access.require(Action::ManageGateways(&ws, &env))?;
    if body.gateways.is_empty() || body.gateways.len() > MAX_BATCH {
        return Err(ApiError::BadRequest(format!(
            "a batch registers 1 to {MAX_BATCH} gateways; this one has {}",
            body.gateways.len()
        )));
    }
    let mut batch = Vec::with_capacity(body.gateways.len());
    let mut credentials = Vec::with_capacity(body.gateways.len());
    for (i, gateway) in body.gateways.iter().enumerate() {
        let name = crate::domain::display_text("name", &gateway.name, MAX_GATEWAY_NAME)
            .map_err(|e| ApiError::BadRequest(format!("gateways[{i}]: {e}")))?;
        let credential =
            Credential::generate(CredentialKind::Gateway).map_err(ApiError::internal)?;
        batch.push(BatchGateway {
            name,
            credential_hash: credential.hash().to_hex(),
            credential_prefix: credential.display_prefix().to_owned(),
        });
        credentials.push(credential);
    }
    let records = access
        .tenant()
        .register_gateways(&ws, &env, &batch, state.now())
        .await?;
    tracing::info!(org = %access.org.slug, workspace = %ws, environment = %env, count = records.len(), "gateways registered");
    let gateways = records
        .into_iter()
        .zip(credentials)
        .map(|(record, credential)| {
            let mut view = GatewayView::from(record);
            view.credential = Some(credential.expose().to_owned());
            view
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        axum::Json(RegisteredGateways { gateways }),
    ))
}

async fn list_gateways(
    access: Access,
    Path((_, ws, env)): Path<(String, String, String)>,
    page: PageRequest,
) -> Result<Paged<GatewayView>> {
    access.require(Action::ReadEnvironment(&ws, &env))?;
    let after: Option<(i64, String)> = page.after(ListRoute::Gateways)?;
    let after = after.as_ref().map(|(time, id)| (*time, id.as_str()));
    let rows = access
        .tenant()
        .gateways(&ws, &env, after, page.fetch())
        .await?;
    Ok(page
        .answer(ListRoute::Gateways, rows, |gw| {
            (gw.created_at, gw.id.clone())
        })
        .map())
}

async fn revoke_gateway(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws, env, id)): Path<(String, String, String, String)>,
) -> Result<axum::Json<GatewayView>> {
    access.require(Action::ManageGateways(&ws, &env))?;
    let record = access
        .tenant()
        .revoke_gateway(&ws, &env, &id, state.now())
        .await?;
    tracing::info!(org = %access.org.slug, gateway = %record.id, "gateway revoked");
    Ok(axum::Json(record.into()))
}
