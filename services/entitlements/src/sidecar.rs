//! The sidecar HTTP endpoint for gateways not written in Rust:
//! `GET /v1/check?plugin=…[&tenant=ORG/WS/ENV]` and `GET /v1/status` (the binary adds
//! `GET /metrics`).

use std::future::Future;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mcpg_runtime::ServeOptions;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::decision::Decision;
use crate::gateway::Gateway;
use crate::tenant::TenantKey;

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
}

/// The router of the sidecar.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/v1/check", get(check))
        .route("/v1/status", get(status))
        .with_state(gateway)
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
    let tenant = match query.tenant.as_deref().map(TenantKey::parse).transpose() {
        Ok(t) => t,
        Err(e) => return bad_request("invalid_tenant", e.to_string()),
    };
    let decision = match &tenant {
        Some(key) => gateway.check(key, &plugin),
        None => gateway.check_default(&plugin),
    };
    let explanation = gateway.explain(tenant.as_ref(), &plugin);
    Json(CheckAnswer {
        plugin,
        tenant: tenant.map(|t| t.to_string()),
        decision,
        explanation,
    })
    .into_response()
}

async fn status(State(gateway): State<Gateway>) -> Response {
    Json(gateway.snapshot()).into_response()
}
