//! `mcpg-auth serve`: runs the federation service.

use std::process::ExitCode;

use clap::Parser;
use mcpg_auth::{Application, Settings, init_tracing};
use mcpg_auth::{Cli, Command};

/// mimalloc instead of the system allocator: the token endpoint allocates and frees many
/// small buffers per request, and glibc's malloc/free were ~7 % of its profile.
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
    let cli = Cli::parse();
    let Command::Serve(args) = cli.command;
    let settings = Settings::resolve(args)?;
    init_tracing(settings.log_format);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await
    })?;
    Ok(ExitCode::SUCCESS)
}
