//! `mcpg-ctl plugin-set …`: apply `MCPGPluginSet` documents (the seed's YAML, one or more
//! separated by `---`), show and delete the plugin set of a workspace or environment.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde::Deserialize;
use serde_json::{Value, json};

use super::commands::{Printer, split};
use super::output::{Column, record, table};
use super::tenants::read_document;
use super::{Client, Output};

/// The only `apiVersion` and `kind` accepted.
const API_VERSION: &str = "mcpg.dev/v1";
const KIND: &str = "MCPGPluginSet";

const APPLY_EXAMPLE: &str = "\
Examples:
  mcpg-ctl plugin-set apply -f platform-team.yaml
  cat sets/*.yaml | mcpg-ctl plugin-set apply -f -

platform-team.yaml:
  apiVersion: mcpg.dev/v1
  kind: MCPGPluginSet
  metadata:
    name: platform-team-prod
    namespace: mcpg-acme
  spec:
    workspace: acme-corp/platform-team
    environment: prod          # optional: without it, the workspace's set
    plugins:
      - id: identity.oidc
      - id: policy.cedar
        config:
          bundle: oci://policies.acme.com/platform-team:1.0

Every document's shape (apiVersion, kind, spec) is checked before the first is sent; the
documents are then applied in order, one request each. A plugin the catalog does not know,
or that the org's license does not entitle, is refused by the server naming each plugin;
the documents before a refused one stay applied, and the error says which one failed.";

const SHOW_EXAMPLE: &str = "\
Examples:
  mcpg-ctl plugin-set show acme-corp/platform-team
  mcpg-ctl plugin-set show acme-corp/platform-team/prod -o json

An environment without its own set shows its workspace's (inherited from: workspace).";

const DELETE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl plugin-set delete acme-corp/platform-team/prod   # back to the workspace's set
  mcpg-ctl plugin-set delete acme-corp/platform-team";

const SET_FIELDS: &[Column] = &[
    ("workspace", "workspace"),
    ("environment", "environment"),
    ("inherited from", "inherited_from"),
    ("digest", "digest"),
    ("revision", "revision"),
    ("updated at", "updated_at"),
];
const PLUGIN_COLUMNS: &[Column] = &[("plugin", "id"), ("config", "config")];

/// Plugin sets of workspaces and environments.
#[derive(Debug, Subcommand)]
pub(super) enum PluginSetCommand {
    /// Apply `MCPGPluginSet` documents: set (replace) the plugin set each names.
    #[command(after_help = APPLY_EXAMPLE)]
    Apply {
        /// The YAML file (`-` reads standard input); several documents separated by `---`.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// Show the plugin set of ORG/WS or ORG/WS/ENV.
    #[command(after_help = SHOW_EXAMPLE)]
    Show {
        /// ORG/WS or ORG/WS/ENV
        path: String,
    },
    /// Remove the plugin set of ORG/WS or ORG/WS/ENV (an environment then inherits its
    /// workspace's; a workspace's gateways then run with their entitlements alone).
    #[command(after_help = DELETE_EXAMPLE)]
    Delete {
        /// ORG/WS or ORG/WS/ENV
        path: String,
    },
}

/// The `spec` of a document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    workspace: String,
    #[serde(default)]
    environment: Option<String>,
    plugins: Vec<Plugin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Plugin {
    id: String,
    #[serde(default)]
    config: Value,
}

/// One document, checked: where its set goes and the request body.
#[derive(Debug, PartialEq)]
struct Apply {
    /// ORG/WS[/ENV], for messages.
    place: String,
    /// The route of the set.
    url: String,
    /// `{"plugins": [...]}`.
    body: Value,
}

/// The route of the plugin set of `ORG/WS` or `ORG/WS/ENV`.
fn set_url(path: &str) -> anyhow::Result<String> {
    match path.split('/').count() {
        3 => {
            let [org, ws, env] = split::<3>(path, "ORG/WS/ENV")?;
            Ok(format!(
                "/v1/orgs/{org}/workspaces/{ws}/environments/{env}/plugin-set"
            ))
        }
        _ => {
            let [org, ws] = split::<2>(path, "ORG/WS or ORG/WS/ENV")?;
            Ok(format!("/v1/orgs/{org}/workspaces/{ws}/plugin-set"))
        }
    }
}

/// Parses every document of `text` (empty ones skipped); refuses the whole file at the
/// first one that is not a valid `MCPGPluginSet`.
fn parse_documents(text: &str) -> anyhow::Result<Vec<Apply>> {
    let mut out = Vec::new();
    for (i, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let n = i + 1;
        let value = Value::deserialize(document)
            .with_context(|| format!("document {n} is not valid YAML"))?;
        if value.is_null() {
            continue;
        }
        out.push(parse_document(&value).with_context(|| format!("document {n}"))?);
    }
    if out.is_empty() {
        bail!("no {KIND} document found");
    }
    Ok(out)
}

fn parse_document(value: &Value) -> anyhow::Result<Apply> {
    let Some(fields) = value.as_object() else {
        bail!("expected a mapping with apiVersion, kind, metadata and spec");
    };
    match fields.get("apiVersion").and_then(Value::as_str) {
        Some(API_VERSION) => {}
        Some(other) => bail!("apiVersion {other:?} is not supported (expected {API_VERSION})"),
        None => bail!("apiVersion is missing (expected {API_VERSION})"),
    }
    match fields.get("kind").and_then(Value::as_str) {
        Some(KIND) => {}
        Some(other) => bail!("kind {other:?} is not supported (expected {KIND})"),
        None => bail!("kind is missing (expected {KIND})"),
    }
    if let Some(unknown) = fields
        .keys()
        .find(|k| !["apiVersion", "kind", "metadata", "spec"].contains(&k.as_str()))
    {
        bail!("unknown field {unknown:?} (expected apiVersion, kind, metadata, spec)");
    }
    let spec = fields.get("spec").context("spec is missing")?;
    let spec: Spec = serde_json::from_value(spec.clone()).context("invalid spec")?;
    let place = match &spec.environment {
        Some(env) => format!("{}/{env}", spec.workspace),
        None => spec.workspace.clone(),
    };
    if spec.workspace.split('/').count() != 2 {
        bail!(
            "spec.workspace {:?} must be ORG/WS (e.g. acme-corp/platform-team)",
            spec.workspace
        );
    }
    let url = set_url(&place).context("spec.workspace / spec.environment")?;
    let plugins: Vec<Value> = spec
        .plugins
        .into_iter()
        .map(|p| json!({"id": p.id, "config": p.config}))
        .collect();
    Ok(Apply {
        place,
        url,
        body: json!({ "plugins": plugins }),
    })
}

/// A set as a record and a table of its plugins.
fn render(set: &Value) -> String {
    let mut text = record(set, SET_FIELDS);
    let plugins: Vec<Value> = set["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let config = match &p["config"] {
                Value::Null => Value::Null,
                other => Value::String(other.to_string()),
            };
            json!({"id": p["id"], "config": config})
        })
        .collect();
    text.push('\n');
    if plugins.is_empty() {
        text.push_str("no plugins: its gateways may load none\n");
    } else {
        text.push_str(&table(&plugins, PLUGIN_COLUMNS));
    }
    text
}

pub(super) fn plugin_sets(
    client: &Client,
    out: &Printer,
    cmd: PluginSetCommand,
) -> anyhow::Result<()> {
    match cmd {
        PluginSetCommand::Apply { file } => {
            let documents = parse_documents(&read_document(&file)?)?;
            let mut answers = Vec::new();
            for document in documents {
                let answer = match client.put(&document.url, &document.body) {
                    Ok(answer) => answer,
                    Err(error) => {
                        // What was applied stays applied: say so in JSON too.
                        if out.output == Output::Json && !answers.is_empty() {
                            out.json(&Value::Array(answers));
                        }
                        return Err(anyhow::Error::new(error)
                            .context(format!("plugin set {} was refused", document.place)));
                    }
                };
                if out.output == Output::Table {
                    println!(
                        "applied plugin set {} ({}, revision {})",
                        document.place,
                        answer["digest"].as_str().unwrap_or("-"),
                        answer["revision"]
                    );
                }
                answers.push(answer);
            }
            if out.output == Output::Json {
                out.json(&Value::Array(answers));
            }
        }
        PluginSetCommand::Show { path } => {
            let set = client.get(&set_url(&path)?)?;
            match out.output {
                Output::Table => print!("{}", render(&set)),
                Output::Json => out.json(&set),
            }
        }
        PluginSetCommand::Delete { path } => {
            let answer = client.delete(&set_url(&path)?)?;
            out.done(&format!("deleted plugin set {path}"), &answer);
        }
    }
    Ok(())
}

/// The plugin sets of `org` a forced license change took plugins from, one line each.
pub(super) fn affected_lines(org: &str, answer: &Value) -> Vec<String> {
    answer["plugin_sets_affected"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|set| {
            let ws = set["workspace"].as_str().unwrap_or("?");
            let place = match set["environment"].as_str() {
                Some(env) => format!("{org}/{ws}/{env}"),
                None => format!("{org}/{ws}"),
            };
            let plugins: Vec<String> = set["plugins"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{} (needs {})",
                        p["id"].as_str().unwrap_or("?"),
                        p["entitlement"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            format!(
                "plugin set {place} is no longer entitled to: {}",
                plugins.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_seed_document_applies_to_its_workspace() {
        let docs = parse_documents(SEED).expect("the seed parses");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].place, "acme-corp/platform-team");
        assert_eq!(
            docs[0].url,
            "/v1/orgs/acme-corp/workspaces/platform-team/plugin-set"
        );
        assert_eq!(
            docs[0].body["plugins"][0],
            json!({"id": "identity.oidc", "config": null})
        );
        assert_eq!(
            docs[0].body["plugins"][1]["config"]["bundle"],
            "oci://policies.acme.com/platform-team:1.0"
        );
    }

    #[test]
    fn several_documents_and_environments_are_read() {
        let text = format!(
            "{SEED}---\napiVersion: mcpg.dev/v1\nkind: MCPGPluginSet\nmetadata: {{name: x}}\n\
             spec:\n  workspace: acme-corp/finance-team\n  environment: prod\n  plugins: []\n---\n"
        );
        let docs = parse_documents(&text).expect("two documents");
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[1].url,
            "/v1/orgs/acme-corp/workspaces/finance-team/environments/prod/plugin-set"
        );
        assert_eq!(docs[1].body, json!({"plugins": []}));
    }

    #[test]
    fn other_kinds_versions_and_shapes_are_refused_clearly() {
        let wrong_kind = SEED.replace("MCPGPluginSet", "ConfigMap");
        let error = format!("{:#}", parse_documents(&wrong_kind).expect_err("kind"));
        assert!(
            error.contains("kind \"ConfigMap\" is not supported"),
            "{error}"
        );
        let wrong_version = SEED.replace("mcpg.dev/v1", "mcpg.dev/v2");
        let error = format!(
            "{:#}",
            parse_documents(&wrong_version).expect_err("version")
        );
        assert!(error.contains("apiVersion \"mcpg.dev/v2\""), "{error}");
        let typo = SEED.replace("  plugins:", "  plugin:");
        let error = format!("{:#}", parse_documents(&typo).expect_err("typo"));
        assert!(
            error.contains("document 1") && error.contains("plugin"),
            "{error}"
        );
        let bare = SEED.replace("acme-corp/platform-team", "platform-team");
        assert!(parse_documents(&bare).is_err());
        assert!(parse_documents("").is_err());
    }

    #[test]
    fn sets_render_as_a_record_and_a_plugin_table() {
        let set = json!({"workspace": "ws", "environment": "prod", "inherited_from": "workspace",
            "digest": "sha256:ab", "revision": 2, "updated_at": "2026-12-06T00:00:00Z",
            "plugins": [{"id": "identity.oidc", "config": null},
                        {"id": "policy.cedar", "config": {"bundle": "b"}}]});
        let text = render(&set);
        assert!(text.contains("inherited from  workspace"), "{text}");
        assert!(text.contains("policy.cedar   {\"bundle\":\"b\"}"), "{text}");
        let affected = json!({"plugin_sets_affected": [{"workspace": "ws", "environment": "prod",
            "plugins": [{"id": "policy.cedar", "entitlement": "plugin:policy.cedar"}]}]});
        assert_eq!(
            affected_lines("acme", &affected),
            [
                "plugin set acme/ws/prod is no longer entitled to: policy.cedar (needs plugin:policy.cedar)"
            ]
        );
    }
}
