//! `mcpg-ctl`: operate an mcpg-auth federation service. See `mcpg-ctl --help`.

use std::process::ExitCode;

use mcpg_cli::ctl;

fn main() -> ExitCode {
    mcpg_runtime::exit_quietly_on_broken_pipe();
    match ctl::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(ctl::exit_code_for(&err))
        }
    }
}
