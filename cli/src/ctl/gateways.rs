//! `mcpg-ctl gateway …`: register (one, or a fleet through `super::fleet`), list, show and
//! revoke. A gateway is named by its name (unique among its environment's unrevoked
//! gateways) or by its id.

use serde_json::{Value, json};
use thiserror::Error;

use super::access::encode;
use super::commands::{Printer, deliver_secret, segment};
use super::output::Column;
use super::{Client, ClientError, GatewayCommand};

pub(super) const GATEWAY_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("name", "name"),
    ("credential", "credential_prefix"),
    ("last token", "last_token_at"),
    ("revoked", "revoked_at"),
];

const GATEWAY_RECORD: &[Column] = &[
    ("id", "id"),
    ("name", "name"),
    ("workspace", "workspace"),
    ("environment", "environment"),
    ("credential", "credential_prefix"),
    ("created", "created_at"),
    ("last token", "last_token_at"),
    ("revoked", "revoked_at"),
];

/// Runs one `gateway` subcommand.
pub(super) fn run(client: &Client, out: &Printer, cmd: GatewayCommand) -> anyhow::Result<()> {
    match cmd {
        GatewayCommand::Register {
            path,
            name,
            credential_file,
            count,
            credentials_file,
        } => {
            let url = format!("{}/gateways", env_path(&path)?);
            if let (Some(count), Some(file)) = (count, credentials_file) {
                return super::fleet::register_many(client, out, &url, &name, count, &file);
            }
            let columns: &[Column] =
                &[("id", "id"), ("name", "name"), ("credential", "credential")];
            deliver_secret(
                out,
                credential_file.as_deref(),
                "credential",
                columns,
                || client.post(&url, &json!({"name": name})),
            )?;
        }
        GatewayCommand::List { path } => {
            let url = format!("{}/gateways", env_path(&path)?);
            out.list(&client.get_all(&url)?, GATEWAY_COLUMNS);
        }
        GatewayCommand::Show { path, gateway } => {
            let found = find(client, &path, &gateway, Want::Any)?;
            out.one(&found, GATEWAY_RECORD);
        }
        GatewayCommand::Revoke { path, gateway } => {
            let found = find(client, &path, &gateway, Want::Unrevoked)?;
            let id = found["id"].as_str().unwrap_or_default();
            let url = format!(
                "{}/gateways/{}",
                env_path(&path)?,
                segment(id, "gateway id", id)?
            );
            let answer = client.delete(&url)?;
            let name = found["name"].as_str().unwrap_or_default();
            out.done(&format!("revoked gateway {name:?} ({id})"), &answer);
        }
    }
    Ok(())
}

/// The server's gateways do not include the one named (exit code 1, like the server's
/// own refusals: the command was well formed).
#[derive(Debug, Error)]
#[error("{0}")]
pub struct NoSuchGateway(String);

/// Which gateway of a name a command wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// The unrevoked one, else the newest revoked one (`show`).
    Any,
    /// Only an unrevoked one (`revoke`).
    Unrevoked,
}

/// The gateway `wanted` of ORG/WS/ENV `path`: by id when it looks like one and exists,
/// else by name.
fn find(client: &Client, path: &str, wanted: &str, want: Want) -> anyhow::Result<Value> {
    let base = format!("{}/gateways", env_path(path)?);
    if looks_like_id(wanted) {
        match client.get(&format!("{base}/{wanted}")) {
            Ok(gateway) => return Ok(gateway),
            Err(ClientError::Api { status: 404, .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let named = client.get_all(&format!("{base}?name={}", encode(wanted)))?;
    let named = named.as_array().map(Vec::as_slice).unwrap_or_default();
    let unrevoked = named.iter().find(|g| g["revoked_at"].is_null());
    match (unrevoked, want) {
        (Some(gateway), _) => Ok(gateway.clone()),
        (None, Want::Any) if !named.is_empty() => Ok(named[named.len() - 1].clone()),
        (None, Want::Unrevoked) if !named.is_empty() => Err(NoSuchGateway(format!(
            "the gateway named {wanted:?} in {path} is already revoked; `mcpg-ctl gateway list {path}` lists its environment"
        ))
        .into()),
        _ => Err(NoSuchGateway(format!(
            "no gateway named {wanted:?} (nor with that id) in {path}; `mcpg-ctl gateway list {path}` lists its environment"
        ))
        .into()),
    }
}

/// A UUID's shape (`0193f2ab-…`, 36 characters): what the service's ids look like.
fn looks_like_id(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn env_path(path: &str) -> anyhow::Result<String> {
    super::commands::env_path(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_uuid_shape_is_taken_for_an_id() {
        assert!(looks_like_id("0193f2ab-7c1d-7e3a-9b2f-0c4d5e6f7a8b"));
        assert!(!looks_like_id("edge-1"));
        assert!(!looks_like_id("0193f2ab-7c1d-7e3a-9b2f-0c4d5e6f7a8"));
        assert!(!looks_like_id("0193f2ab-7c1d-7e3a-9b2f-0c4d5e6f7a8g"));
        assert!(!looks_like_id("0193f2ab07c1d-7e3a-9b2f-0c4d5e6f7a8b"));
    }
}
