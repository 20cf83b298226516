//! `mcpg-ctl gateway show|revoke ORG/WS/ENV NAME`: a gateway named by its name as well as
//! by its id; a second gateway of one name is refused (exit 1, `conflict`); revoking frees
//! the name for a replacement.

use super::{Server, assert_one_error, stdout};

fn setup(server: &Server) {
    server
        .ctl(["org", "create", "acme", "--display-name", "Acme"])
        .success();
    server
        .ctl(["license", "set", "acme", "--tier", "team"])
        .success();
    server.ctl(["workspace", "create", "acme/main"]).success();
    server.ctl(["env", "create", "acme/main/prod"]).success();
}

#[test]
fn a_gateway_is_shown_and_revoked_by_name_or_id() {
    let server = Server::start();
    setup(&server);
    let first = server.json(["gateway", "register", "acme/main/prod", "edge-1"]);
    let credential = first["credential"].as_str().expect("credential");
    let id = first["id"].as_str().expect("id");

    let shown = server.json(["gateway", "show", "acme/main/prod", "edge-1"]);
    assert_eq!(shown["id"], id);
    assert!(shown.get("credential").is_none(), "{shown}");
    let by_id = server.json(["gateway", "show", "acme/main/prod", id]);
    assert_eq!(by_id["name"], "edge-1");
    let table = stdout(
        &server
            .ctl(["gateway", "show", "acme/main/prod", "edge-1"])
            .success(),
    );
    assert!(table.contains("edge-1") && table.contains(id), "{table}");

    assert_one_error(
        server.ctl(["gateway", "register", "acme/main/prod", "edge-1"]),
        1,
        "conflict",
    );
    assert_one_error(
        server.ctl(["gateway", "show", "acme/main/prod", "edge-9"]),
        1,
        "no gateway named \"edge-9\"",
    );

    let out = server
        .ctl(["gateway", "revoke", "acme/main/prod", "edge-1"])
        .success();
    assert!(stdout(&out).contains(id), "{}", stdout(&out));
    assert_eq!(server.token_status(credential), 401);
    assert_one_error(
        server.ctl(["gateway", "revoke", "acme/main/prod", "edge-1"]),
        1,
        "already revoked",
    );
    // `show` still finds the revoked one by its name.
    let revoked = server.json(["gateway", "show", "acme/main/prod", "edge-1"]);
    assert_eq!(revoked["id"], id);
    assert!(revoked["revoked_at"].is_string(), "{revoked}");

    // The name is free for a replacement, which `show` then prefers.
    let second = server.json(["gateway", "register", "acme/main/prod", "edge-1"]);
    let replacement = second["id"].as_str().expect("id");
    assert_ne!(replacement, id);
    let shown = server.json(["gateway", "show", "acme/main/prod", "edge-1"]);
    assert_eq!(shown["id"], replacement);
    // By id, the revoked one is still there to look at.
    let old = server.json(["gateway", "show", "acme/main/prod", id]);
    assert!(old["revoked_at"].is_string());
}
