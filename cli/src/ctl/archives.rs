//! `mcpg-ctl org archive …`: the archives of deleted orgs (global admins only).

use clap::Subcommand;
use serde_json::json;

use super::Client;
use super::commands::Printer;
use super::output::Column;

const ARCHIVE_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("org", "org"),
    ("deleted", "deleted_at"),
    ("purge at", "purge_at"),
    ("size", "size"),
];

const SHOW_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("org", "org"),
    ("org id", "org_id"),
    ("deleted", "deleted_at"),
    ("purge at", "purge_at"),
    ("size", "size"),
    ("restorable", "restorable"),
    ("chain ok", "chain_ok"),
    ("chain head", "chain_head"),
];

const ARCHIVE_LIST_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org archive list
  mcpg-ctl org archive list -o json";

const ARCHIVE_SHOW_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org archive show 0b6f…   # with its audit chain verified
  mcpg-ctl -o json org archive show 0b6f… > acme-archive.json";

const ARCHIVE_RESTORE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org archive list   # the id of acme-corp's archive
  mcpg-ctl org archive restore 0b6f…";

/// What a deleted org left: its export and audit chain, kept for the server's
/// `--retention` (default 30d), then purged.
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  mcpg-ctl org archive list
  mcpg-ctl org archive show 0b6f…   # with its audit chain verified
  mcpg-ctl -o json org archive show 0b6f… > acme-archive.json
  mcpg-ctl org archive restore 0b6f…")]
pub(super) enum ArchiveCommand {
    /// List the archives of deleted orgs, with when each is purged.
    #[command(after_help = ARCHIVE_LIST_EXAMPLE)]
    List,
    /// Show one archive and verify its audit chain (`-o json`: the whole archive, with
    /// the chain's entries and checkpoints, and the verification).
    #[command(after_help = ARCHIVE_SHOW_EXAMPLE)]
    Show {
        /// Archive id (from `org archive list`).
        id: String,
    },
    /// Recreate the org with its workspaces, environments, gateways (their credentials
    /// work again), license and role bindings; its audit chain continues. Refused once the
    /// retention has passed or when another org has the slug.
    #[command(after_help = ARCHIVE_RESTORE_EXAMPLE)]
    Restore {
        /// Archive id (from `org archive list`).
        id: String,
    },
}

fn archive_path(id: &str) -> anyhow::Result<String> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        anyhow::bail!("{id:?} is not an archive id (see `mcpg-ctl org archive list`)");
    }
    Ok(format!("/v1/admin/archives/{id}"))
}

pub(super) fn archive(client: &Client, out: &Printer, cmd: ArchiveCommand) -> anyhow::Result<()> {
    match cmd {
        ArchiveCommand::List => out.list(&client.get("/v1/admin/archives")?, ARCHIVE_COLUMNS),
        ArchiveCommand::Show { id } => {
            let path = archive_path(&id)?;
            let mut shown = client.get(&path)?;
            let report = client.post(&format!("{path}/verify"), &json!({}))?;
            shown["chain_ok"] = report["ok"].clone();
            shown["chain_head"] = report["chain"]["head_seq"].clone();
            shown["verification"] = report;
            out.one(&shown, SHOW_COLUMNS);
        }
        ArchiveCommand::Restore { id } => {
            let answer = client.post(&format!("{}/restore", archive_path(&id)?), &json!({}))?;
            let org = answer["org"].as_str().unwrap_or_default();
            out.done(&format!("restored org {org} from archive {id}"), &answer);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::archive_path;

    #[test]
    fn archive_ids_are_path_safe() {
        assert!(archive_path("0b6f2c1e-1234-4abc-9def-0123456789ab").is_ok());
        assert!(archive_path("../keys").is_err());
        assert!(archive_path("").is_err());
    }
}
