//! `mcpg-ctl org oidc …` against a real `mcpg-auth`: set, show (table and JSON), refusals
//! decided locally and by the server, delete.

use super::Server;
use super::{assert_one_error, stdout};

#[test]
fn an_admin_sets_shows_and_deletes_an_orgs_oidc_provider() {
    let server = Server::start();
    server
        .ctl(["org", "create", "acme-corp", "--display-name", "Acme, Inc."])
        .success();
    let set = server.json([
        "org",
        "oidc",
        "set",
        "acme-corp",
        "--issuer",
        "https://login.microsoftonline.com/t-1/v2.0",
        "--audience",
        "api://mcpg",
        "--jwks-uri",
        "https://login.microsoftonline.com/t-1/discovery/v2.0/keys",
        "--tenant-claim",
        "tid",
        "--tenant-value",
        "t-1",
        "--role-claim",
        "roles",
        "--role-map",
        "MCPG.Admin=admin",
        "--role-map",
        "MCPG.Reader=viewer",
        "--algorithm",
        "RS256",
        "--algorithm",
        "ES256",
    ]);
    assert_eq!(set["tenant_claim"], "tid");
    assert_eq!(set["role_map"]["MCPG.Reader"], "viewer");
    assert_eq!(set["algorithms"], serde_json::json!(["RS256", "ES256"]));

    let table = stdout(&server.ctl(["org", "oidc", "show", "acme-corp"]).success());
    assert!(table.contains("tenant claim  tid"), "{table}");
    assert!(
        table.contains("MCPG.Admin=admin,MCPG.Reader=viewer"),
        "{table}"
    );
    let shown = server.json(["org", "oidc", "show", "acme-corp"]);
    assert_eq!(
        shown["issuer"],
        "https://login.microsoftonline.com/t-1/v2.0"
    );

    // Refused locally (exit 2) and by the server (exit 1), each with one clear line.
    let base = [
        "org",
        "oidc",
        "set",
        "acme-corp",
        "--audience",
        "a",
        "--tenant-claim",
        "tid",
        "--role-claim",
        "roles",
        "--issuer",
    ];
    let mut bad_role = server.command(&server.token);
    bad_role
        .args(base)
        .args(["https://idp.example/", "--role-map", "x=root"]);
    assert_one_error(bad_role.assert(), 2, "admin, operator or viewer");
    let mut plain_http = server.command(&server.token);
    plain_http
        .args(base)
        .args(["http://idp.example/", "--jwks-uri", "https://idp.example/k"]);
    assert_one_error(plain_http.assert(), 1, "https");
    let mut hs256 = server.command(&server.token);
    hs256
        .args(base)
        .args(["https://idp.example/", "--algorithm", "HS256"]);
    hs256.assert().code(2);

    server.ctl(["org", "oidc", "delete", "acme-corp"]).success();
    assert_one_error(
        server.ctl(["org", "oidc", "show", "acme-corp"]),
        1,
        "not found",
    );
}
