//! `mcpg-ctl tenants apply` against a real server: the plan as a table and as JSON,
//! dry runs, and an invalid file's line.

use super::Server;
use super::{assert_one_error, stdout};

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

/// A new org API key as the README's "Tenants as code" describes it (`mcpg_pat_`, then
/// lowercase RFC 4648 base32 without padding of 32 random bytes and the first 4 bytes of
/// their SHA-256) and its `key_hash` (`sha256:` + hex SHA-256 of the whole text).
fn api_key() -> (String, String) {
    use sha2::{Digest, Sha256};
    let mut raw = [0_u8; 36];
    getrandom::getrandom(&mut raw[..32]).expect("random bytes");
    let check = Sha256::digest(&raw[..32]);
    raw[32..].copy_from_slice(&check[..4]);
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut text = String::from("mcpg_pat_");
    let (mut buffer, mut bits) = (0_u32, 0_u32);
    for byte in raw {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            text.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        text.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    let hash: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (text, format!("sha256:{hash}"))
}

#[test]
fn tenants_apply_prints_the_plan_and_a_dry_run_changes_nothing() {
    let server = Server::start();
    let (key, hash) = api_key();
    let file = server.dir().join("tenants.yaml");
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
            .command(&key)
            .args(["env", "list", "team-a/platform"])
            .assert()
            .success(),
    );
    assert!(listed.contains("prod"), "{listed}");

    // For CI: --detailed-exitcode says 0 when the server matches the file, 2 when not.
    let check = [
        "tenants",
        "apply",
        "-f",
        "tenants.yaml",
        "--dry-run",
        "--detailed-exitcode",
    ];
    server.ctl(check).code(0);

    let more = "\n  - name: platform\n    environments: [prod]\n  - name: data\n    environments: [prod]\n";
    std::fs::write(&file, document(&hash, more)).expect("write");
    let pending = stdout(&server.ctl(check).code(2));
    assert!(
        pending.contains("dry run: nothing was changed"),
        "{pending}"
    );

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
    let file = server.dir().join("tenants.yaml");
    std::fs::write(
        &file,
        "tenants:\n- id: team-a\n  display_name: A\n  tier: team\n  quotas:\n    max_server: 5\n",
    )
    .expect("write");
    assert_one_error(
        server.ctl(["tenants", "apply", "-f", "tenants.yaml"]),
        1,
        "line 6, column 5: tenants[0].quotas: unknown field `max_server`",
    );
    assert_one_error(
        server.ctl(["tenants", "apply", "-f", "missing.yaml"]),
        2,
        "cannot read missing.yaml",
    );
}
