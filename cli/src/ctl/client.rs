//! A small blocking client for the `mcpg-auth` management API: bearer authentication,
//! JSON in and out, and the service's `{"error":{"code","message"}}` turned into one line.

use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::Client as Http;
use serde_json::Value;
use thiserror::Error;

/// Items per page when a list is fetched whole (the server's largest page).
const PAGE_SIZE: u32 = 1_000;
/// The header with the next page's cursor of a list; absent on the last page.
const NEXT_CURSOR: &str = "x-next-cursor";

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
    #[error("cannot reach {server}: {reason}")]
    Unreachable {
        /// The server URL.
        server: String,
        /// Why, in words (one cause, not the transport error chain).
        reason: String,
    },
    /// `--server` is not an http(s) URL.
    #[error("{0}")]
    BadServer(String),
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
        let server = check_server(server)?;
        let http = Http::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("mcpg-ctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Unreachable {
                server: server.clone(),
                reason: transport_reason(&source),
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
        let (status, text, _) = self.send(method, path, body)?;
        json_answer(status, &text)
    }

    /// `GET path` of a list, page by page: follows the `x-next-cursor` header until the last
    /// page and returns every item as one JSON array.
    pub fn get_all(&self, path: &str) -> Result<Value, ClientError> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                None => format!("{path}{separator}limit={PAGE_SIZE}"),
                Some(c) => format!("{path}{separator}limit={PAGE_SIZE}&cursor={c}"),
            };
            let (status, text, next) = self.send(Method::GET, &url, None)?;
            match json_answer(status, &text)? {
                Value::Array(mut page) => items.append(&mut page),
                _ => {
                    return Err(ClientError::Unexpected {
                        status,
                        detail: "a list page is not a JSON array".into(),
                    });
                }
            }
            match next {
                Some(next) if cursor.as_deref() != Some(next.as_str()) => {
                    if !next
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
                    {
                        return Err(ClientError::Unexpected {
                            status,
                            detail: "the next-page cursor is not base64url".into(),
                        });
                    }
                    cursor = Some(next);
                }
                _ => return Ok(Value::Array(items)),
            }
        }
    }

    /// `GET path` of a document that is not one JSON value (NDJSON); returns its text.
    pub fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let (status, text, _) = self.send(Method::GET, path, None)?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let json: Option<Value> = serde_json::from_str(&text).ok();
        Err(refusal(status, &text, json.as_ref()))
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String, Option<String>), ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.server));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.exchange(request)
    }

    /// `POST path` with a YAML document as body.
    pub fn post_yaml(&self, path: &str, document: String) -> Result<Value, ClientError> {
        let request = self
            .http
            .post(format!("{}{path}", self.server))
            .header(reqwest::header::CONTENT_TYPE, "application/yaml")
            .body(document);
        let (status, text, _) = self.exchange(request)?;
        json_answer(status, &text)
    }

    /// `POST path` with a JSON document's bytes as they are (a usage bundle).
    pub fn post_json_bytes(&self, path: &str, document: Vec<u8>) -> Result<Value, ClientError> {
        let request = self
            .http
            .post(format!("{}{path}", self.server))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(document);
        let (status, text, _) = self.exchange(request)?;
        json_answer(status, &text)
    }

    /// `PUT path` with a plain-text body (a revocation list's PASETO text).
    pub fn put_text(&self, path: &str, text: String) -> Result<Value, ClientError> {
        let request = self
            .http
            .put(format!("{}{path}", self.server))
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(text);
        let (status, text, _) = self.exchange(request)?;
        json_answer(status, &text)
    }

    /// Sends a request with the token; returns the status, the body's text and the next
    /// page's cursor of a list.
    fn exchange(
        &self,
        mut request: reqwest::blocking::RequestBuilder,
    ) -> Result<(u16, String, Option<String>), ClientError> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().map_err(|source| ClientError::Unreachable {
            server: self.server.clone(),
            reason: transport_reason(&source),
        })?;
        let status = response.status().as_u16();
        let next = response
            .headers()
            .get(NEXT_CURSOR)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().map_err(|source| ClientError::Unreachable {
            server: self.server.clone(),
            reason: transport_reason(&source),
        })?;
        Ok((status, text, next))
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

/// The JSON answer of a success (`null` for an empty body), or the refusal.
fn json_answer(status: u16, text: &str) -> Result<Value, ClientError> {
    let json: Option<Value> = if text.trim().is_empty() {
        Some(Value::Null)
    } else {
        serde_json::from_str(text).ok()
    };
    if (200..300).contains(&status) {
        return json.ok_or_else(|| ClientError::Unexpected {
            status,
            detail: "the body is not JSON".into(),
        });
    }
    Err(refusal(status, text, json.as_ref()))
}

