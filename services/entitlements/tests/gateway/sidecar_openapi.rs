//! docs/openapi-sidecar.yaml against the real sidecar: every route it serves is documented
//! and every documented route is served, and real answers match their documented schemas
//! (required fields, types, enums, and no field the document does not name).

use std::collections::BTreeSet;

use mcpg_license_core::{Limits, Tier};
use serde_json::Value;

use crate::binary::federated_config;
use crate::binary_plugin_sets::set;
use crate::sidecar_process::Sidecar;
use crate::standin::{Answer, StandIn};
use crate::support::temp_dir;

const DOCUMENT: &str = include_str!("../../../../docs/openapi-sidecar.yaml");
/// The sources that add routes: the sidecar's router and the binary's `/metrics`.
const ROUTE_SOURCES: [&str; 2] = [
    include_str!("../../src/sidecar.rs"),
    include_str!("../../src/bin/mcpg-entitlements.rs"),
];

fn document() -> Value {
    serde_norway::from_str(DOCUMENT).expect("docs/openapi-sidecar.yaml is YAML")
}

/// Every path passed to `.route(` in the sources.
fn served_paths() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for source in ROUTE_SOURCES {
        for (at, _) in source.match_indices(".route(") {
            let rest = &source[at + ".route(".len()..];
            let rest = rest.trim_start();
            if let Some(rest) = rest.strip_prefix('"')
                && let Some(end) = rest.find('"')
            {
                paths.insert(rest[..end].to_owned());
            }
        }
    }
    paths
}

/// Errors of `value` against `schema` (resolving `$ref` in `doc`), each with its JSON path.
fn violations(value: &Value, schema: &Value, doc: &Value, at: &str) -> Vec<String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let pointer = reference.trim_start_matches('#');
        let target = doc.pointer(pointer).unwrap_or(&Value::Null);
        assert!(!target.is_null(), "dangling {reference}");
        return violations(value, target, doc, at);
    }
    if let Some(branches) = schema["oneOf"].as_array() {
        let fits = branches
            .iter()
            .filter(|b| violations(value, b, doc, at).is_empty())
            .count();
        return match fits {
            1 => Vec::new(),
            n => vec![format!("{at}: {n} of oneOf fit {value}")],
        };
    }
    let mut errors = Vec::new();
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let is = |t: &str| match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    };
    if !types.is_empty() && !types.iter().any(|t| is(t)) {
        errors.push(format!("{at}: {value} is not {types:?}"));
        return errors;
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        errors.push(format!("{at}: {value} not in {options:?}"));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        errors.push(format!("{at}: {value} is not {constant}"));
    }
    if let Some(object) = value.as_object() {
        let properties = schema["properties"].as_object();
        for required in schema["required"].as_array().into_iter().flatten() {
            let key = required.as_str().unwrap_or_default();
            if !object.contains_key(key) {
                errors.push(format!("{at}: missing required {key}"));
            }
        }
        if let Some(properties) = properties {
            for (key, field) in object {
                match properties.get(key) {
                    Some(sub) => errors.extend(violations(field, sub, doc, &format!("{at}.{key}"))),
                    None => errors.push(format!("{at}: {key} is not documented")),
                }
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            errors.extend(violations(item, items, doc, &format!("{at}[{i}]")));
        }
    }
    errors
}

/// The schema of `path`'s `status` answer in `media` type.
fn response_schema<'a>(doc: &'a Value, path: &str, status: u16, media: &str) -> &'a Value {
    let mut response = &doc["paths"][path]["get"]["responses"][status.to_string()];
    if let Some(reference) = response["$ref"].as_str() {
        response = doc
            .pointer(reference.trim_start_matches('#'))
            .expect("response ref");
    }
    let schema = &response["content"][media]["schema"];
    assert!(
        !schema.is_null(),
        "{path} {status} {media} is not documented"
    );
    schema
}

#[test]
fn every_served_route_is_documented_and_every_documented_route_is_served() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    let served = served_paths();
    assert!(
        served.contains("/v1/check") && served.contains("/metrics"),
        "{served:?}"
    );
    assert_eq!(served, documented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_of_every_route_match_the_documented_schemas() {
    let server = StandIn::start(Answer::TokenWithSet {
        org: "acme".into(),
        tier: Tier::Team,
        set: set(),
        limits: Limits {
            max_servers: Some(5),
            ..Limits::default()
        },
    })
    .await;
    let dir = temp_dir();
    let config = federated_config(dir.path(), &server);
    let sidecar = Sidecar::start(&config, &[], &[]);
    sidecar.ready().await;
    let doc = document();
    let http = reqwest::Client::new();
    let cases: [(&str, &str, u16); 12] = [
        ("/v1/check", "?plugin=identity.oidc", 200),
        (
            "/v1/check",
            "?plugin=policy.cedar&tenant=acme/platform/prod",
            200,
        ),
        ("/v1/check", "?plugin=workspace.rbac&tenant=globex/a/b", 200),
        ("/v1/check", "", 400),
        ("/v1/check", "?plugin=x&tenant=not%20a%20tenant", 400),
        ("/v1/plugin-set", "", 200),
        ("/v1/plugin-set", "?tenant=globex/a/b", 200),
        ("/v1/limits/servers", "?count=9", 200),
        ("/v1/limits/servers", "?count=many", 400),
        ("/v1/status", "", 200),
        ("/healthz", "", 200),
        ("/readyz", "", 200),
    ];
    let mut seen = BTreeSet::new();
    for (path, query, status) in cases {
        let response = http
            .get(sidecar.url(&format!("{path}{query}")))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), status, "{path}{query}");
        let body: Value = response.json().await.expect("JSON");
        let schema = response_schema(&doc, path, status, "application/json");
        let errors = violations(&body, schema, &doc, path);
        assert!(errors.is_empty(), "{path}{query}: {errors:#?}\n{body:#}");
        seen.insert(path);
    }
    // The allowed check carries its config, as documented.
    let allowed: Value = http
        .get(sidecar.url("/v1/check?plugin=identity.oidc"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(allowed["config"]["issuer"], "https://idp.test", "{allowed}");
    let metrics = http
        .get(sidecar.url("/metrics"))
        .send()
        .await
        .expect("answer");
    assert_eq!(metrics.status(), 200);
    response_schema(&doc, "/metrics", 200, "text/plain");
    assert!(metrics.text().await.expect("text").contains("# HELP"));
    seen.insert("/metrics");
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(seen, documented, "a documented route was not exercised");
}

#[test]
fn the_schema_check_catches_a_missing_field_an_undocumented_one_and_a_wrong_enum() {
    let doc = document();
    let schema = &doc["components"]["schemas"]["CheckAnswer"];
    let good = serde_json::json!({
        "plugin": "p", "tenant": null, "allowed": true, "reason": "allowed",
        "state": "active", "tier": "team", "explanation": "because"
    });
    assert!(violations(&good, schema, &doc, "$").is_empty());
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("reason");
    assert_eq!(violations(&missing, schema, &doc, "$").len(), 1);
    let mut extra = good.clone();
    extra["surprise"] = 1.into();
    assert_eq!(violations(&extra, schema, &doc, "$").len(), 1);
    let mut wrong = good;
    wrong["reason"] = "maybe".into();
    assert_eq!(violations(&wrong, schema, &doc, "$").len(), 1);
}
