//! `mcpg-runtime`: what every MCPG service process needs around its own logic, in one place
//! so that `mcpg-auth` and `mcpg-entitlements` do not each keep a copy.
//!
//! - [`mod@files`]: reading the service's own files with a size cap, and only when they are
//!   regular files (a FIFO, `/dev/zero` or a directory is an error, never a hang);
//! - [`mod@serve`]: the HTTP/1 server loop, with a header-read timeout `axum::serve` lacks and
//!   a bounded drain at shutdown;
//! - [`mod@every`]: background work on a fixed period;
//! - [`mod@process`]: a closed stdout ends a CLI quietly instead of with a panic;
//! - [`mod@help`]: the check that every subcommand's `--help` shows examples;
//! - [`mod@output`]: the `-o, --output table|json` convention of the binaries;
//! - [`mod@reference`]: the README's CLI reference, generated from the clap definitions;
//! - [`mod@shell`]: shell completions and man pages from a binary's clap definition;
//! - [`mod@log`]: the log format (`text`/`json`) and the tracing subscriber, without ANSI
//!   colour unless stderr is a terminal.
//!
//! It depends on no MCPG crate.

pub mod every;
pub mod files;
pub mod help;
pub mod log;
pub mod output;
pub mod process;
pub mod reference;
pub mod serve;
pub mod shell;

pub use every::{FirstTick, every, every_with};
pub use files::{read_bounded, read_text};
pub use log::{LogFormat, init_tracing};
pub use process::exit_quietly_on_broken_pipe;
pub use serve::{ServeOptions, serve};
