//! `mcpg-ctl tenants …`: apply a tenants.yaml through the API and print the plan.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;

use super::commands::Printer;
use super::output::{Column, table};
use super::{Client, Output};

const PLAN_COLUMNS: &[Column] = &[
    ("action", "action"),
    ("kind", "kind"),
    ("path", "path"),
    ("detail", "detail"),
];
const STATUS_COLUMNS: &[Column] = &[
    ("file", "file"),
    ("prune", "prune"),
    ("generation", "generation"),
    ("applied at", "applied_at"),
    ("applied sha256", "applied_sha256"),
    ("last changes", "last_changes"),
    ("last error", "last_error"),
    ("last error at", "last_error_at"),
];

const TENANTS_APPLY_EXAMPLE: &str = "\
Examples:
  mcpg-ctl tenants apply -f tenants.yaml --dry-run
  mcpg-ctl tenants apply -f tenants.yaml --prune
  mcpg-ctl tenants apply -f tenants.yaml --dry-run --detailed-exitcode   # CI: 2 when the server differs";

const TENANTS_STATUS_EXAMPLE: &str = "\
Examples:
  mcpg-ctl tenants status
  mcpg-ctl tenants status -o json";

/// Tenants as code.
#[derive(Debug, Subcommand)]
pub(super) enum TenantsCommand {
    /// Apply a tenants.yaml: prints the plan (create/update/delete per object) and applies
    /// it in one transaction; an invalid file changes nothing and the error names its line.
    #[command(after_help = TENANTS_APPLY_EXAMPLE)]
    Apply {
        /// The tenants.yaml (`-` reads standard input).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        /// Also delete managed orgs, workspaces and environments the file no longer names
        /// (never what was made through the API).
        #[arg(long)]
        prune: bool,
        /// Print the plan without changing anything.
        #[arg(long)]
        dry_run: bool,
        /// Exit 2 when the plan has changes (0 when there are none, 1 when the server
        /// refuses), as `terraform plan -detailed-exitcode` does: for CI checks that the
        /// server matches the file (`--dry-run --detailed-exitcode`).
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// What the server's tenants file reloader (`mcpg-auth serve --tenants`) did last.
    #[command(after_help = TENANTS_STATUS_EXAMPLE)]
    Status,
}

/// The text of `file`, or of standard input for `-`.
pub(super) fn read_document(file: &Path) -> anyhow::Result<String> {
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the document from standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

/// The plan as a table and a one-line summary.
fn render_plan(plan: &Value) -> String {
    let changes = plan["changes"].as_array().cloned().unwrap_or_default();
    let count = |action: &str| {
        changes
            .iter()
            .filter(|c| c["action"].as_str() == Some(action))
            .count()
    };
    let mut text = if changes.is_empty() {
        "no changes\n".to_owned()
    } else {
        table(&changes, PLAN_COLUMNS)
    };
    let outcome = if plan["dry_run"].as_bool() == Some(true) {
        "dry run: nothing was changed"
    } else {
        "applied"
    };
    text.push_str(&format!(
        "{} to create, {} to update, {} to delete, {} kept, {} unchanged ({outcome})\n",
        count("create"),
        count("update"),
        count("delete"),
        count("keep"),
        plan["unchanged"].as_u64().unwrap_or(0),
    ));
    text
}

/// The exit code of `--detailed-exitcode` when the plan has changes.
const EXIT_CHANGES: u8 = 2;

pub(super) fn tenants(
    client: &Client,
    out: &Printer,
    cmd: TenantsCommand,
) -> anyhow::Result<ExitCode> {
    match cmd {
        TenantsCommand::Apply {
            file,
            prune,
            dry_run,
            detailed_exitcode,
        } => {
            let document = read_document(&file)?;
            let url = format!("/v1/admin/tenants/apply?prune={prune}&dry_run={dry_run}");
            let plan = client.post_yaml(&url, document)?;
            match out.output {
                Output::Table => print!("{}", render_plan(&plan)),
                Output::Json => out.json(&plan),
            }
            if detailed_exitcode && has_changes(&plan) {
                return Ok(ExitCode::from(EXIT_CHANGES));
            }
        }
        TenantsCommand::Status => out.one(&client.get("/v1/admin/tenants/status")?, STATUS_COLUMNS),
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a plan creates, updates or deletes anything (`keep` rows change nothing).
fn has_changes(plan: &Value) -> bool {
    plan["changes"]
        .as_array()
        .is_some_and(|changes| changes.iter().any(|c| c["action"].as_str() != Some("keep")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plans_print_one_row_per_change_and_a_summary() {
        let plan = json!({
            "dry_run": true,
            "unchanged": 2,
            "changes": [
                {"action": "create", "kind": "org", "path": "team-a", "detail": "\"Team A\", active"},
                {"action": "delete", "kind": "workspace", "path": "team-b/old", "detail": "pruned"},
            ],
        });
        let text = render_plan(&plan);
        assert!(
            text.starts_with("ACTION  KIND       PATH        DETAIL\n"),
            "{text}"
        );
        assert!(text.contains("create  org        team-a"), "{text}");
        assert!(text.ends_with(
            "1 to create, 0 to update, 1 to delete, 0 kept, 2 unchanged (dry run: nothing was changed)\n"
        ), "{text}");
        assert!(render_plan(&json!({"changes": [], "unchanged": 0})).starts_with("no changes\n"));
        assert!(has_changes(&plan));
        assert!(!has_changes(&json!({"changes": [{"action": "keep"}]})));
        assert!(!has_changes(&json!({"changes": []})));
    }
}
