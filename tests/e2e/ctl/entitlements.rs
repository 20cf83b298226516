//! `mcpg-ctl license set` checks entitlement ids against the plugin catalog before sending,
//! as the service does, and passes the opt-in for plugins that ship later.

use super::{Server, assert_one_error};

#[test]
fn an_unknown_entitlement_is_refused_before_sending_unless_future_ones_are_allowed() {
    let server = Server::start();
    server
        .ctl(["org", "create", "acme", "--display-name", "Acme"])
        .success();
    assert_one_error(
        server.ctl([
            "license",
            "set",
            "acme",
            "--tier",
            "team",
            "--entitlement",
            "plugin:policy.cedr",
        ]),
        2,
        "plugin:policy.cedr (did you mean plugin:policy.cedar?)",
    );
    // Nothing was sent, so the org still has no license.
    server.ctl(["license", "show", "acme"]).code(1);

    let license = server.json([
        "license",
        "set",
        "acme",
        "--tier",
        "team",
        "--entitlement",
        "plugin:billing.stripe",
        "--allow-future-entitlement",
    ]);
    assert_eq!(
        license["entitlements_add"],
        serde_json::json!(["plugin:billing.stripe"]),
        "{license}"
    );
}
