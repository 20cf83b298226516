//! Scenario 1: an operator sets a tenant up with `mcpg-ctl` against `mcpg-auth` running on
//! its embedded defaults (development root), and gateways federate with the credentials
//! `mcpg-ctl` wrote: per tier, entitled plugins are allowed and the others denied.

use crate::support::{Gateway, Service};

#[test]
fn gateways_federate_with_ctl_made_credentials_and_check_plugins_per_tier() {
    let service = Service::start(&[]);
    let root = service.dev_root();
    for (tier, team_plugin, enterprise_plugin) in [
        ("free", false, false),
        ("team", true, false),
        ("enterprise", true, true),
    ] {
        let org = format!("org-{tier}");
        let credential = service.tenant(&org, tier, &[], "gw-1");
        let gateway = Gateway::federated(&service.url, &credential, &[&root]);

        let apikey = gateway.check("identity.apikey");
        assert!(apikey.allowed(), "{tier}: {}", apikey.json);
        assert_eq!(apikey.field("state"), "active", "{tier}");
        assert_eq!(
            gateway.check("workspace.rbac").allowed(),
            team_plugin,
            "{tier}"
        );
        let enterprise = gateway.check("environment.rbac");
        assert_eq!(enterprise.allowed(), enterprise_plugin, "{tier}");
        if !enterprise_plugin {
            assert_eq!(enterprise.field("reason"), "not_entitled", "{tier}");
        }
        let unknown = gateway.check("no.such-plugin");
        assert!(!unknown.allowed());
        assert_eq!(unknown.field("reason"), "unknown_plugin");

        let status = gateway.status();
        assert_eq!(status["mode"], "federated");
        assert_eq!(status["default"]["tenant"], format!("{org}/main/prod"));
        assert_eq!(status["default"]["state"], "active");
        assert_eq!(status["default"]["tier"], tier);
        assert!(gateway.state_dir().is_dir(), "the token is persisted");
    }
}

/// The README's quick start: a license with an extra entitlement.
#[test]
fn a_license_entitlement_added_by_the_operator_reaches_the_gateway() {
    let service = Service::start(&[]);
    let credential = service.tenant(
        "acme-corp",
        "team",
        &["--entitlement", "plugin:policy.cedar"],
        "edge-1",
    );
    let gateway = Gateway::federated(&service.url, &credential, &[&service.dev_root()]);
    assert!(gateway.check("policy.cedar").allowed());
    let saml = gateway.check("identity.saml");
    assert!(!saml.allowed());
    assert_eq!(saml.field("reason"), "not_entitled");
    let plugins = gateway.status()["default"]["allowed_plugins"].clone();
    assert!(
        plugins
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "policy.cedar")),
        "{plugins}"
    );
}

/// One gateway serving two orgs from `[[tenant]]` entries: each tenant answers with its own
/// org's license.
#[test]
fn one_gateway_federates_two_orgs_from_tenant_entries_and_answers_per_tenant() {
    let service = Service::start(&[]);
    let acme = service.tenant("acme-corp", "team", &[], "edge-1");
    let globex = service.tenant("globex", "free", &[], "edge-1");
    let gateway = Gateway::federated_tenants(
        &[
            ("acme", service.url.as_str(), acme.as_path()),
            ("globex", service.url.as_str(), globex.as_path()),
        ],
        &[&service.dev_root()],
    );

    let team = gateway.check_tenant("workspace.rbac", "acme-corp/main/prod");
    assert!(team.allowed(), "{}", team.json);
    let free = gateway.check_tenant("workspace.rbac", "globex/main/prod");
    assert!(!free.allowed(), "{}", free.json);
    assert_eq!(free.field("reason"), "not_entitled");
    assert!(
        gateway
            .check_tenant("identity.apikey", "globex/main/prod")
            .allowed()
    );

    let status = gateway.status();
    assert_eq!(
        status["default"]["tenant"], "acme-corp/main/prod",
        "the first entry is the default"
    );
    let text = status.to_string();
    assert!(text.contains("globex/main/prod"), "{text}");
}
