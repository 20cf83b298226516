//! The process's log output: `text` or `json` lines on stderr, filtered by `MCPG_LOG`, with
//! ANSI colour only when stderr is a terminal (a file, a pipe or a log collector gets plain
//! text, never escape codes).

use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// Log output format (`--log-format`, `log_format` in a config file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the tracing subscriber: `format` on stderr, the filter from `MCPG_LOG` (else
/// `default_filter`, e.g. `info`). Safe to call more than once: later calls do nothing.
pub fn init_tracing(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_env("MCPG_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
