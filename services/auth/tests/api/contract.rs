//! The OpenAPI document and the server agree: every status a route can answer is
//! documented, `null` is refused where the schema does not allow it, and integers written
//! as `6.0` (integers in JSON Schema) are accepted where the schema says integer.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, assert_error, on_both_backends, spawn_app};

on_both_backends!(null_is_refused_and_integral_numbers_are_integers);

async fn null_is_refused_and_integral_numbers_are_integers(backend: Backend) {
    let app = spawn_app(backend).await;
    app.gateway("acme").await;
    let refused = [
        (
            Method::POST,
            "/v1/orgs/acme/users/a@acme.test/tokens",
            json!({"name": null}),
        ),
        (
            Method::POST,
            "/v1/orgs",
            json!({"slug": "n1", "display_name": "N", "status": null}),
        ),
        (
            Method::PATCH,
            "/v1/orgs/acme",
            json!({"display_name": null}),
        ),
        (Method::PATCH, "/v1/orgs/acme", json!({"status": null})),
        (
            Method::PUT,
            "/v1/orgs/acme/license",
            json!({"tier": "team", "valid_for_days": null}),
        ),
        (
            Method::POST,
            "/v1/admin/tokens",
            json!({"name": "k", "org": null}),
        ),
        (
            Method::POST,
            "/v1/admin/impersonations",
            json!({"org": "acme", "minutes": 6.5, "reason": "r"}),
        ),
        (
            Method::PUT,
            "/v1/orgs/acme/license",
            json!({"tier": "team", "valid_for_days": 30.5}),
        ),
    ];
    for (method, path, body) in refused {
        let (status, answer) = app.send(method, path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body} → {answer}");
        assert_error(&answer, "invalid_request");
    }
    let accepted = [
        (
            Method::POST,
            "/v1/admin/impersonations",
            json!({"org": "acme", "minutes": 6.0, "reason": "r"}),
            StatusCode::CREATED,
        ),
        (
            Method::PUT,
            "/v1/orgs/acme/license",
            json!({"tier": "team", "valid_for_days": 30.0, "limits": {"max_gateways": 5.0}}),
            StatusCode::OK,
        ),
        (
            Method::PATCH,
            "/v1/orgs/acme",
            json!({"trial_expires_at": null}),
            StatusCode::OK,
        ),
    ];
    for (method, path, body, expected) in accepted {
        let (status, answer) = app.send(method, path, Some(body.clone())).await;
        assert_eq!(status, expected, "{path} {body} → {answer}");
    }
    let (_, license) = app.send(Method::GET, "/v1/orgs/acme/license", None).await;
    assert_eq!(license["limits"]["max_gateways"], 5, "{license}");
}

#[tokio::test]
async fn every_route_documents_the_statuses_it_can_answer() {
    let app = spawn_app(Backend::Sqlite).await;
    let text = app
        .client
        .get(format!("{}/openapi.yaml", app.address))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let document: Value = serde_norway::from_str(&text).expect("the document is YAML");
    let paths = document["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let responses = operation["responses"].as_object().expect("responses");
            let public = operation.get("security") == Some(&json!([]));
            let json_body = operation["requestBody"]["content"]["application/json"].is_object();
            let management = path.starts_with("/v1/") && path != "/v1/federation/token";
            let mut expected = vec!["503"];
            if !public {
                expected.push("401");
            }
            if management {
                expected.extend(["403", "429"]);
            }
            if path.contains('{') {
                expected.push("404");
            }
            if json_body {
                expected.extend(["400", "413"]);
                if management {
                    expected.push("415");
                }
            }
            let query = operation["parameters"].as_array().is_some_and(|ps| {
                ps.iter().any(|p| {
                    p["in"] == "query"
                        || p.get("$ref").is_some_and(|r| {
                            r.as_str().is_some_and(|r| {
                                r.ends_with("/limit")
                                    || r.ends_with("/cursor")
                                    || r.ends_with("/cascade")
                            })
                        })
                })
            });
            if query {
                expected.push("400");
            }
            for status in expected {
                if !responses.contains_key(status) {
                    missing.push(format!("{} {path}: {status}", method.to_uppercase()));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented statuses:\n{}",
        missing.join("\n")
    );
}
