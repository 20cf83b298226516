//! `mcpg-ctl gateway register … --count N`: a fleet registered in batches, its credentials
//! in one 0600 JSON-lines file; and `org set` for an org's routing name and settings.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use super::{Server, assert_one_error, stdout};

#[test]
fn a_fleet_is_registered_in_batches_and_every_credential_federates() {
    let server = Server::start();
    server
        .ctl(["org", "create", "acme", "--display-name", "Acme"])
        .success();
    server
        .ctl([
            "license",
            "set",
            "acme",
            "--tier",
            "team",
            "--limit",
            "max_gateways=1500",
        ])
        .success();
    server.ctl(["workspace", "create", "acme/main"]).success();
    server.ctl(["env", "create", "acme/main/prod"]).success();

    let out = server
        .ctl([
            "gateway",
            "register",
            "acme/main/prod",
            "edge",
            "--count",
            "1200",
            "--credentials-file",
            "fleet.jsonl",
        ])
        .success();
    assert!(
        stdout(&out).contains("registered 1200 gateways"),
        "{}",
        stdout(&out)
    );
    let file = server.dir().join("fleet.jsonl");
    let mode = std::fs::metadata(&file)
        .expect("written")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&file).expect("readable");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 1200);
    assert_eq!(lines[0]["name"], "edge-0001");
    assert_eq!(lines[1199]["name"], "edge-1200");
    for line in [&lines[0], &lines[999], &lines[1000], &lines[1199]] {
        let credential = line["credential"].as_str().expect("credential");
        assert_eq!(server.token_status(credential), 200, "{line}");
    }
    let listed = server.json(["gateway", "list", "acme/main/prod"]);
    assert_eq!(listed.as_array().expect("a list").len(), 1200);

    // Past the quota: the refused batch registers nothing and the error says what happened;
    // the existing file is never overwritten.
    assert_one_error(
        server.ctl([
            "gateway",
            "register",
            "acme/main/prod",
            "more",
            "--count",
            "301",
            "--credentials-file",
            "more.jsonl",
        ]),
        1,
        "quota_exceeded",
    );
    assert!(!server.dir().join("more.jsonl").exists());
    server
        .ctl([
            "gateway",
            "register",
            "acme/main/prod",
            "again",
            "--count",
            "1",
            "--credentials-file",
            "fleet.jsonl",
        ])
        .failure();
    let listed = server.json(["gateway", "list", "acme/main/prod"]);
    assert_eq!(listed.as_array().expect("a list").len(), 1200);
}

#[test]
fn org_set_changes_and_clears_an_orgs_settings() {
    let server = Server::start();
    server
        .ctl([
            "org",
            "create",
            "acme-corp",
            "--display-name",
            "Acme",
            "--routing-name",
            "acme",
        ])
        .success();
    let org = server.json(["org", "get", "acme-corp"]);
    assert_eq!(org["routing_name"], "acme");
    let org = server.json([
        "org",
        "set",
        "acme-corp",
        "--routing-name",
        "acme-eu",
        "--namespace",
        "mcpg-acme",
    ]);
    assert_eq!(org["routing_name"], "acme-eu");
    assert_eq!(org["namespace"], "mcpg-acme");
    let org = server.json(["org", "set", "acme-corp", "--unset", "routing-name"]);
    assert_eq!(org["routing_name"], Value::Null);
    assert_eq!(org["namespace"], "mcpg-acme");
    server.ctl(["org", "set", "acme-corp"]).code(2);
    server
        .ctl(["org", "create", "acme-eu", "--display-name", "Other"])
        .success();
    assert_one_error(
        server.ctl(["org", "set", "acme-corp", "--routing-name", "acme-eu"]),
        1,
        "conflict",
    );
}
