//! `mcpg-ctl audit …` against a real server, and the offline verification of an export
//! against a signed checkpoint with no server at all.

use mcpg_license_core::{Jwks, SigningKey};
use serde_json::Value;

use super::Server;
use super::{assert_one_error, stdout};

/// `mcpg-ctl ARGS…` with no server to talk to.
fn offline<const N: usize>(dir: &std::path::Path, args: [&str; N]) -> assert_cmd::assert::Assert {
    super::ctl()
        .env("MCPG_SERVER", "http://127.0.0.1:9")
        .env_remove("MCPG_TOKEN")
        .current_dir(dir)
        .args(args)
        .assert()
}

#[test]
fn an_export_verifies_offline_against_a_signed_checkpoint_and_tampering_fails() {
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
            "--valid-for",
            "30d",
        ])
        .success();
    server
        .ctl(["workspace", "create", "acme/platform"])
        .success();

    let listed = server.json(["audit", "list", "acme"]);
    assert!(listed.get("next_cursor").is_none(), "one page: {listed}");
    let actions: Vec<&str> = listed["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["org.create", "license.set", "workspace.create"]);
    let table = stdout(
        &server
            .ctl(["audit", "list", "acme", "--limit", "2"])
            .success(),
    );
    assert!(
        table.contains("org.create") && table.contains("more: --after-seq 2"),
        "{table}"
    );
    let verified = server.json(["audit", "verify", "acme"]);
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["head_seq"], 3);

    server
        .ctl(["audit", "export", "acme", "--out", "acme.ndjson"])
        .success();
    let signed = server.json([
        "audit",
        "checkpoint",
        "acme",
        "--sign",
        "--out",
        "acme.note",
    ]);
    assert_eq!(signed["seq"], 3);
    let latest = server.json(["audit", "checkpoint", "acme"]);
    assert_eq!(latest["note"], signed["note"]);
    let jwks: Jwks = reqwest::blocking::get(format!("{}/.well-known/jwks.json", server.url))
        .expect("jwks")
        .json()
        .expect("jwks JSON");
    let kid = signed["key_id"].as_str().expect("key id");
    let public = jwks
        .keys
        .iter()
        .map(|jwk| jwk.public_key().expect("key"))
        .find(|key| key.kid().as_str() == kid)
        .expect("the signing key is published")
        .to_paserk();

    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["acme.ndjson", "acme.note"] {
        std::fs::copy(server.dir().join(name), dir.path().join(name)).expect("copy");
    }
    drop(server);

    let ok = offline(
        dir.path(),
        [
            "audit",
            "verify",
            "--file",
            "acme.ndjson",
            "--checkpoint",
            "acme.note",
            "--trust",
            &public,
            "--output",
            "json",
        ],
    )
    .success();
    let report: Value = serde_json::from_str(&stdout(&ok)).expect("JSON report");
    assert_eq!(report["ok"], true);
    assert_eq!(report["head_seq"], 3);
    assert_eq!(report["checkpoint_seq"], 3);

    // One changed field in the export.
    let export = std::fs::read_to_string(dir.path().join("acme.ndjson")).expect("export");
    let tampered = export.replacen("\"license.set\"", "\"license.revoke\"", 1);
    assert_ne!(tampered, export);
    std::fs::write(dir.path().join("tampered.ndjson"), tampered).expect("write");
    assert_one_error(
        offline(
            dir.path(),
            [
                "audit",
                "verify",
                "--file",
                "tampered.ndjson",
                "--checkpoint",
                "acme.note",
                "--trust",
                &public,
            ],
        ),
        1,
        "does not verify at seq 2",
    );

    // An export cut short of the checkpoint.
    let first: String = export.lines().take(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("short.ndjson"), first).expect("write");
    assert_one_error(
        offline(
            dir.path(),
            [
                "audit",
                "verify",
                "--file",
                "short.ndjson",
                "--checkpoint",
                "acme.note",
                "--trust",
                &public,
            ],
        ),
        1,
        "ends at seq 1",
    );

    // A checkpoint checked with a key that did not sign it.
    let stranger = SigningKey::generate()
        .expect("key")
        .public_key()
        .to_paserk();
    assert_one_error(
        offline(
            dir.path(),
            [
                "audit",
                "verify",
                "--file",
                "acme.ndjson",
                "--checkpoint",
                "acme.note",
                "--trust",
                &stranger,
            ],
        ),
        1,
        "no signature by key",
    );

    // A forged checkpoint (the seq changed after signing).
    let note = std::fs::read_to_string(dir.path().join("acme.note")).expect("note");
    std::fs::write(
        dir.path().join("forged.note"),
        note.replacen("\n3\n", "\n2\n", 1),
    )
    .expect("write");
    assert_one_error(
        offline(
            dir.path(),
            [
                "audit",
                "verify",
                "--file",
                "acme.ndjson",
                "--checkpoint",
                "forged.note",
                "--trust",
                &public,
            ],
        ),
        1,
        "signature does not verify",
    );

    // Half the offline flags is a usage error.
    offline(dir.path(), ["audit", "verify", "--file", "acme.ndjson"]).code(2);
}
