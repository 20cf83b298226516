//! `mcpg-auth serve`: runs the federation service; `backup` and `restore` copy its
//! database to a file and back.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use mcpg_auth::{Application, Settings, init_tracing};
use mcpg_auth::{Cli, Command, run_backup, run_restore};

/// mimalloc instead of the system allocator: the token endpoint allocates and frees many
/// small buffers per request, and glibc's malloc/free were ~7 % of its profile. The
/// `system-allocator` feature leaves the system's, for heap profilers that hook malloc
/// (heaptrack; docs/BENCHMARKS.md).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let args = match Cli::parse().into_command() {
        Command::Serve(args) => *args,
        Command::Backup(args) => return maintenance(run_backup(args)),
        Command::Restore(args) => return maintenance(run_restore(args)),
        Command::Completion(args) => {
            mcpg_runtime::shell::print_completion(Cli::command(), args.shell);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man(args) => {
            let pages =
                mcpg_runtime::shell::write_man_pages(Cli::command(), &args.out).map_err(|e| {
                    anyhow::anyhow!("cannot write man pages to {}: {e}", args.out.display())
                })?;
            eprintln!("wrote {} man pages to {}", pages.len(), args.out.display());
            return Ok(ExitCode::SUCCESS);
        }
    };
    let settings = Settings::resolve(args)?;
    init_tracing(settings.log_format);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `backup` or `restore` on a runtime of its own.
fn maintenance(
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(work)?;
    Ok(ExitCode::SUCCESS)
}
