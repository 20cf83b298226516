//! `mcpg-ctl tenants apply` against a real server: the plan as a table and as JSON,
//! dry runs, and an invalid file's line.

use mcpg_auth::{Credential, CredentialKind};

use crate::ctl::Server;
use crate::{assert_one_error, stdout};

fn document(key_hash: &str, workspaces: &str) -> String {
    format!(
        "tenants:\n\
         - id: team-a\n\
         \x20 display_name: Team Alpha\n\
         \x20 tier: team\n\
         \x20 quotas:\n\
         \x20   max_gateways: 10\n\
         \x20 workspaces:{workspaces}\
         \x20 api_keys:\n\
         \x20 - name: production\n\
         \x20   key_hash: \"{key_hash}\"\n"
    )
}

#[test]
fn tenants_apply_prints_the_plan_and_a_dry_run_changes_nothing() {
    let server = Server::start();
    let key = Credential::generate(CredentialKind::ApiToken).expect("random");
    let hash = format!("sha256:{}", key.hash().to_hex());
    let file = server.dir.path().join("tenants.yaml");
    std::fs::write(
        &file,
        document(&hash, "\n  - name: platform\n    environments: [prod]\n"),
    )
    .expect("write");

    let dry = stdout(
        &server
            .ctl(["tenants", "apply", "-f", "tenants.yaml", "--dry-run"])
            .success(),
    );
    assert!(dry.starts_with("ACTION"), "a table: {dry}");
    assert!(dry.contains("create  org"), "{dry}");
    assert!(dry.contains("team-a/platform/prod"), "{dry}");
    assert!(dry.contains("dry run: nothing was changed"), "{dry}");
    server.ctl(["org", "get", "team-a"]).failure().code(1);

    let applied = stdout(
        &server
            .ctl(["tenants", "apply", "-f", "tenants.yaml"])
            .success(),
    );
    assert!(
        applied.contains("5 to create") && applied.contains("(applied)"),
        "{applied}"
    );
    // The file's key is the org's admin.
    let listed = stdout(
        &server
            .command(key.expose())
            .args(["env", "list", "team-a/platform"])
            .assert()
            .success(),
    );
    assert!(listed.contains("prod"), "{listed}");

    std::fs::write(&file, document(&hash, " []\n")).expect("write");
    let plan = server.json(["tenants", "apply", "-f", "tenants.yaml", "--prune"]);
    let deleted: Vec<&str> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["action"] == "delete")
        .filter_map(|c| c["path"].as_str())
        .collect();
    assert_eq!(deleted, ["team-a/platform"], "{plan}");

    // This server watches no file: its reloader has applied nothing.
    let status = server.json(["tenants", "status"]);
    assert_eq!(status["generation"], 0, "{status}");
    assert!(status["file"].is_null(), "{status}");
}

#[test]
fn an_invalid_tenants_file_is_refused_with_its_line() {
    let server = Server::start();
    let file = server.dir.path().join("tenants.yaml");
    std::fs::write(
        &file,
        "tenants:\n- id: team-a\n  display_name: A\n  tier: team\n  quotas:\n    max_servers: 5\n",
    )
    .expect("write");
    assert_one_error(
        server.ctl(["tenants", "apply", "-f", "tenants.yaml"]),
        1,
        "line 6, column 5: tenants[0].quotas: unknown field `max_servers`",
    );
    assert_one_error(
        server.ctl(["tenants", "apply", "-f", "missing.yaml"]),
        2,
        "cannot read missing.yaml",
    );
}
