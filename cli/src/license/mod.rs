//! `mcpg-license`: the offline signing tool. Key generation, offline licenses, issuer
//! certificates, revocation lists, verification, inspection and JWKS export.
//!
//! Each subcommand parses its arguments with clap, resolves them into a plain request
//! (keys read, certificate decoded, entitlements computed) and only then does its work,
//! so the work itself is testable without a command line.

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use mcpg_license_core::clock::parse_rfc3339;
use mcpg_license_core::duration::parse_duration;
use mcpg_license_core::{Clock, SystemClock, UnixTime};
use mcpg_runtime::output::Output;

pub mod certify;
pub mod custody;
pub mod inspect;
pub mod issue;
pub mod keys;
pub mod renew;
pub mod revoke;
pub mod shares;
pub mod usage;
pub mod verify;

/// Exit status: success, or for `verify` a valid license or certificate.
pub const EXIT_OK: u8 = 0;
/// Exit status of `verify` when the file was checked and is not valid.
pub const EXIT_INVALID: u8 = 1;
/// Exit status for usage errors, unreadable or malformed input and refused operations.
pub const EXIT_ERROR: u8 = 2;

const EXAMPLES: &str = "\
Examples:
  # A root key, an offline license signed by it, and the check a gateway makes
  mcpg-license keygen --out ./keys --name acme-root
  mcpg-license issue --key ./keys/acme-root.secret.paserk --org acme --tier team \\
      --out acme.license
  mcpg-license verify acme.license --trust ./keys/acme-root.public.paserk

  # What a license or certificate claims (without checking its signature)
  mcpg-license inspect acme.license

Exit codes:
  0  success; for verify: the license or certificate is valid
  1  verify only: the file was read and checked, and it is not valid
     (one `error:` line on stderr with the reason and its code, e.g. [expired])
  2  usage error, missing or unreadable file, a key of the wrong kind, bad input,
     or an operation refused (existing output, license outside its certificate)";

/// The `mcpg-license` command line.
#[derive(Debug, Parser)]
#[command(
    name = "mcpg-license",
    version = crate::VERSION,
    about = "Offline signing for MCPG: keys, offline licenses, issuer certificates",
    long_about = "Offline signing for MCPG: keys, offline licenses, issuer certificates.\n\n\
        Gateways pin only root public keys. A root signs offline licenses directly, or \
        certifies an issuer key (bounded to orgs, a maximum tier and entitlements) that \
        then signs licenses and online tokens. Keep root secrets on an offline machine; \
        see keys/README.md for the key ceremony.",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Output format of the commands that print data (verify, inspect, issue, certify,
    /// revoke, keygen): JSON goes to stdout alone, messages to stderr.
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an Ed25519 key pair (a root or an issuer key)
    #[command(after_help = keys::KEYGEN_EXAMPLES)]
    Keygen(keys::KeygenArgs),
    /// Sign an offline license (PASETO v4.public), one year by default
    #[command(after_help = issue::EXAMPLES)]
    Issue(issue::IssueArgs),
    /// Certify an issuer key with a root key, within bounds
    #[command(after_help = certify::EXAMPLES)]
    Certify(certify::CertifyArgs),
    /// Verify an offline license or an issuer certificate against trusted roots
    #[command(after_help = verify::EXAMPLES)]
    Verify(verify::VerifyArgs),
    /// Show what a license, certificate or online token claims, WITHOUT verifying it
    #[command(after_help = inspect::EXAMPLES)]
    Inspect(inspect::InspectArgs),
    /// Sign a revocation list of certificates and offline licenses
    #[command(after_help = revoke::EXAMPLES)]
    Revoke(revoke::RevokeArgs),
    /// Print a JWKS document for public keys
    #[command(after_help = keys::JWKS_EXAMPLES)]
    Jwks(keys::JwksArgs),
    /// Usage receipts of air-gapped sites: verify a bundle with no server
    #[command(subcommand, after_help = usage::EXAMPLES)]
    Usage(usage::UsageCommand),
    /// Print a shell completion script to standard output
    #[command(after_help = COMPLETION_EXAMPLES)]
    Completion(mcpg_runtime::shell::CompletionArgs),
    /// Write man pages, one per command and subcommand, into a directory
    #[command(after_help = MAN_EXAMPLES)]
    Man(mcpg_runtime::shell::ManArgs),
}

