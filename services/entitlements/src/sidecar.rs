//! The sidecar HTTP endpoint for gateways not written in Rust:
//! `GET /v1/check?plugin=…[&tenant=ORG/WS/ENV]`, `GET /v1/plugin-set[?tenant=…]`,
//! `GET /v1/limits/servers?count=N[&tenant=…]`, `GET /v1/status`, and the probes `/healthz`
//! and `/readyz` (the binary adds `GET /metrics`). docs/openapi-sidecar.yaml describes them
//! (the tests hold it to these routes and their answers); docs/GATEWAY.md shows them in use.
//!
//! Concurrent-request permits ([`crate::TenantHandle::try_begin_request`]) are not offered
//! over HTTP: a permit held by a remote caller would leak whenever it failed to release
//! it. Sidecar users read `max_concurrent_requests` from `/v1/status` (`limits`) and count
//! their requests in flight themselves.

use std::future::Future;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mcpg_license_core::PluginSetEntry;
use mcpg_runtime::ServeOptions;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::decision::Decision;
use crate::gateway::Gateway;
use crate::limits::LimitDecision;
use crate::tenant::{TenantKey, TenantKeyError};

/// The query of `/v1/check`.
#[derive(Debug, Deserialize)]
pub struct CheckQuery {
    /// The plugin id.
    pub plugin: Option<String>,
    /// The tenant (`ORG/WS/ENV`); the gateway's own when absent.
    pub tenant: Option<String>,
}

/// The answer of `/v1/check`.
#[derive(Debug, Serialize)]
pub struct CheckAnswer {
    /// The plugin asked about.
    pub plugin: String,
    /// The tenant asked about (absent: the gateway's own).
    pub tenant: Option<String>,
    /// The decision.
    #[serde(flatten)]
    pub decision: Decision,
    /// Why, in words.
    pub explanation: String,
    /// The plugin's config from the tenant's plugin set, when allowed and configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

/// The query of `/v1/plugin-set`.
#[derive(Debug, Deserialize)]
pub struct TenantQuery {
    /// The tenant (`ORG/WS/ENV`); the gateway's own when absent.
    pub tenant: Option<String>,
}

/// The answer of `/v1/plugin-set`.
#[derive(Debug, Serialize)]
pub struct PluginSetAnswer {
    /// The tenant asked about (absent: the gateway's own).
    pub tenant: Option<String>,
    /// The plugin set in force; `null` when the token names none (the entitlements alone
    /// decide).
    pub plugin_set: Option<EffectivePluginSet>,
}

/// A plugin set as the sidecar shows it.
#[derive(Debug, Serialize)]
pub struct EffectivePluginSet {
    /// The signed digest of the configs.
    pub digest: String,
    /// The plugin ids, sorted.
    pub ids: Vec<String>,
    /// Every plugin with its config (`null` when it has none); `null` while the configs
    /// are not available (they come with the next refresh).
    pub plugins: Option<Vec<PluginSetEntry>>,
}

/// The query of `/v1/limits/servers`.
#[derive(Debug, Deserialize)]
pub struct ServersQuery {
    /// How many MCP servers the gateway would run.
    pub count: Option<u64>,
    /// The tenant (`ORG/WS/ENV`); the gateway's own when absent.
    pub tenant: Option<String>,
}

/// The answer of `/v1/limits/servers`.
#[derive(Debug, Serialize)]
pub struct LimitAnswer {
    /// The tenant asked about (absent: the gateway's own).
    pub tenant: Option<String>,
    /// The decision.
    #[serde(flatten)]
    pub decision: LimitDecision,
}

/// The router of the sidecar.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/v1/check", get(check))
        .route("/v1/plugin-set", get(plugin_set))
        .route("/v1/limits/servers", get(servers))
        .route("/v1/status", get(status))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(gateway)
}

