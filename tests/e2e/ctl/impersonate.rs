//! `mcpg-ctl impersonate`: a global admin's bounded token that acts inside one org as its
//! admin, against a real `mcpg-auth`.

use super::{Server, assert_one_error, stdout};

#[test]
fn an_admin_impersonates_an_org_for_a_bounded_time_and_acts_only_there() {
    let server = Server::start();
    for org in ["acme-corp", "globex"] {
        server
            .ctl(["org", "create", org, "--display-name", org])
            .success();
        server
            .ctl(["license", "set", org, "--tier", "enterprise"])
            .success();
    }

    let shown = server.json([
        "impersonate",
        "acme-corp",
        "--reason",
        "ticket 4711: gateway cannot refresh",
        "--for",
        "30m",
    ]);
    assert_eq!(shown["org"], "acme-corp", "{shown}");
    assert_eq!(shown["reason"], "ticket 4711: gateway cannot refresh");
    let token = shown["token"].as_str().expect("token shown once");
    assert!(token.starts_with("mcpg_pat_"), "{shown}");

    server
        .command(token)
        .args(["workspace", "create", "acme-corp/support"])
        .assert()
        .success();
    let other = server
        .command(token)
        .args(["workspace", "list", "globex"])
        .assert();
    assert_one_error(other, 1, "not found");

    // Written to a file: the table says where, and the token is not printed.
    let table = server
        .ctl([
            "impersonate",
            "acme-corp",
            "--reason",
            "audit",
            "--for",
            "1h",
            "--out",
            "acme.token",
        ])
        .success();
    let text = stdout(&table);
    assert!(text.contains("written to acme.token"), "{text}");
    assert!(!text.contains("mcpg_pat_"), "{text}");
    let saved = std::fs::read_to_string(server.dir().join("acme.token")).expect("token file");
    assert!(saved.trim().starts_with("mcpg_pat_"));
}

#[test]
fn impersonation_is_refused_beyond_an_hour_without_a_reason_or_to_non_admins() {
    let server = Server::start();
    server
        .ctl(["org", "create", "acme-corp", "--display-name", "Acme"])
        .success();
    let too_long = server
        .ctl(["impersonate", "acme-corp", "--reason", "x", "--for", "2h"])
        .code(2);
    assert!(super::stderr(&too_long).contains("from 1m to 60m"));
    assert_one_error(
        server.ctl(["impersonate", "acme-corp", "--reason", "  "]),
        2,
        "--reason",
    );
    server.ctl(["impersonate", "acme-corp"]).code(2);

    let key = server.json(["token", "create", "ci", "--org", "acme-corp"]);
    let key = key["token"].as_str().expect("org key");
    let refused = server
        .command(key)
        .args(["impersonate", "acme-corp", "--reason", "x"])
        .assert();
    assert_one_error(refused, 1, "global admin");
}
