//! A tiny stand-in for `mcpg-auth`'s token endpoint and revocation list on 127.0.0.1:0,
//! per the contract.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mcpg_license_core::{Clock, Limits, PluginSet, SystemClock, Tier};

use crate::support::{Authority, claims, served};

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Answer {
    Token {
        org: String,
        tier: Tier,
    },
    Error {
        status: u16,
        code: &'static str,
        retry_after: Option<u64>,
    },
    /// A 200 whose body is this many bytes of JSON whitespace.
    Oversized(usize),
    /// A token naming `set` (`ps`) and carrying `limits`, with the set's configs beside it.
    TokenWithSet {
        org: String,
        tier: Tier,
        set: PluginSet,
        limits: Limits,
    },
}

#[derive(Clone)]
struct Shared {
    authority: Arc<Authority>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    fallback: Answer,
    hits: Arc<AtomicUsize>,
    bearers: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    revocations: Arc<Mutex<(u16, String)>>,
}

/// The running stand-in.
pub struct StandIn {
    pub addr: SocketAddr,
    pub authority: Arc<Authority>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    hits: Arc<AtomicUsize>,
    bearers: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    revocations: Arc<Mutex<(u16, String)>>,
}

impl StandIn {
    /// Starts on an ephemeral loopback port; answers `fallback` once the script is used up.
    pub async fn start(fallback: Answer) -> Self {
        let authority = Arc::new(Authority::new_now());
        let shared = Shared {
            authority: authority.clone(),
            script: Arc::default(),
            fallback,
            hits: Arc::default(),
            bearers: Arc::default(),
            bodies: Arc::default(),
            revocations: Arc::new(Mutex::new((404, String::new()))),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route("/v1/federation/token", post(token))
            .route("/.well-known/mcpg-revocations", get(revocations))
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            authority,
            script: shared.script,
            hits: shared.hits,
            bearers: shared.bearers,
            bodies: shared.bodies,
            revocations: shared.revocations,
        }
    }

    /// What `GET /.well-known/mcpg-revocations` answers from now on.
    pub fn publish(&self, status: u16, body: String) {
        *self.revocations.lock().expect("lock") = (status, body);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn then(&self, answer: Answer) {
        self.script.lock().expect("lock").push_back(answer);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn bearers(&self) -> Vec<String> {
        self.bearers.lock().expect("lock").clone()
    }

    /// The JSON bodies of the token requests, in order (`null` for a non-JSON body).
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().expect("lock").clone()
    }
}

async fn revocations(State(shared): State<Shared>) -> Response {
    let (status, body) = shared.revocations.lock().expect("lock").clone();
    (StatusCode::from_u16(status).expect("status"), body).into_response()
}

async fn token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    shared
        .bodies
        .lock()
        .expect("lock")
        .push(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        shared.bearers.lock().expect("lock").push(v.to_owned());
    }
    let answer = shared
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(shared.fallback.clone());
    match answer {
        Answer::Token { org, tier } => {
            let minted = shared
                .authority
                .mint(&claims(&org, tier, SystemClock.now()));
            Json(serde_json::json!({
                "token": minted.token,
                "token_type": "mcpg-ent+jwt",
                "issuer_certificate": minted.issuer_certificate,
            }))
            .into_response()
        }
        Answer::TokenWithSet {
            org,
            tier,
            set,
            limits,
        } => {
            let mut claims = claims(&org, tier, SystemClock.now());
            claims.ps = Some(set.claim());
            claims.lim = limits;
            let minted = shared.authority.mint(&claims);
            Json(serde_json::json!({
                "token": minted.token,
                "token_type": "mcpg-ent+jwt",
                "issuer_certificate": minted.issuer_certificate,
                "plugin_set": served(&set),
            }))
            .into_response()
        }
        Answer::Oversized(len) => {
            ([("content-type", "application/json")], " ".repeat(len)).into_response()
        }
        Answer::Error {
            status,
            code,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).expect("status");
            let body = Json(serde_json::json!({"error": {"code": code, "message": "scripted"}}));
            let mut response = (status, body).into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert("retry-after", seconds.into());
            }
            response
        }
    }
}
