//! The gateways of an environment: register one or a batch (each credential shown once),
//! list (optionally by name), show and revoke. A name is unique among the environment's
//! unrevoked gateways, so operators can name a gateway instead of quoting its id.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use mcpg_license_core::clock::to_rfc3339;
use serde::{Deserialize, Serialize};

use crate::domain::credential::{Credential, CredentialKind};
use crate::domain::rbac::Action;
use crate::http::authorize::Access;
use crate::http::error::{ApiError, Result};
use crate::http::extract::ApiJson;
use crate::http::page::{ListRoute, PageRequest, Paged};
use crate::http::state::AppState;
use crate::infra::store::{BatchGateway, GatewayRecord, MAX_BATCH};

const GW: &str = "/v1/orgs/{org}/workspaces/{ws}/environments/{env}/gateways";

/// A batch body: up to [`MAX_BATCH`] names of at most [`MAX_GATEWAY_NAME`] bytes.
const MAX_BATCH_BODY_BYTES: usize = 512 * 1024;

const MAX_GATEWAY_NAME: usize = 200;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(GW, get(list_gateways).post(register_gateway))
        .route(
            &format!("{GW}/{{id}}"),
            get(show_gateway).delete(revoke_gateway),
        )
        .route(
            &format!("{GW}/batch"),
            post(register_gateways).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)),
        )
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

/// `?name=edge-1` on a list: only the gateways of that name. (`limit` and `cursor` are
/// the page's, read by [`PageRequest`].)
#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    name: Option<String>,
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

/// A gateway of the batch, its name checked and its credential drawn.
pub(crate) fn prepare(name: &str) -> Result<(BatchGateway, Credential)> {
    let name = crate::domain::display_text("name", name, MAX_GATEWAY_NAME)?;
    let credential = Credential::generate(CredentialKind::Gateway).map_err(ApiError::internal)?;
    let gateway = BatchGateway {
        name,
        credential_hash: credential.hash().to_hex(),
        credential_prefix: credential.display_prefix().to_owned(),
    };
    Ok((gateway, credential))
}

/// The views of registered gateways, each with its credential (shown this once).
fn with_credentials(records: Vec<GatewayRecord>, credentials: Vec<Credential>) -> Vec<GatewayView> {
    records
        .into_iter()
        .zip(credentials)
        .map(|(record, credential)| {
            let mut view = GatewayView::from(record);
            view.credential = Some(credential.expose().to_owned());
            view
        })
        .collect()
}

async fn register_gateway(
    State(state): State<AppState>,
    access: Access,
    Path((_, ws, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<RegisterGateway>,
) -> Result<(StatusCode, axum::Json<GatewayView>)> {
    access.require(Action::ManageGateways(&ws, &env))?;
    let (gateway, credential) = prepare(&body.name)?;
    let records = access
        .tenant()
        .register_gateways(&ws, &env, &[gateway], state.now())
        .await?;
    let view = with_credentials(records, vec![credential])
        .pop()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("registration returned no gateway")))?;
    tracing::info!(org = %access.org.slug, gateway = %view.id, "gateway registered");
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
        let (gateway, credential) = prepare(&gateway.name).map_err(|error| match error {
            ApiError::BadRequest(message) => {
                ApiError::BadRequest(format!("gateways[{i}]: {message}"))
            }
            other => other,
        })?;
        batch.push(gateway);
        credentials.push(credential);
    }
    let records = access
        .tenant()
        .register_gateways(&ws, &env, &batch, state.now())
        .await?;
    tracing::info!(org = %access.org.slug, workspace = %ws, environment = %env, count = records.len(), "gateways registered");
    let gateways = with_credentials(records, credentials);
    Ok((
        StatusCode::CREATED,
        axum::Json(RegisteredGateways { gateways }),
    ))
}

async fn list_gateways(
    access: Access,
    Path((_, ws, env)): Path<(String, String, String)>,
    query: std::result::Result<Query<ListQuery>, QueryRejection>,
    page: PageRequest,
) -> Result<Paged<GatewayView>> {
    access.require(Action::ReadEnvironment(&ws, &env))?;
    let Query(query) =
        query.map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))?;
    let after: Option<(i64, String)> = page.after(ListRoute::Gateways)?;
    let after = after.as_ref().map(|(time, id)| (*time, id.as_str()));
    let rows = access
        .tenant()
        .gateways(&ws, &env, query.name.as_deref(), after, page.fetch())
        .await?;
    Ok(page
        .answer(ListRoute::Gateways, rows, |gw| {
            (gw.created_at, gw.id.clone())
        })
        .map())
}

async fn show_gateway(
    access: Access,
    Path((_, ws, env, id)): Path<(String, String, String, String)>,
) -> Result<axum::Json<GatewayView>> {
    access.require(Action::ReadEnvironment(&ws, &env))?;
    let record = access.tenant().gateway(&ws, &env, &id).await?;
    Ok(axum::Json(record.into()))
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
