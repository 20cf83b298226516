//! Seed 000's plugin sets end to end: the seed's `MCPGPluginSet` document applied with
//! `mcpg-ctl plugin-set apply -f` as written, gateways federating with `mcpg-auth`, and
//! `mcpg-entitlements check` allowing a plugin of the set with its config, refusing an
//! entitled plugin outside it (`not_in_plugin_set`), while a gateway of another workspace
//! sees its own set.

use crate::support::{Gateway, Service};

/// Seed 000's example, verbatim.
const SEED_PLUGIN_SET: &str = "\
# Workspace platform-team uses an enterprise policy bundle
apiVersion: mcpg.dev/v1
kind: MCPGPluginSet
metadata:
  name: platform-team-prod
  namespace: mcpg-acme
spec:
  workspace: acme-corp/platform-team
  plugins:
    - id: identity.oidc
    - id: policy.cedar
      config:
        bundle: oci://policies.acme.com/platform-team:1.0
    - id: reliability.rate-limit
    - id: observability.audit
";

const FINANCE_PLUGIN_SET: &str = "\
apiVersion: mcpg.dev/v1
kind: MCPGPluginSet
metadata:
  name: finance-team
spec:
  workspace: acme-corp/finance-team
  plugins:
    - id: identity.saml
      config: {metadata_url: https://idp.acme.com/saml/metadata}
    - id: observability.audit
";

fn register(service: &Service, path: &str, name: &str) -> std::path::PathBuf {
    let file = format!("{name}.credential");
    service.ctl_ok(&[
        "gateway",
        "register",
        path,
        name,
        "--credential-file",
        &file,
    ]);
    service.work_dir().join(file)
}

#[test]
fn the_seeds_plugin_set_reaches_its_workspaces_gateways_and_only_theirs() {
    let service = Service::start(&[]);
    let root = service.dev_root();
    service.ctl_ok(&["org", "create", "acme-corp", "--display-name", "Acme"]);
    service.ctl_ok(&[
        "license",
        "set",
        "acme-corp",
        "--tier",
        "enterprise",
        "--valid-for",
        "30d",
    ]);
    for ws in ["platform-team", "finance-team"] {
        service.ctl_ok(&["workspace", "create", &format!("acme-corp/{ws}")]);
        service.ctl_ok(&["env", "create", &format!("acme-corp/{ws}/prod")]);
    }
    std::fs::write(service.work_dir().join("platform.yaml"), SEED_PLUGIN_SET)
        .expect("write the seed's document");
    std::fs::write(service.work_dir().join("finance.yaml"), FINANCE_PLUGIN_SET)
        .expect("write the finance document");
    service.ctl_ok(&["plugin-set", "apply", "-f", "platform.yaml"]);
    service.ctl_ok(&["plugin-set", "apply", "-f", "finance.yaml"]);
    let shown = service.ctl_json(&["plugin-set", "show", "acme-corp/platform-team"]);
    assert!(shown.to_string().contains("policy.cedar"), "{shown}");

    let platform = register(&service, "acme-corp/platform-team/prod", "platform-edge");
    let finance = register(&service, "acme-corp/finance-team/prod", "finance-edge");
    let platform = Gateway::federated(&service.url, &platform, &[&root]);
    let finance = Gateway::federated(&service.url, &finance, &[&root]);

    // In the set, with its config for the gateway to load.
    let cedar = platform.check("policy.cedar");
    assert!(cedar.allowed(), "{}", cedar.json);
    assert_eq!(
        cedar.json["config"]["bundle"], "oci://policies.acme.com/platform-team:1.0",
        "{}",
        cedar.json
    );
    assert!(platform.check("identity.oidc").allowed());
    // Entitled by the Enterprise license, but not in the workspace's set.
    let saml = platform.check("identity.saml");
    assert!(!saml.allowed());
    assert_eq!(saml.field("reason"), "not_in_plugin_set", "{}", saml.json);
    // Not in the catalog at all stays unknown.
    assert_eq!(
        platform.check("no.such-plugin").field("reason"),
        "unknown_plugin"
    );

    // The other workspace has its own set.
    let saml = finance.check("identity.saml");
    assert!(saml.allowed(), "{}", saml.json);
    assert_eq!(
        saml.json["config"]["metadata_url"], "https://idp.acme.com/saml/metadata",
        "{}",
        saml.json
    );
    let cedar = finance.check("policy.cedar");
    assert!(!cedar.allowed());
    assert_eq!(cedar.field("reason"), "not_in_plugin_set", "{}", cedar.json);

    // Deleting the finance set: its gateway's next token carries none, and the
    // entitlements alone decide again.
    service.ctl_ok(&["plugin-set", "delete", "acme-corp/finance-team"]);
    let finance_again = register(&service, "acme-corp/finance-team/prod", "finance-edge-2");
    let finance_again = Gateway::federated(&service.url, &finance_again, &[&root]);
    assert!(finance_again.check("policy.cedar").allowed());
}
