//! `mcpg-ctl` against a real `mcpg-auth` process on an ephemeral port: the operator's whole
//! journey, and the failure exits.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use super::{Server, assert_one_error, stdout};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("file exists")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn an_operator_sets_up_a_tenant_and_its_gateway_federates() {
    let server = Server::start();
    let created = server.ctl(["org", "create", "acme-corp", "--display-name", "Acme, Inc."]);
    assert!(stdout(&created.success()).contains("acme-corp"));
    let table = stdout(&server.ctl(["org", "list"]).success());
    assert!(table.starts_with("SLUG"), "a table with headings: {table}");
    assert!(table.contains("Acme, Inc.") && table.contains("active"));

    let license = server.json([
        "license",
        "set",
        "acme-corp",
        "--tier",
        "team",
        "--entitlement",
        "plugin:policy.cedar",
        "--without",
        "plugin:observability.audit",
        "--limit",
        "max_gateways=5",
        "--valid-for",
        "30d",
    ]);
    assert_eq!(license["tier"], "team");
    let entitlements: Vec<&str> = license["entitlements"]
        .as_array()
        .expect("entitlements")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(entitlements.contains(&"plugin:policy.cedar"));
    assert!(entitlements.contains(&"feature:workspace.rbac"));
    assert!(!entitlements.contains(&"plugin:observability.audit"));
    assert_eq!(license["limits"]["max_gateways"], 5);
    assert!(stdout(&server.ctl(["license", "show", "acme-corp"]).success()).contains("team"));

    server
        .ctl(["workspace", "create", "acme-corp/platform-team"])
        .success();
    server
        .ctl(["env", "create", "acme-corp/platform-team/prod"])
        .success();
    let envs = server.json(["env", "list", "acme-corp/platform-team"]);
    assert_eq!(envs[0]["slug"], "prod");

    server
        .ctl([
            "gateway",
            "register",
            "acme-corp/platform-team/prod",
            "edge-1",
            "--credential-file",
            "edge-1.credential",
        ])
        .success();
    let file = server.dir().join("edge-1.credential");
    assert_eq!(mode(&file), 0o600);
    let credential = std::fs::read_to_string(&file).expect("credential written");
    let credential = credential.trim();
    assert!(credential.starts_with("mcpg_gw_"));
    assert_eq!(server.token_status(credential), 200);

    let gateways = server.json(["gateway", "list", "acme-corp/platform-team/prod"]);
    let id = gateways[0]["id"].as_str().expect("gateway id").to_owned();
    assert_eq!(gateways[0]["name"], "edge-1");
    assert!(
        !gateways.to_string().contains(credential),
        "a listing never shows the credential"
    );

    server.ctl(["org", "suspend", "acme-corp"]).success();
    assert_eq!(server.token_status(credential), 403);
    server.ctl(["org", "resume", "acme-corp"]).success();
    assert_eq!(server.token_status(credential), 200);
    server.ctl(["license", "revoke", "acme-corp"]).success();
    assert_eq!(server.token_status(credential), 403);

    server
        .ctl(["gateway", "revoke", "acme-corp/platform-team/prod", &id])
        .success();
    assert_eq!(server.token_status(credential), 401);

    server
        .ctl(["org", "delete", "acme-corp", "--cascade", "--yes"])
        .success();
    assert_one_error(server.ctl(["org", "get", "acme-corp"]), 1, "not_found");
}

#[test]
fn keys_can_be_listed_and_rotated() {
    let server = Server::start();
    let before = server.json(["keys", "list"]);
    assert_eq!(before.as_array().map(Vec::len), Some(1));
    assert_eq!(before[0]["state"], "active");
    let rotated = server.json(["keys", "rotate"]);
    assert_eq!(rotated["state"], "pending");
    let after = stdout(&server.ctl(["keys", "list"]).success());
    assert!(
        after.contains("pending") && after.contains("active"),
        "{after}"
    );
}

#[test]
fn refusals_and_outages_are_one_error_line_with_exit_1() {
    let server = Server::start();
    assert_one_error(server.ctl(["org", "get", "no-such-org"]), 1, "not_found");
    assert_one_error(
        server
            .command("mcpg_pat_not-a-real-token")
            .args(["org", "list"])
            .assert(),
        1,
        "401",
    );
    assert_one_error(
        super::ctl()
            .env("MCPG_SERVER", "http://127.0.0.1:9")
            .env("MCPG_TOKEN", &server.token)
            .args(["org", "list"])
            .assert(),
        1,
        "cannot reach",
    );
    server
        .ctl(["org", "create", "acme-corp", "--display-name", "Acme"])
        .success();
    assert_one_error(
        server.ctl(["org", "create", "acme-corp", "--display-name", "Acme again"]),
        1,
        "conflict",
    );
}

#[test]
fn bad_local_input_is_a_usage_error_with_exit_2() {
    let server = Server::start();
    assert_one_error(
        server.ctl(["env", "create", "acme-corp/prod"]),
        2,
        "ORG/WS/ENV",
    );
    assert_one_error(
        server.ctl(["workspace", "create", "acme/../../admin"]),
        2,
        "must look like",
    );
    assert_one_error(
        server.ctl([
            "license",
            "set",
            "acme",
            "--tier",
            "team",
            "--limit",
            "gateways=3",
        ]),
        2,
        "unknown limit",
    );
    server
        .ctl(["license", "set", "acme", "--tier", "platinum"])
        .code(2);
}

#[test]
fn a_personal_token_can_be_written_to_a_file_without_clashing_with_the_global_token_file() {
    let server = Server::start();
    server
        .ctl(["org", "create", "acme-corp", "--display-name", "Acme"])
        .success();
    server
        .ctl([
            "user",
            "token",
            "create",
            "alice@acme.com",
            "--org",
            "acme-corp",
            "--out",
            "alice.token",
        ])
        .success();
    let file = server.dir().join("alice.token");
    assert_eq!(mode(&file), 0o600);
    let token = std::fs::read_to_string(&file).expect("token written");
    assert!(token.trim().starts_with("mcpg_pat_"));
}

#[test]
fn admin_tokens_are_created_listed_and_revoked() {
    let server = Server::start();
    server
        .ctl(["org", "create", "acme-corp", "--display-name", "Acme"])
        .success();
    server
        .ctl(["token", "create", "ci", "--out", "ci.token"])
        .success();
    let file = server.dir().join("ci.token");
    assert_eq!(mode(&file), 0o600);
    let ci = std::fs::read_to_string(&file).expect("token written");
    let key = server.json(["token", "create", "acme automation", "--org", "acme-corp"]);
    assert_eq!(key["org"], "acme-corp");

    // The new global token works as the caller.
    let listed = server
        .command(ci.trim())
        .args(["token", "list", "--output", "json"])
        .assert()
        .success();
    let listed: Value = serde_json::from_str(&stdout(&listed)).expect("json");
    let names: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["bootstrap", "ci", "acme automation"]);
    let table = stdout(&server.ctl(["token", "list"]).success());
    assert!(table.contains("acme automation") && !table.contains(ci.trim()));

    let ci_id = listed[1]["id"].as_str().expect("id");
    server.ctl(["token", "revoke", ci_id]).success();
    assert_one_error(
        server.command(ci.trim()).args(["token", "list"]).assert(),
        1,
        "unauthenticated",
    );
    let bootstrap_id = listed[0]["id"].as_str().expect("id");
    assert_one_error(server.ctl(["token", "revoke", bootstrap_id]), 1, "conflict");
}
