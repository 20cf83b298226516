//! Plugin sets of workspaces and environments: `PUT`/`GET`/`DELETE` on
//! `…/workspaces/{ws}/plugin-set` and `…/workspaces/{ws}/environments/{env}/plugin-set`.
//! Operators of the workspace (and org admins) write them, viewers read them; a set is
//! accepted only when every plugin is in the catalog and entitled by the org's license in
//! force. An environment without its own set answers with its workspace's, marked
//! `inherited_from: "workspace"`.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::put;
use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::{PluginSet, PluginSetEntry};
use serde::{Deserialize, Serialize};

use crate::domain::rbac::Action;
use crate::http::authorize::Access;
use crate::http::error::{ApiError, Result};
use crate::http::extract::ApiJson;
use crate::http::state::AppState;
use crate::infra::store::{PluginSetRecord, StoreError};

const WS: &str = "/v1/orgs/{org}/workspaces/{ws}/plugin-set";
const ENV: &str = "/v1/orgs/{org}/workspaces/{ws}/environments/{env}/plugin-set";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(WS, put(put_ws).get(get_ws).delete(delete_ws))
        .route(ENV, put(put_env).get(get_env).delete(delete_env))
}

/// The body of a `PUT`: the plugins, each with an optional config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutPluginSet {
    plugins: Vec<PluginSetEntry>,
}

#[derive(Debug, Serialize)]
struct PluginSetView {
    workspace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
    plugins: std::sync::Arc<PluginSet>,
    digest: String,
    revision: i64,
    updated_at: String,
    /// `"workspace"` when an environment has no set of its own and this is its workspace's.
    #[serde(skip_serializing_if = "Option::is_none")]
    inherited_from: Option<&'static str>,
}

impl PluginSetView {
    fn own(record: PluginSetRecord) -> Self {
        Self {
            workspace: record.workspace,
            environment: record.environment,
            plugins: record.set,
            digest: record.digest,
            revision: record.revision,
            updated_at: to_rfc3339(record.updated_at),
            inherited_from: None,
        }
    }
}

async fn put_ws(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws)): Path<(String, String)>,
    ApiJson(body): ApiJson<PutPluginSet>,
) -> Result<axum::Json<PluginSetView>> {
    put_set(&state, &access, &ws, None, body).await
}

async fn put_env(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<PutPluginSet>,
) -> Result<axum::Json<PluginSetView>> {
    put_set(&state, &access, &ws, Some(&env), body).await
}

async fn get_ws(
    access: Access,
    Path((_, ws)): Path<(String, String)>,
) -> Result<axum::Json<PluginSetView>> {
    get_set(&access, &ws, None).await
}

async fn get_env(
    access: Access,
    Path((_, ws, env)): Path<(String, String, String)>,
) -> Result<axum::Json<PluginSetView>> {
    get_set(&access, &ws, Some(&env)).await
}

async fn delete_ws(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws)): Path<(String, String)>,
) -> Result<axum::Json<PluginSetView>> {
    delete_set(&state, &access, &ws, None).await
}

async fn delete_env(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws, env)): Path<(String, String, String)>,
) -> Result<axum::Json<PluginSetView>> {
    delete_set(&state, &access, &ws, Some(&env)).await
}

async fn put_set(
    state: &AppState,
    access: &Access,
    ws: &str,
    env: Option<&str>,
    body: PutPluginSet,
) -> Result<axum::Json<PluginSetView>> {
    access.require(Action::ManagePluginSet(ws))?;
    let set = PluginSet::new(body.plugins)
        .map_err(|e| ApiError::BadRequest(format!("invalid plugin set: {e}")))?;
    // The catalog and the license are checked in the write's transaction.
    let record = access
        .tenant()
        .put_plugin_set(ws, env, &set, state.now())
        .await?;
    tracing::info!(org = %access.org.slug, workspace = %ws, environment = ?env,
        digest = %record.digest, "plugin set put");
    Ok(axum::Json(PluginSetView::own(record)))
}

async fn get_set(
    access: &Access,
    ws: &str,
    env: Option<&str>,
) -> Result<axum::Json<PluginSetView>> {
    access.require(Action::ReadPluginSet(ws, env))?;
    let tenant = access.tenant();
    if let Some(record) = tenant.plugin_set(ws, env).await? {
        return Ok(axum::Json(PluginSetView::own(record)));
    }
    let inherited = match env {
        Some(env) => tenant
            .plugin_set(ws, None)
            .await?
            .map(|record| PluginSetView {
                environment: Some(env.to_owned()),
                inherited_from: Some("workspace"),
                ..PluginSetView::own(record)
            }),
        None => None,
    };
    inherited.map(axum::Json).ok_or_else(|| not_found(ws, env))
}

async fn delete_set(
    state: &AppState,
    access: &Access,
    ws: &str,
    env: Option<&str>,
) -> Result<axum::Json<PluginSetView>> {
    access.require(Action::ManagePluginSet(ws))?;
    let record = match access
        .tenant()
        .delete_plugin_set(ws, env, state.now())
        .await
    {
        Ok(record) => record,
        Err(StoreError::NotFound("plugin set")) => return Err(not_found(ws, env)),
        Err(other) => return Err(other.into()),
    };
    tracing::info!(org = %access.org.slug, workspace = %ws, environment = ?env,
        "plugin set deleted");
    Ok(axum::Json(PluginSetView::own(record)))
}

fn not_found(ws: &str, env: Option<&str>) -> ApiError {
    ApiError::PluginSetNotFound(match env {
        Some(env) => format!(
            "plugin set not found: neither environment {ws}/{env} nor workspace {ws} has one"
        ),
        None => format!("plugin set not found: workspace {ws} has none"),
    })
}
