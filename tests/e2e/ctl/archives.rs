//! `mcpg-ctl org archive`: a deleted org's archive is listed, shown with its audit chain
//! verified, and restored (its gateway's credential works again), against a real
//! `mcpg-auth`.

use super::{Server, assert_one_error, stdout};

#[test]
fn a_deleted_org_is_listed_shown_verified_and_restored() {
    let server = Server::start();
    server
        .ctl(["org", "create", "acme-corp", "--display-name", "Acme"])
        .success();
    server
        .ctl(["license", "set", "acme-corp", "--tier", "team"])
        .success();
    server
        .ctl(["workspace", "create", "acme-corp/ops"])
        .success();
    server
        .ctl(["env", "create", "acme-corp/ops/prod"])
        .success();
    server
        .ctl([
            "gateway",
            "register",
            "acme-corp/ops/prod",
            "edge-1",
            "--credential-file",
            "edge-1.credential",
        ])
        .success();
    let credential = std::fs::read_to_string(server.dir().join("edge-1.credential"))
        .expect("credential written");
    let credential = credential.trim();
    assert_eq!(server.token_status(credential), 200);
    server
        .ctl(["org", "delete", "acme-corp", "--cascade", "--yes"])
        .success();
    assert_eq!(server.token_status(credential), 401);

    let archives = server.json(["org", "archive", "list"]);
    assert_eq!(archives[0]["org"], "acme-corp", "{archives}");
    let id = archives[0]["id"].as_str().expect("archive id").to_owned();
    let table = stdout(&server.ctl(["org", "archive", "list"]).success());
    assert!(table.contains("PURGE AT") && table.contains(&id), "{table}");

    let shown = server.json(["org", "archive", "show", &id]);
    assert_eq!(shown["chain_ok"], true, "{shown}");
    assert_eq!(shown["archive"]["kind"], "org");
    let entries = shown["archive"]["audit"]["entries"]
        .as_array()
        .expect("entries");
    assert_eq!(entries.last().expect("an entry")["action"], "org.delete");

    let restored = stdout(&server.ctl(["org", "archive", "restore", &id]).success());
    assert!(restored.contains("restored org acme-corp"), "{restored}");
    assert_eq!(server.token_status(credential), 200);
    assert_one_error(
        server.ctl(["org", "archive", "restore", &id]),
        1,
        "not_found",
    );
    assert_one_error(
        server.ctl(["org", "archive", "show", "../keys"]),
        2,
        "archive id",
    );
}
