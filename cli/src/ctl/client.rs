//! A small blocking client for the `mcpg-auth` management API: bearer authentication,
//! JSON in and out, and the service's `{"error":{"code","message"}}` turned into one line.

use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::Client as Http;
use serde_json::Value;
use thiserror::Error;

/// What went wrong talking to the server.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server answered with an error document.
    #[error("server said {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error code (`org_suspended`, `not_found`, …).
        code: String,
        /// The server's message.
        message: String,
    },
    /// No answer (connection refused, timeout, TLS).
    #[error("cannot reach {server}: {source}")]
    Unreachable {
        /// The server URL.
        server: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is not the JSON we expect.
    #[error("unexpected answer from the server ({status}): {detail}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
}

/// The management API of one server, with one token.
pub struct Client {
    http: Http,
    server: String,
    token: Option<String>,
}

impl Client {
    /// A client for `server` (e.g. `http://127.0.0.1:8421`).
    pub fn new(server: &str, token: Option<String>) -> Result<Self, ClientError> {
        let server = server.trim_end_matches('/').to_owned();
        let http = Http::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("mcpg-ctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Unreachable {
                server: server.clone(),
                source,
            })?;
        Ok(Self {
            http,
            server,
            token,
        })
    }

    /// Sends `method path` with an optional JSON body; returns the JSON answer (`null` for
    /// an empty one).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.server));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().map_err(|source| ClientError::Unreachable {
            server: self.server.clone(),
            source,
        })?;
        let status = response.status().as_u16();
        let text = response.text().map_err(|source| ClientError::Unreachable {
            server: self.server.clone(),
            source,
        })?;
        let json: Option<Value> = if text.trim().is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_str(&text).ok()
        };
        if (200..300).contains(&status) {
            return json.ok_or_else(|| ClientError::Unexpected {
                status,
                detail: "the body is not JSON".into(),
            });
        }
        let error = json.as_ref().and_then(|j| j.get("error"));
        match error {
            Some(error) => Err(ClientError::Api {
                status,
                code: error["code"].as_str().unwrap_or("unknown").to_owned(),
                message: error["message"].as_str().unwrap_or("").to_owned(),
            }),
            None => Err(ClientError::Unexpected {
                status,
                detail: text.chars().take(200).collect(),
            }),
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, path, None)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.call(Method::POST, path, Some(body))
    }

    /// `PUT path` with a JSON body.
    pub fn put(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.call(Method::PUT, path, Some(body))
    }

    /// `PATCH path` with a JSON body.
    pub fn patch(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.call(Method::PATCH, path, Some(body))
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::DELETE, path, None)
    }
}
