//! docs/GATEWAY.md is tested: its curl examples run against a real sidecar and answer what
//! the document shows, and it names every decision reason.

use std::process::Command;

use mcpg_entitlements::Reason;
use mcpg_license_core::{Limits, Tier};
use serde_json::Value;

use crate::binary::federated_config;
use crate::binary_plugin_sets::set;
use crate::sidecar_process::Sidecar;
use crate::standin::{Answer, StandIn};
use crate::support::temp_dir;

const GUIDE: &str = include_str!("../../../../docs/GATEWAY.md");
const DECISION_SOURCE: &str = include_str!("../../src/decision.rs");
/// The port the examples are written for; the test substitutes the sidecar's.
const DOCUMENTED_PORT: &str = "127.0.0.1:8431";

/// A `sh` block marked `# sidecar-example: NAME`, and the block after it (its output).
struct Example {
    name: String,
    script: String,
    output_kind: String,
    output: String,
}

/// Fenced blocks as (info string, body), in order.
fn fenced_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in markdown.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

fn examples() -> Vec<Example> {
    let blocks = fenced_blocks(GUIDE);
    let mut examples = Vec::new();
    for (i, (info, body)) in blocks.iter().enumerate() {
        let Some(name) = body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# sidecar-example: "))
        else {
            continue;
        };
        assert_eq!(info, "sh", "example {name} is not a sh block");
        let (output_kind, output) = blocks
            .get(i + 1)
            .cloned()
            .unwrap_or_else(|| panic!("example {name} has no output block after it"));
        examples.push(Example {
            name: name.trim().to_owned(),
            script: body.clone(),
            output_kind,
            output,
        });
    }
    examples
}

/// Whether every field of `documented` is in `real` with the same value (arrays: same
/// length, element by element).
fn is_part_of(documented: &Value, real: &Value) -> bool {
    match (documented, real) {
        (Value::Object(d), Value::Object(r)) => d
            .iter()
            .all(|(k, v)| r.get(k).is_some_and(|rv| is_part_of(v, rv))),
        (Value::Array(d), Value::Array(r)) => {
            d.len() == r.len() && d.iter().zip(r).all(|(d, r)| is_part_of(d, r))
        }
        (d, r) => d == r,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curl_examples_of_gateway_md_answer_what_the_guide_shows() {
    let examples = examples();
    let names: Vec<&str> = examples.iter().map(|e| e.name.as_str()).collect();
    for route in [
        "check",
        "plugin-set",
        "limits",
        "status",
        "healthz",
        "readyz",
        "metrics",
    ] {
        assert!(names.contains(&route), "no example for {route}: {names:?}");
    }
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
    for example in &examples {
        let script = example.script.replace(DOCUMENTED_PORT, &sidecar.addr);
        assert_ne!(
            script, example.script,
            "{}: no {DOCUMENTED_PORT}",
            example.name
        );
        let out = Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {:?}\n{stdout}\n{}",
            example.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        match example.output_kind.as_str() {
            "json" => {
                let documented: Value = serde_json::from_str(&example.output)
                    .unwrap_or_else(|e| panic!("{}: documented JSON: {e}", example.name));
                let real: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
                    panic!("{}: answer is not JSON ({e}): {stdout}", example.name)
                });
                assert!(
                    is_part_of(&documented, &real),
                    "{}: the guide shows\n{documented:#}\nbut the sidecar answered\n{real:#}",
                    example.name
                );
            }
            "text" => {
                for line in example.output.lines() {
                    assert!(
                        stdout.lines().any(|l| l == line),
                        "{}: {line:?} not in\n{stdout}",
                        example.name
                    );
                }
            }
            other => panic!("{}: output block of kind {other:?}", example.name),
        }
    }
}

#[test]
fn the_part_of_check_tells_a_matching_answer_from_a_different_one() {
    let real = serde_json::json!({"a": 1, "b": [1, {"c": 2, "d": 3}], "e": null});
    assert!(is_part_of(&serde_json::json!({"b": [1, {"c": 2}]}), &real));
    assert!(!is_part_of(&serde_json::json!({"a": 2}), &real));
    assert!(!is_part_of(&serde_json::json!({"b": [1]}), &real));
    assert!(!is_part_of(&serde_json::json!({"f": null}), &real));
}

/// The variants of `pub enum Reason` as written in src/decision.rs.
fn reason_variants_in_source() -> Vec<String> {
    let start = DECISION_SOURCE
        .find("pub enum Reason {")
        .expect("enum Reason");
    let body = &DECISION_SOURCE[start..];
    let body = &body[..body.find("\n}").expect("end of enum")];
    body.lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && !l.starts_with('#') && l.ends_with(','))
        .map(|l| l.trim_end_matches(',').to_owned())
        .collect()
}

#[test]
fn gateway_md_says_what_to_do_for_every_decision_reason() {
    let declared = reason_variants_in_source();
    let listed: Vec<String> = Reason::ALL.iter().map(|r| format!("{r:?}")).collect();
    assert_eq!(declared, listed, "Reason::ALL misses a variant");
    let table: Vec<&str> = GUIDE
        .lines()
        .skip_while(|l| *l != "## Decision reasons")
        .take_while(|l| !l.starts_with("## Reading"))
        .filter(|l| l.starts_with("| `") && !l.starts_with("| `reason` |"))
        .collect();
    for reason in Reason::ALL {
        let row = format!("| `{}` |", reason.as_str());
        assert!(
            table.iter().any(|l| l.starts_with(&row)),
            "GATEWAY.md's reasons table has no row for {reason}"
        );
    }
    assert_eq!(table.len(), Reason::ALL.len(), "{table:#?}");
    // The OpenAPI document lists the same codes.
    let openapi: Value =
        serde_norway::from_str(include_str!("../../../../docs/openapi-sidecar.yaml"))
            .expect("YAML");
    let codes: Vec<&str> = openapi["components"]["schemas"]["Reason"]["enum"]
        .as_array()
        .expect("Reason enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let expected: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(codes, expected);
}
