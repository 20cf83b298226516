//! `mcpg-auth backup` and `mcpg-auth restore`: the database settings are resolved as
//! `serve` resolves them (flags, `MCPG_*` variables, the TOML file), then the store's
//! backup module does the work; progress and the summary go to stderr.

use std::path::Path;

use anyhow::Context;

use super::config::{BackupArgs, RestoreArgs};
use crate::domain::settings::Settings;
use crate::infra::store::backup::{self, BackupSummary, BackupTarget};

/// Where the resolved settings say the database is (`sqlite`: the default SQLite file).
fn target<'a>(settings: &'a Settings, sqlite: &'a Path) -> BackupTarget<'a> {
    BackupTarget {
        url: settings.database_url.as_ref(),
        migrate_url: settings.migrate_database_url.as_ref(),
        default_sqlite: sqlite,
    }
}

/// One progress line on stderr.
fn report(line: &str) {
    eprintln!("  {line}");
}

/// Prints the summary and its notes.
fn finish(verb: &str, summary: &BackupSummary) {
    eprintln!("{verb} {summary}");
    for note in &summary.notes {
        eprintln!("note: {note}");
    }
}

/// Runs `mcpg-auth backup`.
pub async fn run_backup(args: BackupArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve_database(args.database, args.config)?;
    let sqlite = settings.data_dir.join("mcpg.db");
    let target = target(&settings, &sqlite);
    eprintln!("backing up to {}", args.out.display());
    let summary = backup::backup(&target, &args.out, &report)
        .await
        .context("backup failed")?;
    finish("backed up", &summary);
    Ok(())
}

/// Runs `mcpg-auth restore`.
pub async fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve_database(args.database, args.config)?;
    let sqlite = settings.data_dir.join("mcpg.db");
    let target = target(&settings, &sqlite);
    eprintln!("restoring from {}", args.from.display());
    let summary = backup::restore(&target, &args.from, args.force, &report)
        .await
        .context("restore failed")?;
    finish("restored", &summary);
    Ok(())
}
