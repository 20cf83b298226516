//! `mcpg-ctl rbac …` and `mcpg-ctl user token …`: role bindings and personal API tokens.

use std::path::PathBuf;

use anyhow::bail;
use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::Client;
use super::commands::{Printer, deliver_secret, org_path, segment};
use super::output::Column;

/// `active` is false for a binding the org's license no longer entitles (tier gating at
/// use); `inactive` then says why and `needs` which entitlement would bring it back.
const BINDING_COLUMNS: &[Column] = &[
    ("email", "email"),
    ("role", "role"),
    ("scope", "scope"),
    ("active", "active"),
    ("inactive", "inactive"),
    ("needs", "required_entitlement"),
    ("created", "created_at"),
];
const TOKEN_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("name", "name"),
    ("token", "token_prefix"),
    ("created", "created_at"),
    ("revoked", "revoked_at"),
];

const RBAC_GRANT_EXAMPLE: &str = "\
Examples:
  mcpg-ctl rbac grant alice@acme.com admin --on org/acme-corp
  mcpg-ctl rbac grant bob@acme.com operator --on workspace/acme-corp/platform-team
  mcpg-ctl rbac grant carol@acme.com viewer --on env/acme-corp/platform-team/prod";

const RBAC_LIST_EXAMPLE: &str = "\
Examples:
  mcpg-ctl rbac list acme-corp
  mcpg-ctl rbac list acme-corp -o json";

const RBAC_REVOKE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl rbac revoke bob@acme.com operator --on workspace/acme-corp/platform-team
  mcpg-ctl rbac revoke carol@acme.com viewer --on env/acme-corp/platform-team/prod";

const USER_TOKEN_EXAMPLE: &str = "\
Examples:
  mcpg-ctl user token create alice@acme.com --org acme-corp --name laptop
  mcpg-ctl user token list alice@acme.com --org acme-corp
  mcpg-ctl user token revoke alice@acme.com 0b6f… --org acme-corp";

const USER_TOKEN_CREATE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl user token create alice@acme.com --org acme-corp
  mcpg-ctl user token create alice@acme.com --org acme-corp --name laptop --out alice.token";

const USER_TOKEN_LIST_EXAMPLE: &str = "\
Examples:
  mcpg-ctl user token list alice@acme.com --org acme-corp
  mcpg-ctl user token list alice@acme.com --org acme-corp -o json";

const USER_TOKEN_REVOKE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl user token list alice@acme.com --org acme-corp   # the id
  mcpg-ctl user token revoke alice@acme.com 0b6f… --org acme-corp";

/// Role bindings.
#[derive(Debug, Subcommand)]
pub(super) enum RbacCommand {
    /// Bind a role: `rbac grant alice@acme.com admin --on org/acme-corp`.
    #[command(after_help = RBAC_GRANT_EXAMPLE)]
    Grant {
        /// The user's email.
        email: String,
        /// admin, operator or viewer.
        role: String,
        /// org/ORG (admin), workspace/ORG/WS (operator) or env/ORG/WS/ENV (viewer).
        #[arg(long)]
        on: String,
    },
    /// List the role bindings of ORG.
    #[command(after_help = RBAC_LIST_EXAMPLE)]
    List {
        /// Org slug.
        org: String,
    },
    /// Remove a binding: `rbac revoke alice@acme.com admin --on org/acme-corp`.
    #[command(after_help = RBAC_REVOKE_EXAMPLE)]
    Revoke {
        /// The user's email.
        email: String,
        /// admin, operator or viewer.
        role: String,
        /// Where it was bound, as for grant.
        #[arg(long)]
        on: String,
    },
}

/// Users.
#[derive(Debug, Subcommand)]
pub(super) enum UserCommand {
    /// A user's personal API tokens (mcpg_pat_…).
    #[command(subcommand)]
    #[command(after_help = USER_TOKEN_EXAMPLE)]
    Token(TokenCommand),
}

