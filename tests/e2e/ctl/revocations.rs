//! `mcpg-license revoke` → `mcpg-ctl revocations upload` → the list the server serves to
//! gateways, against a real `mcpg-auth` (whose development root signs the lists here).

use super::Server;
use super::stdout;

#[test]
fn a_signed_list_is_uploaded_served_shown_and_never_rolled_back() {
    let server = Server::start();
    let root = server.dir().join("dev-root.secret.paserk");
    let revoke = |serial: &str, out: &str| {
        super::license()
            .current_dir(server.dir())
            .args(["revoke", "--key"])
            .arg(&root)
            .args(["--serial", serial, "--license", "lic_air_1", "--out", out])
            .assert()
            .success();
    };
    revoke("2", "revocations-0002.paseto");
    revoke("1", "revocations-0001.paseto");

    let uploaded = server.json(["revocations", "upload", "revocations-0002.paseto"]);
    assert_eq!(uploaded["serial"], 2);
    assert_eq!(uploaded["licenses"], serde_json::json!(["lic_air_1"]));
    let shown = stdout(&server.ctl(["revocations", "show"]).success());
    assert!(
        shown.contains("lic_air_1") && shown.contains('2'),
        "{shown}"
    );

    let served = reqwest::blocking::get(format!("{}/.well-known/mcpg-revocations", server.url))
        .expect("served")
        .text()
        .expect("text");
    let file =
        std::fs::read_to_string(server.dir().join("revocations-0002.paseto")).expect("list file");
    assert_eq!(served, file.trim());

    let older = server
        .ctl(["revocations", "upload", "revocations-0001.paseto"])
        .failure()
        .code(1);
    let error = String::from_utf8_lossy(&older.get_output().stderr).into_owned();
    assert!(error.contains("not higher"), "{error}");
    let missing = server
        .ctl(["revocations", "upload", "no-such-file.paseto"])
        .failure()
        .code(2);
    assert!(!missing.get_output().stderr.is_empty());
}
