//! The operator console: server-rendered pages under `/console`, on the API's listener and
//! in the same binary. Nothing is fetched from elsewhere at run time: the stylesheet and
//! the one small script (the copy button) are compiled in and served from here, and every
//! page works without the script.
//!
//! - `session`: sign-in with an API token, the session cookie, sign-out, timeouts, and the
//!   CSRF check of every POST;
//! - `idp`: sign-in through the org's own identity provider (authorization code + PKCE);
//! - `tenant`: resolves the org of `/console/orgs/{org}/…` with the API's own
//!   [`crate::http::authorize`] code, so a page shows and does exactly what the API would
//!   let the same caller do;
//! - `view`: the page frame and shared pieces (maud: HTML is escaped by default);
//! - `orgs`, `overview`, `fleet`, `access`, `audit`, `keys`: the pages.
//!
//! Every response carries a strict Content-Security-Policy (no inline script or style),
//! `frame-ancestors 'none'`, `Referrer-Policy: no-referrer`, `X-Content-Type-Options:
//! nosniff` and, but for the static assets, `Cache-Control: no-store`.

mod access;
mod audit;
mod chart;
mod error;
mod extract;
mod fleet;
mod health;
mod idp;
mod keys;
mod orgs;
mod overview;
mod session;
mod tenant;
mod view;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::http::state::AppState;

pub(crate) use session::IDLE_TIMEOUT;

/// What the console keeps in memory: the overview charts' finished days.
pub(crate) struct ConsoleState {
    /// Tokens and active gateways of past days by (org id, `YYYY-MM-DD`). A past day
    /// changes only by a late usage flush, so an entry lives ten minutes; today is always
    /// read. Without it every overview would aggregate a month of per-gateway rows (300,000
    /// for 10,000 gateways).
    pub(crate) usage_days: moka::sync::Cache<(String, String), (i64, i64)>,
}

impl Default for ConsoleState {
    fn default() -> Self {
        Self {
            usage_days: moka::sync::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(std::time::Duration::from_secs(600))
                .build(),
        }
    }
}

/// An environment's page.
const ENV: &str = "/console/orgs/{org}/workspaces/{ws}/environments/{env}";

/// The Content-Security-Policy of every console response.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// The console's routes, with their session, tenant and header layers.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    let org_pages = Router::new()
        .route("/console/orgs/{org}", get(overview::overview))
        .route("/console/orgs/{org}/status", post(orgs::set_status))
        .route("/console/orgs/{org}/license", post(orgs::set_license))
        .route("/console/orgs/{org}/fleet", get(fleet::fleet))
        .route(
            "/console/orgs/{org}/workspaces",
            post(fleet::create_workspace),
        )
        .route(
            "/console/orgs/{org}/workspaces/{ws}/environments",
            post(fleet::create_environment),
        )
        .route(ENV, get(fleet::environment))
        .route(&format!("{ENV}/gateways"), post(fleet::register_gateway))
        .route(
            &format!("{ENV}/gateways/{{id}}/revoke"),
            post(fleet::revoke_gateway),
        )
        .route("/console/orgs/{org}/access", get(access::access_page))
        .route("/console/orgs/{org}/access/bindings", post(access::grant))
        .route(
            "/console/orgs/{org}/access/bindings/revoke",
            post(access::revoke_binding),
        )
        .route(
            "/console/orgs/{org}/access/tokens",
            post(access::issue_token),
        )
        .route(
            "/console/orgs/{org}/access/tokens/revoke",
            post(access::revoke_token),
        )
        .route("/console/orgs/{org}/audit", get(audit::audit))
        .route("/console/orgs/{org}/audit/verify", post(audit::verify))
        .route(
            "/console/orgs/{org}/audit/checkpoint",
            get(audit::latest_checkpoint),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            tenant::resolve,
        ));
    let signed_in = Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/orgs", get(orgs::list).post(orgs::create))
        .route("/console/keys", get(keys::keys))
        .route("/console/keys/rotate", post(keys::rotate))
        .route("/console/sign-out", post(session::sign_out))
        .merge(org_pages)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ));
    Router::new()
        .route(
            "/console/sign-in",
            get(session::sign_in_form).post(session::sign_in),
        )
        .route("/console/sign-in/idp", post(idp::start))
        .route("/console/oidc/callback", get(idp::callback))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/assets/console.js", get(script))
        // Anything else under the prefix is a page that does not exist, answered as a page.
        .route("/console/{*rest}", axum::routing::any(no_such_page))
        .merge(signed_in)
        .layer(axum::middleware::map_response(security_headers))
}

/// A path under `/console` that names no page: the API's `not_found`, as a page.
async fn no_such_page() -> error::ConsoleError {
    error::ConsoleError(crate::http::error::ApiError::NotFound("page"))
}

/// `/console`: the org list for a global admin, the own org's overview for anyone else.
async fn home(principal: crate::http::extract::Principal) -> Redirect {
    Redirect::to(&view::home_of(&principal))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// A compiled-in asset: cacheable for an hour (it changes only with the binary).
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The headers of every console response (an asset keeps its own `Cache-Control`).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
