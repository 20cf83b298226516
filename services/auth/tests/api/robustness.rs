//! Hostile input: malformed, oversized and mistyped bodies and headers get 4xx JSON errors;
//! random bodies at every write route never break the server.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, spawn_app, split};

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = app.admin(method, path).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    split(request.send().await.expect("sent")).await
}

#[tokio::test]
async fn malformed_oversized_and_mistyped_bodies_get_json_errors() {
    let app = spawn_app(Backend::Sqlite).await;
    let json_type = Some("application/json");
    let cases: Vec<(Option<&str>, Vec<u8>, StatusCode, &str)> = vec![
        (
            None,
            b"{\"slug\":\"a\",\"display_name\":\"A\"}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            json_type,
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json_type,
            b"{\"slug\": 5, \"display_name\": \"A\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json_type,
            b"{\"slug\": \"Bad Slug\", \"display_name\": \"A\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json_type,
            b"{\"slug\": \"ok\", \"display_name\": \"A\", \"extra\": 1}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json_type,
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        // serde would fill the struct from an array of its fields in order.
        (
            json_type,
            b"[\"x3\", \"X\"]".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Some("application/merge-patch+json; charset=utf-8"),
            b"\"x3\"".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Some("text/json"),
            b"{\"slug\":\"x3\",\"display_name\":\"A\"}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            json_type,
            vec![b' '; 100 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            json_type,
            vec![0xff, 0xfe, 0x00],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let (got, answer) = raw(&app, Method::POST, "/v1/orgs", content_type, body).await;
        assert_eq!(got, status, "{answer}");
        assert_error(&answer, code);
    }
    let (status, _) = app.send(Method::GET, "/v1/orgs/x3", None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused body created an org"
    );
    app.create_org("acme").await;
    for license in [
        json!({"tier": "platinum"}),
        json!({"tier": "team", "limits": {"max_cats": 1}}),
        json!({"tier": "team", "limits": {"max_gateways": -1}}),
        json!({"tier": "team", "entitlements_add": ["nonsense"]}),
        json!({"tier": "team", "valid_until": "tomorrow"}),
        json!({"tier": "team", "valid_for_days": 0}),
        json!({"tier": "team", "valid_until": "2030-01-01T00:00:00Z", "valid_for_days": 3}),
    ] {
        let (status, body) = app
            .send(Method::PUT, "/v1/orgs/acme/license", Some(license.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{license} → {body}");
        assert_error(&body, "invalid_request");
    }
    let credential = app.gateway("globex").await;
    let token = |body: Vec<u8>| {
        app.client
            .post(format!("{}/v1/federation/token", app.address))
            .bearer_auth(&credential)
            .body(body)
            .send()
    };
    assert_eq!(
        token(b"{}".to_vec()).await.expect("sent").status(),
        StatusCode::OK
    );
    assert_eq!(
        token(b"{\"instance\":\"pod-1\"}".to_vec())
            .await
            .expect("sent")
            .status(),
        StatusCode::OK
    );
    for refused in [
        &b"<xml/>"[..],
        b"[\"pod-1\"]",
        b"\"pod-1\"",
        b"{\"instance\": 5}",
    ] {
        let (status, body) = split(token(refused.to_vec()).await.expect("sent")).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(refused)
        );
        assert_error(&body, "invalid_request");
    }
    let (status, body) = split(token(vec![b'{'; 200 * 1024]).await.expect("sent")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "payload_too_large");
    let (status, body) = split(
        app.admin(Method::PUT, "/v1/orgs")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    assert!(body["error"]["code"].is_string());
}

/// A small deterministic generator: the test needs variety, not cryptographic quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn word(&mut self) -> String {
        const WORDS: [&str; 16] = [
            "slug",
            "display_name",
            "tier",
            "team",
            "name",
            "limits",
            "valid_for_days",
            "status",
            "entitlements_add",
            "org",
            "instance",
            "suspended",
            "max_gateways",
            "a-b",
            "",
            "\u{0}é",
        ];
        WORDS[self.below(WORDS.len() as u64) as usize].to_owned()
    }
    fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth > 3 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => json!(self.next() as i64),
            3 => json!(f64::from(self.below(1000) as u32) / 7.0),
            4 => json!(self.word()),
            5 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
            _ => Value::Object(
                (0..self.below(5))
                    .map(|_| (self.word(), self.value(depth + 1)))
                    .collect(),
            ),
        }
    }
    fn body(&mut self) -> Vec<u8> {
        match self.below(4) {
            0 => (0..self.below(64)).map(|_| self.next() as u8).collect(),
            1 => {
                let mut text = self.value(0).to_string().into_bytes();
                let cut = self.below(text.len() as u64 + 1) as usize;
                text.truncate(cut);
                text
            }
            _ => self.value(0).to_string().into_bytes(),
        }
    }
}

/// Random bodies sent to each write route.
const BODIES_PER_ROUTE: usize = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bodies_at_every_post_route_never_crash_the_server() {
    let app = spawn_app(Backend::Sqlite).await;
    let credential = app.gateway("acme").await;
    let routes = [
        (Method::POST, "/v1/orgs"),
        (Method::PATCH, "/v1/orgs/acme"),
        (Method::PUT, "/v1/orgs/acme/license"),
        (Method::POST, "/v1/orgs/acme/license/revoke"),
        (Method::POST, "/v1/orgs/acme/workspaces"),
        (Method::POST, "/v1/orgs/acme/workspaces/main/environments"),
        (
            Method::POST,
            "/v1/orgs/acme/workspaces/main/environments/prod/gateways",
        ),
        (Method::POST, "/v1/admin/tokens"),
        (Method::POST, "/v1/admin/impersonations"),
        (Method::POST, "/v1/orgs/acme/users/alice@acme.com/tokens"),
        (Method::POST, "/v1/orgs/acme/rbac/bindings"),
        (Method::POST, "/v1/federation/token"),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut sent = 0;
    for _ in 0..BODIES_PER_ROUTE {
        for (method, path) in &routes {
            let body = rng.body();
            let mut request = app
                .client
                .request(method.clone(), format!("{}{path}", app.address))
                .body(body);
            request = if *path == "/v1/federation/token" {
                request.bearer_auth(&credential)
            } else {
                request.bearer_auth(&app.admin_token)
            };
            if rng.below(4) != 0 {
                request = request.header("content-type", "application/json");
            }
            let (status, answer) = split(request.send().await.expect("server answers")).await;
            assert!(
                !status.is_server_error(),
                "{method} {path} → {status} {answer}"
            );
            if status.is_client_error() {
                assert!(
                    answer["error"]["code"].is_string(),
                    "{method} {path} → {status} without JSON error"
                );
            }
            sent += 1;
        }
    }
    assert_eq!(sent, BODIES_PER_ROUTE * routes.len());
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("alive");
    assert_eq!(health.status(), StatusCode::OK);
}
