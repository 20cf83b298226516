//! Plugin sets of workspaces and environments: `PUT`/`GET`/`DELETE` on
//! `…/workspaces/{ws}/plugin-set` and `…/workspaces/{ws}/environments/{env}/plugin-set`.
//! Operators of the workspace (and org admins) write them, viewers read them; a set is
//! accepted only when every plugin is in the catalog and entitled by the org's license in
//! force. An environment without its own set answers with its workspace's, marked
//! `inherited_from: "workspace"`. Also: which sets a license change would take plugins
//! from (the license route refuses such a change unless forced).

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::put;
use mcpg_license_core::clock::to_rfc3339;
use mcpg_license_core::{EntitlementSet, PluginSet, PluginSetEntry};
use serde::{Deserialize, Serialize};

use crate::domain::entitlements_at;
use crate::domain::plugin_sets::{
    PluginSetRefusal, UnentitledPlugin, check_plugin_set, describe, lost,
};
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

/// A plugin set a license change takes plugins from.
#[derive(Debug, Clone, Serialize)]
pub(super) struct AffectedSet {
    workspace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
    plugins: Vec<UnentitledPlugin>,
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
    let now = state.now();
    let license = access.tenant().license_if_any().await?;
    check_plugin_set(&set, &entitlements_at(license.as_ref(), now)).map_err(refused)?;
    let record = access.tenant().put_plugin_set(ws, env, &set, now).await?;
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

fn refused(refusal: PluginSetRefusal) -> ApiError {
    let message = refusal.message();
    match refusal {
        PluginSetRefusal::Unknown(_) => ApiError::UnknownPlugin(message),
        PluginSetRefusal::NotEntitled(plugins) => ApiError::NotEntitled {
            message,
            plugins: serde_json::to_value(plugins).unwrap_or_default(),
        },
    }
}

/// The org's plugin sets that a license change from `before` to `after` (entitlements)
/// takes plugins from, each with what it loses.
pub(super) async fn affected_by(
    access: &Access,
    before: &EntitlementSet,
    after: &EntitlementSet,
) -> Result<Vec<AffectedSet>> {
    let sets = access.tenant().plugin_sets().await?;
    Ok(sets
        .into_iter()
        .filter_map(|record| {
            let plugins = lost(&record.set, before, after);
            (!plugins.is_empty()).then_some(AffectedSet {
                workspace: record.workspace,
                environment: record.environment,
                plugins,
            })
        })
        .collect())
}

/// The 409 of a license change that would take plugins from `affected` sets.
pub(super) fn conflict(affected: &[AffectedSet]) -> ApiError {
    let named: Vec<String> = affected
        .iter()
        .map(|a| {
            let place = match &a.environment {
                Some(env) => format!("{}/{env}", a.workspace),
                None => a.workspace.clone(),
            };
            format!("{place}: {}", describe(&a.plugins))
        })
        .collect();
    ApiError::PluginSetConflict {
        message: format!(
            "the new license would no longer entitle plugins of {} plugin set{} ({}); change \
             the plugin sets first, or repeat with ?force=true",
            affected.len(),
            if affected.len() == 1 { "" } else { "s" },
            named.join("; ")
        ),
        plugin_sets: serde_json::to_value(affected).unwrap_or_default(),
    }
}
