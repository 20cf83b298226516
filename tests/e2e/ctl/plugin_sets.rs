//! `mcpg-ctl plugin-set` against a real server: the seed's `MCPGPluginSet` document applied,
//! shown (table and JSON), an environment inheriting its workspace's set, refusals naming
//! the plugins, and `license set --force` printing the sets a downgrade affects.

use super::{Server, assert_one_error, stderr, stdout};

const SEED: &str = "\
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

#[test]
fn plugin_sets_are_applied_shown_refused_and_reported_by_a_forced_downgrade() {
    let server = Server::start();
    server
        .ctl(["org", "create", "acme-corp", "--display-name", "Acme"])
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
    std::fs::write(server.dir().join("set.yaml"), SEED).expect("write");

    let applied = stdout(
        &server
            .ctl(["plugin-set", "apply", "-f", "set.yaml"])
            .success(),
    );
    assert!(
        applied.contains("applied plugin set acme-corp/platform-team (sha256:"),
        "{applied}"
    );
    let shown = server.json(["plugin-set", "show", "acme-corp/platform-team/prod"]);
    assert_eq!(shown["inherited_from"], "workspace", "{shown}");
    assert_eq!(
        shown["plugins"].as_array().map(Vec::len),
        Some(4),
        "{shown}"
    );
    let table = stdout(
        &server
            .ctl(["plugin-set", "show", "acme-corp/platform-team"])
            .success(),
    );
    assert!(table.contains("policy.cedar"), "{table}");
    assert!(
        table.contains("oci://policies.acme.com/platform-team:1.0"),
        "{table}"
    );

    let wrong = SEED.replace("MCPGPluginSet", "MCPGPolicy");
    std::fs::write(server.dir().join("wrong.yaml"), wrong).expect("write");
    assert_one_error(
        server.ctl(["plugin-set", "apply", "-f", "wrong.yaml"]),
        2,
        "kind \"MCPGPolicy\" is not supported",
    );

    server
        .ctl(["license", "set", "acme-corp", "--tier", "team"])
        .failure()
        .code(1);
    let forced = stderr(
        &server
            .ctl(["license", "set", "acme-corp", "--tier", "team", "--force"])
            .success(),
    );
    assert!(
        forced.contains(
            "plugin set acme-corp/platform-team is no longer entitled to: policy.cedar \
             (needs plugin:policy.cedar)"
        ),
        "{forced}"
    );
    // On Team, applying the set again names the plugin the license lacks.
    assert_one_error(
        server.ctl(["plugin-set", "apply", "-f", "set.yaml"]),
        1,
        "policy.cedar (needs plugin:policy.cedar)",
    );
    let deleted = stdout(
        &server
            .ctl(["plugin-set", "delete", "acme-corp/platform-team"])
            .success(),
    );
    assert!(
        deleted.contains("deleted plugin set acme-corp/platform-team"),
        "{deleted}"
    );
    server
        .ctl(["plugin-set", "show", "acme-corp/platform-team/prod"])
        .failure()
        .code(1);
}
