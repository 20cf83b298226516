//! `mcpg-ctl rbac …`, `user token …` and cascading deletes against a real `mcpg-auth`.

use assert_cmd::assert::Assert;

use super::Server;
use super::{assert_one_error, stdout};

/// `mcpg-ctl ARGS…` with a user's token instead of the admin's.
fn as_user<const N: usize>(server: &Server, token: &str, args: [&str; N]) -> Assert {
    server.command(token).args(args).assert()
}

#[test]
fn an_admin_grants_roles_and_users_act_within_them() {
    let server = Server::start();
    server
        .ctl(["org", "create", "acme-corp", "--display-name", "Acme, Inc."])
        .success();
    server
        .ctl(["license", "set", "acme-corp", "--tier", "enterprise"])
        .success();
    server
        .ctl(["workspace", "create", "acme-corp/platform-team"])
        .success();
    server
        .ctl(["env", "create", "acme-corp/platform-team/prod"])
        .success();
    for (email, role, on) in [
        ("alice@acme.com", "admin", "org/acme-corp"),
        (
            "bob@acme.com",
            "operator",
            "workspace/acme-corp/platform-team",
        ),
        (
            "carol@acme.com",
            "viewer",
            "env/acme-corp/platform-team/prod",
        ),
    ] {
        server
            .ctl(["rbac", "grant", email, role, "--on", on])
            .success();
    }
    let table = stdout(&server.ctl(["rbac", "list", "acme-corp"]).success());
    assert!(table.starts_with("EMAIL"), "{table}");
    assert!(
        table.contains("env/acme-corp/platform-team/prod"),
        "{table}"
    );

    let created = server.json([
        "user",
        "token",
        "create",
        "carol@acme.com",
        "--org",
        "acme-corp",
    ]);
    let carol = created["token"].as_str().expect("token shown once");
    assert!(carol.starts_with("mcpg_pat_"));
    let bob = server.json([
        "user",
        "token",
        "create",
        "bob@acme.com",
        "--org",
        "acme-corp",
    ]);
    let bob = bob["token"].as_str().expect("token shown once");

    as_user(
        &server,
        bob,
        [
            "gateway",
            "register",
            "acme-corp/platform-team/prod",
            "edge-1",
        ],
    )
    .success();
    as_user(
        &server,
        carol,
        ["gateway", "list", "acme-corp/platform-team/prod"],
    )
    .success();
    assert_one_error(
        as_user(
            &server,
            carol,
            ["gateway", "register", "acme-corp/platform-team/prod", "x"],
        ),
        1,
        "forbidden",
    );
    assert_one_error(
        as_user(&server, bob, ["workspace", "create", "acme-corp/other"]),
        1,
        "forbidden",
    );

    let tokens = server.json([
        "user",
        "token",
        "list",
        "carol@acme.com",
        "--org",
        "acme-corp",
    ]);
    let id = tokens[0]["id"].as_str().expect("token id").to_owned();
    server
        .ctl([
            "user",
            "token",
            "revoke",
            "carol@acme.com",
            &id,
            "--org",
            "acme-corp",
        ])
        .success();
    assert_one_error(
        as_user(
            &server,
            carol,
            ["gateway", "list", "acme-corp/platform-team/prod"],
        ),
        1,
        "401",
    );
    server
        .ctl([
            "rbac",
            "revoke",
            "bob@acme.com",
            "operator",
            "--on",
            "workspace/acme-corp/platform-team",
        ])
        .success();
    assert_one_error(
        as_user(
            &server,
            bob,
            ["gateway", "list", "acme-corp/platform-team/prod"],
        ),
        1,
        "not_found",
    );
    assert_one_error(
        server.ctl([
            "rbac",
            "grant",
            "dave@acme.com",
            "viewer",
            "--on",
            "acme-corp",
        ]),
        2,
        "--on must be",
    );
}

#[test]
fn deletes_with_children_need_cascade_and_report_the_export() {
    let server = Server::start();
    server
        .ctl(["org", "create", "acme-corp", "--display-name", "Acme"])
        .success();
    server
        .ctl(["workspace", "create", "acme-corp/platform-team"])
        .success();
    server
        .ctl(["env", "create", "acme-corp/platform-team/prod"])
        .success();
    assert_one_error(
        server.ctl(["workspace", "delete", "acme-corp/platform-team"]),
        1,
        "has_children",
    );
    assert_one_error(
        server.ctl(["org", "delete", "acme-corp"]),
        1,
        "has_children",
    );
    let done = stdout(
        &server
            .ctl([
                "workspace",
                "delete",
                "acme-corp/platform-team",
                "--cascade",
            ])
            .success(),
    );
    assert!(done.contains("1 environment(s)"), "{done}");
    // Not on a terminal, a cascading org delete needs --yes, and sends nothing without it.
    assert_one_error(
        server.ctl(["org", "delete", "acme-corp", "--cascade"]),
        2,
        "pass --yes to confirm",
    );
    server.ctl(["org", "get", "acme-corp"]).success();
    let export = server.json(["org", "delete", "acme-corp", "--cascade", "--yes"]);
    assert_eq!(export["kind"], "org");
    assert_one_error(server.ctl(["org", "get", "acme-corp"]), 1, "not_found");
}