/// The error for a non-2xx answer: the server's error document, or the start of the body.
fn refusal(status: u16, text: &str, json: Option<&Value>) -> ClientError {
    match json.and_then(|j| j.get("error")) {
        Some(error) => ClientError::Api {
            status,
            code: error["code"].as_str().unwrap_or("unknown").to_owned(),
            message: error["message"].as_str().unwrap_or("").to_owned(),
        },
        None => ClientError::Unexpected {
            status,
            detail: one_line(text),
        },
    }
}

/// The start of a body that is not our error document (an HTML page from a proxy, say), as
/// one line: whitespace runs become one space, at most 120 characters.
fn one_line(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    match joined.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None if joined.is_empty() => "(empty body)".into(),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::{Client, ClientError, refusal};
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// Serves three canned list pages, the first two with a next cursor, one request per
    /// connection; returns the request lines it saw.
    fn serve_pages(listener: TcpListener) -> std::thread::JoinHandle<Vec<String>> {
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (body, next) in [("[1,2]", Some("c1")), ("[3]", Some("c-2_")), ("[]", None)] {
                let Ok((stream, _)) = listener.accept() else {
                    break;
                };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                seen.push(line.trim().to_owned());
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(n) if n > 2 => {}
                        _ => break,
                    }
                }
                let next = next.map_or(String::new(), |c| format!("x-next-cursor: {c}\r\n"));
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{next}\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = reader.get_mut().write_all(answer.as_bytes());
            }
            seen
        })
    }

    #[test]
    fn lists_are_fetched_whole_by_following_the_next_cursor() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let server = serve_pages(listener);
        let client = Client::new(&format!("http://{address}"), None).expect("client");
        let all = client.get_all("/v1/orgs").expect("every page");
        assert_eq!(all, serde_json::json!([1, 2, 3]));
        let seen = server.join().expect("server thread");
        assert_eq!(
            seen,
            [
                "GET /v1/orgs?limit=1000 HTTP/1.1",
                "GET /v1/orgs?limit=1000&cursor=c1 HTTP/1.1",
                "GET /v1/orgs?limit=1000&cursor=c-2_ HTTP/1.1",
            ]
        );
    }

    #[test]
    fn a_body_that_is_not_our_error_document_is_shown_on_one_short_line() {
        let page = format!(
            "<html>\n  <head><title>404 Not Found</title></head>\n<body>\r\n{}</body></html>\n",
            "x".repeat(500)
        );
        let shown = refusal(404, &page, None).to_string();
        assert!(!shown.contains('\n') && !shown.contains('\r'), "{shown}");
        assert!(
            shown.starts_with(
                "unexpected answer from the server (404): <html> <head><title>404 Not Found"
            ),
            "{shown}"
        );
        assert!(shown.chars().count() < 200, "{shown}");
        match refusal(502, "", None) {
            ClientError::Unexpected { detail, .. } => assert_eq!(detail, "(empty body)"),
            other => panic!("{other}"),
        }
    }
}

/// `--server` as the client uses it: an `http://` or `https://` URL with a host, without
/// the trailing slash. A bare `host:port` is the usual slip, so it is named.
fn check_server(server: &str) -> Result<String, ClientError> {
    let trimmed = server.trim().trim_end_matches('/');
    let Some(rest) = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
    else {
        let hint = match trimmed.split_once("://") {
            Some((scheme, _)) => format!("the scheme {scheme}:// is not http:// or https://"),
            None => {
                format!("it has no scheme; did you mean http://{trimmed} or https://{trimmed}?")
            }
        };
        return Err(ClientError::BadServer(format!(
            "--server {server:?} is not a URL mcpg-ctl can use: {hint}"
        )));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(ClientError::BadServer(format!(
            "--server {server:?} names no host (expected e.g. https://auth.example.com)"
        )));
    }
    Ok(trimmed.to_owned())
}

/// A transport failure in words: what happened, then the innermost cause once (reqwest's
/// own message repeats the URL and wraps the same cause several times).
pub(crate) fn transport_reason(error: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    let cause = innermost.to_string();
    if error.is_timeout() {
        return "no answer within 30 s (timed out)".to_owned();
    }
    if error.is_connect() {
        return format!("could not connect ({cause}); is mcpg-auth running and listening there?");
    }
    if error.is_builder() {
        return format!("the request could not be built ({cause})");
    }
    if error.is_body() || error.is_decode() {
        return format!("the answer was cut short ({cause})");
    }
    cause
}

#[cfg(test)]
mod server_tests {
    use super::*;

    #[test]
    fn a_server_without_a_scheme_is_explained() {
        let error = check_server("127.0.0.1:8421").expect_err("no scheme");
        let text = error.to_string();
        assert!(
            text.contains("did you mean http://127.0.0.1:8421"),
            "{text}"
        );
        assert!(
            check_server("ftp://x")
                .expect_err("ftp")
                .to_string()
                .contains("ftp://")
        );
        assert!(check_server("http://").is_err());
        assert_eq!(
            check_server("https://auth.example.com/").expect("valid"),
            "https://auth.example.com"
        );
    }
}