const COMPLETION_EXAMPLES: &str = "\
Examples:
  mcpg-license completion bash > /etc/bash_completion.d/mcpg-license
  mcpg-license completion zsh > \"${fpath[1]}/_mcpg-license\"
  mcpg-license completion fish > ~/.config/fish/completions/mcpg-license.fish";

const MAN_EXAMPLES: &str = "\
Examples:
  mcpg-license man --out /usr/local/share/man/man1
  man mcpg-license-issue";

/// Parses the command line and runs it. Usage errors exit here with status 2 (clap's
/// convention); other errors are returned for `main` to print once.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let now = SystemClock.now();
    let output = cli.output;
    match cli.command {
        Command::Keygen(args) => keys::keygen(&args, output),
        Command::Issue(args) => issue::run(&args, now, output),
        Command::Certify(args) => certify::run(&args, now, output),
        Command::Verify(args) => verify::run(&args, now, output),
        Command::Inspect(args) => inspect::run(&args, now, output),
        Command::Revoke(args) => revoke::run(&args, now, output),
        Command::Jwks(args) => keys::jwks(&args),
        Command::Usage(command) => usage::run(&command, output),
        Command::Completion(args) => {
            mcpg_runtime::shell::print_completion(Cli::command(), args.shell);
            Ok(ExitCode::SUCCESS)
        }
        Command::Man(args) => {
            let pages = mcpg_runtime::shell::write_man_pages(Cli::command(), &args.out)
                .with_context(|| format!("cannot write man pages to {}", args.out.display()))?;
            eprintln!("wrote {} man pages to {}", pages.len(), args.out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// clap value parser for RFC 3339 times (`2027-01-01T00:00:00Z`).
pub fn parse_time(text: &str) -> Result<UnixTime, String> {
    parse_rfc3339(text)
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 time, e.g. 2027-01-01T00:00:00Z"))
}

/// clap value parser for durations (`90s`, `15m`, `24h`, `365d`).
pub fn parse_span(text: &str) -> Result<i64, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

/// Prints a warning when a secret key file is readable by group or others.
pub(crate) fn warn_if_exposed(path: &std::path::Path) {
    if let Some(mode) = crate::files::loose_permissions(path) {
        eprintln!(
            "warning: secret key {} has mode {mode:04o}; run `chmod 600` on it",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn readme_cli_reference_is_current() {
        let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        if let Err(stale) = mcpg_runtime::reference::check_readme(&Cli::command(), &readme) {
            panic!("{stale}");
        }
    }

    #[test]
    fn a_deployment_key_that_begins_with_a_hyphen_is_a_value() {
        // One base64url key in 64 begins with `-`: clap must not read it as a flag.
        let key = "-70zCs9DBNUkU_xtFm_4HiwiXrbBjA4JZQg7h8NKMwM";
        let cli = Cli::try_parse_from([
            "mcpg-license",
            "usage",
            "verify",
            "usage.json",
            "--deployment-key",
            key,
            "--after-seq",
            "1",
            "--after-hash",
            "0a1e",
        ])
        .expect("the key is parsed as the option's value");
        let Command::Usage(usage::UsageCommand::Verify(args)) = cli.command else {
            panic!("parsed as another command: {cli:?}");
        };
        assert_eq!(args.deployment_key.as_deref(), Some(key));
    }

    #[test]
    fn every_subcommand_has_examples() {
        let missing = mcpg_runtime::help::subcommands_without_examples(&Cli::command());
        assert!(
            missing.is_empty(),
            "no Examples: in the help of {missing:#?}"
        );
    }
}