/// Liveness: the process answers.
async fn healthz() -> Json<Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: every federated credential has its first decision — a token (fetched, or
/// restored from the state directory), the federation's no, or a failed first attempt
/// (answered as Tier-0 until the federation is reached). Before that, a check would answer
/// "not federated" for a gateway that may well be licensed. Tier-0 and offline gateways
/// are ready at once. 503 until then, naming what is awaited.
async fn readyz(State(gateway): State<Gateway>) -> (StatusCode, Json<Value>) {
    let snapshot = gateway.snapshot();
    let waiting = snapshot
        .federation
        .iter()
        .filter(|f| f.tenant.is_none() && f.last_success.is_none() && f.last_error.is_none())
        .count();
    let status = match waiting {
        0 => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = serde_json::json!({
        "ready": waiting == 0,
        "awaiting_first_decision": waiting,
    });
    (status, Json(body))
}

/// How long a client has to send a request's headers (and how long an idle keep-alive
/// connection is kept). The sidecar's clients are local gateways asking small questions;
/// one that stalls mid-request is broken, not slow.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in progress.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// Serves `router` (see [`router`]) on `listener` until `shutdown` completes, with
/// `mcpg-runtime`'s server loop: unlike `axum::serve` it cuts off a client that does not
/// finish its headers within [`HEADER_READ_TIMEOUT`], so such a client can neither hold a
/// connection forever nor hold off shutdown beyond [`SHUTDOWN_DRAIN`].
pub async fn serve(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = ServeOptions {
        header_read_timeout: HEADER_READ_TIMEOUT,
        drain: SHUTDOWN_DRAIN,
    };
    mcpg_runtime::serve(listener, router, shutdown, options).await;
    Ok(())
}

fn bad_request(code: &str, message: String) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn check(
    State(gateway): State<Gateway>,
    query: Result<Query<CheckQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return bad_request(
            "invalid_query",
            "expected ?plugin=ID[&tenant=ORG/WS/ENV]".into(),
        );
    };
    let Some(plugin) = query.plugin.filter(|p| !p.is_empty()) else {
        return bad_request(
            "missing_plugin",
            "the plugin query parameter is required".into(),
        );
    };
    let tenant = match parse_tenant(query.tenant.as_deref()) {
        Ok(t) => t,
        Err(e) => return bad_request("invalid_tenant", e.to_string()),
    };
    Json(check_answer(&gateway, tenant.as_ref(), plugin)).into_response()
}

/// The answer to "may `plugin` load for `tenant`" (the gateway's own when `None`), as
/// `/v1/check` and `mcpg-entitlements check --json` give it.
pub fn check_answer(gateway: &Gateway, tenant: Option<&TenantKey>, plugin: String) -> CheckAnswer {
    let decision = match tenant {
        Some(key) => gateway.check(key, &plugin),
        None => gateway.check_default(&plugin),
    };
    let explanation = gateway.explain(tenant, &plugin);
    let config = decision
        .allowed
        .then(|| gateway.plugin_config(tenant, &plugin))
        .flatten()
        .map(|config| Value::clone(&config));
    CheckAnswer {
        plugin,
        tenant: tenant.map(ToString::to_string),
        decision,
        explanation,
        config,
    }
}

fn parse_tenant(tenant: Option<&str>) -> Result<Option<TenantKey>, TenantKeyError> {
    tenant.map(TenantKey::parse).transpose()
}

async fn plugin_set(
    State(gateway): State<Gateway>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return bad_request("invalid_query", "expected [?tenant=ORG/WS/ENV]".into());
    };
    let tenant = match parse_tenant(query.tenant.as_deref()) {
        Ok(t) => t,
        Err(e) => return bad_request("invalid_tenant", e.to_string()),
    };
    let set = gateway.handle_or_default(tenant.as_ref()).plugin_set();
    Json(PluginSetAnswer {
        tenant: tenant.map(|t| t.to_string()),
        plugin_set: set.map(|set| EffectivePluginSet {
            digest: set.digest().to_owned(),
            ids: set.ids().to_vec(),
            plugins: set.plugins(),
        }),
    })
    .into_response()
}

async fn servers(
    State(gateway): State<Gateway>,
    query: Result<Query<ServersQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return bad_request(
            "invalid_query",
            "expected ?count=N (a whole number)[&tenant=ORG/WS/ENV]".into(),
        );
    };
    let Some(count) = query.count else {
        return bad_request(
            "missing_count",
            "the count query parameter is required".into(),
        );
    };
    let tenant = match parse_tenant(query.tenant.as_deref()) {
        Ok(t) => t,
        Err(e) => return bad_request("invalid_tenant", e.to_string()),
    };
    let decision = gateway
        .handle_or_default(tenant.as_ref())
        .check_servers(count);
    Json(LimitAnswer {
        tenant: tenant.map(|t| t.to_string()),
        decision,
    })
    .into_response()
}

async fn status(State(gateway): State<Gateway>) -> Response {
    Json(gateway.snapshot()).into_response()
}
