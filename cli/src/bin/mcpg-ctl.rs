//! `mcpg-ctl`: operate an mcpg-auth federation service. See `mcpg-ctl --help`.

use std::process::ExitCode;

use mcpg_cli::ctl;

fn main() -> ExitCode {
    match ctl::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(ctl::exit_code_for(&err))
        }
    }
}
