//! `mcpg-license`: offline signing for MCPG. See `mcpg-license --help`.

use std::process::ExitCode;

use mcpg_cli::license::{self, EXIT_ERROR};

fn main() -> ExitCode {
    mcpg_runtime::exit_quietly_on_broken_pipe();
    match license::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