/// Personal API tokens.
#[derive(Debug, Subcommand)]
pub(super) enum TokenCommand {
    /// Issue a token to the user; it is printed once.
    #[command(after_help = USER_TOKEN_CREATE_EXAMPLE)]
    Create {
        /// The user's email.
        email: String,
        /// Org slug.
        #[arg(long)]
        org: String,
        /// A name to tell tokens apart.
        #[arg(long)]
        name: Option<String>,
        /// Write the token to this new file (mode 0600) instead of printing it. (Not
        /// `--token-file`: that global flag names the caller's own token.)
        #[arg(long = "out", value_name = "FILE")]
        out_file: Option<PathBuf>,
    },
    /// List the user's tokens (never the tokens themselves).
    #[command(after_help = USER_TOKEN_LIST_EXAMPLE)]
    List {
        /// The user's email.
        email: String,
        /// Org slug.
        #[arg(long)]
        org: String,
    },
    /// Revoke one of the user's tokens.
    #[command(after_help = USER_TOKEN_REVOKE_EXAMPLE)]
    Revoke {
        /// The user's email.
        email: String,
        /// Token id (from `user token list`).
        id: String,
        /// Org slug.
        #[arg(long)]
        org: String,
    },
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub(super) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `org/ORG`, `workspace/ORG/WS` or `env/ORG/WS/ENV` → the org and the binding's fields.
fn scope(on: &str) -> anyhow::Result<(String, Map<String, Value>)> {
    let parts: Vec<&str> = on.split('/').collect();
    let shape = "--on must be org/ORG, workspace/ORG/WS or env/ORG/WS/ENV";
    let names = ["org", "workspace", "environment"];
    let slugs = match (parts.first().copied(), parts.len()) {
        (Some("org"), 2) | (Some("workspace"), 3) | (Some("env" | "environment"), 4) => &parts[1..],
        _ => bail!("{on:?}: {shape}"),
    };
    let mut fields = Map::new();
    let mut org = String::new();
    for (i, part) in slugs.iter().enumerate() {
        let slug = segment(part, names[i], on)?;
        match i {
            0 => org = slug,
            _ => {
                fields.insert(names[i].into(), slug.into());
            }
        }
    }
    Ok((org, fields))
}

fn binding(email: &str, role: &str, on: &str) -> anyhow::Result<(String, Map<String, Value>)> {
    if !matches!(role, "admin" | "operator" | "viewer") {
        bail!("role {role:?} must be admin, operator or viewer");
    }
    let (org, mut fields) = scope(on)?;
    fields.insert("email".into(), email.into());
    fields.insert("role".into(), role.into());
    Ok((org, fields))
}

pub(super) fn rbac(client: &Client, out: &Printer, cmd: RbacCommand) -> anyhow::Result<()> {
    match cmd {
        RbacCommand::Grant { email, role, on } => {
            let (org, body) = binding(&email, &role, &on)?;
            let url = format!("{}/rbac/bindings", org_path(&org)?);
            out.one(&client.post(&url, &Value::Object(body))?, BINDING_COLUMNS);
        }
        RbacCommand::List { org } => {
            let url = format!("{}/rbac/bindings", org_path(&org)?);
            out.list(&client.get_all(&url)?, BINDING_COLUMNS);
        }
        RbacCommand::Revoke { email, role, on } => {
            let (org, fields) = binding(&email, &role, &on)?;
            let query: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v.as_str().unwrap_or_default())))
                .collect();
            let url = format!("{}/rbac/bindings?{}", org_path(&org)?, query.join("&"));
            let answer = client.delete(&url)?;
            out.done(&format!("revoked {role} of {email} on {on}"), &answer);
        }
    }
    Ok(())
}

fn tokens_url(org: &str, email: &str) -> anyhow::Result<String> {
    if email.trim().is_empty() {
        bail!("the email must not be empty");
    }
    Ok(format!("{}/users/{}/tokens", org_path(org)?, encode(email)))
}

pub(super) fn user(client: &Client, out: &Printer, cmd: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Token(cmd) = cmd;
    match cmd {
        TokenCommand::Create {
            email,
            org,
            name,
            out_file,
        } => {
            let url = tokens_url(&org, &email)?;
            let body = name.map_or_else(|| json!({}), |name| json!({"name": name}));
            let columns: &[Column] = &[("id", "id"), ("email", "email"), ("token", "token")];
            deliver_secret(out, out_file.as_deref(), "token", columns, || {
                client.post(&url, &body)
            })?;
        }
        TokenCommand::List { email, org } => {
            out.list(&client.get_all(&tokens_url(&org, &email)?)?, TOKEN_COLUMNS);
        }
        TokenCommand::Revoke { email, id, org } => {
            let url = format!(
                "{}/{}",
                tokens_url(&org, &email)?,
                segment(&id, "token id", &id)?
            );
            let answer = client.delete(&url)?;
            out.done(&format!("revoked token {id} of {email}"), &answer);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_name_the_org_and_the_binding_fields() {
        let (org, fields) = scope("env/acme/platform/prod").expect("valid");
        assert_eq!(org, "acme");
        assert_eq!(fields["workspace"], "platform");
        assert_eq!(fields["environment"], "prod");
        assert!(scope("org/acme").expect("valid").1.is_empty());
        for bad in ["acme", "org/acme/x", "workspace/acme", "env/a/b", "org/a?b"] {
            assert!(scope(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(encode("a+b@c.d"), "a%2Bb%40c.d");
    }

    #[test]
    fn the_binding_list_shows_which_bindings_the_license_leaves_inert() {
        let rows = [
            json!({"email": "a@x.com", "role": "admin", "scope": "org/acme", "active": true,
                   "created_at": "2026-01-01T00:00:00Z"}),
            json!({"email": "o@x.com", "role": "operator", "scope": "workspace/acme/ws",
                   "active": false, "inactive": "entitlement_required",
                   "required_entitlement": "feature:workspace.rbac",
                   "created_at": "2026-01-01T00:00:00Z"}),
        ];
        let text = super::super::output::table(&rows, BINDING_COLUMNS);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("INACTIVE") && lines[0].contains("NEEDS"),
            "{text}"
        );
        assert!(lines[1].contains("true") && lines[1].ends_with("2026-01-01T00:00:00Z"));
        assert!(
            lines[2].contains("false")
                && lines[2].contains("entitlement_required")
                && lines[2].contains("feature:workspace.rbac"),
            "{text}"
        );
    }
}
