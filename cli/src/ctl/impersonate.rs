//! `mcpg-ctl impersonate ORG --reason … --for 30m`: a global admin obtains a token that
//! acts inside one org as its admin for a bounded time (at most an hour). The service logs
//! the token's creation and every request made with it, naming the admin's token.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use mcpg_license_core::duration::parse_duration;
use serde_json::json;

use super::Client;
use super::commands::{Printer, deliver_secret, slug_segment};
use super::output::Column;

/// The longest impersonation the service grants, in minutes.
const MAX_MINUTES: i64 = 60;

const COLUMNS: &[Column] = &[
    ("id", "id"),
    ("org", "org"),
    ("reason", "reason"),
    ("expires", "expires_at"),
    ("token", "token"),
];

/// Act inside an org as its admin, for at most an hour (global admins only).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mcpg-ctl impersonate acme-corp --reason \"ticket 4711: gateway cannot refresh\" --for 30m --out acme.token
  MCPG_TOKEN_FILE=acme.token mcpg-ctl gateway list acme-corp/platform-team/prod")]
pub(super) struct Impersonate {
    /// Org slug.
    org: String,
    /// Why: kept with the token and logged with it (e.g. a ticket number).
    #[arg(long)]
    reason: String,
    /// How long the token lasts: whole minutes from 1m to 60m (also 1h).
    #[arg(long = "for", value_name = "DURATION", default_value = "30m")]
    duration: String,
    /// Write the token to this new file (mode 0600) instead of printing it.
    #[arg(long = "out", value_name = "FILE")]
    out_file: Option<PathBuf>,
}

/// The duration as whole minutes within the service's bound, checked before any request.
fn minutes(duration: &str) -> anyhow::Result<i64> {
    let seconds = parse_duration(duration)?;
    if seconds % 60 != 0 || !(1..=MAX_MINUTES).contains(&(seconds / 60)) {
        bail!("--for {duration:?} must be whole minutes from 1m to {MAX_MINUTES}m");
    }
    Ok(seconds / 60)
}

/// Asks for the impersonation token and prints it once (or writes it to `--out`).
pub(super) fn impersonate(client: &Client, out: &Printer, args: Impersonate) -> anyhow::Result<()> {
    let org = slug_segment(&args.org, "org", &args.org)?;
    let reason = args.reason.trim();
    if reason.is_empty() {
        bail!("--reason must say why (it is kept with the token)");
    }
    let body = json!({"org": org, "minutes": minutes(&args.duration)?, "reason": reason});
    deliver_secret(out, args.out_file.as_deref(), "token", COLUMNS, || {
        client.post("/v1/admin/impersonations", &body)
    })
}

#[cfg(test)]
mod tests {
    use super::minutes;

    #[test]
    fn durations_are_whole_minutes_up_to_an_hour() {
        assert_eq!(minutes("30m").expect("30m"), 30);
        assert_eq!(minutes("1h").expect("1h"), 60);
        assert_eq!(minutes("120s").expect("120s"), 2);
        for refused in ["90s", "2h", "0m", "soon", "61m"] {
            assert!(minutes(refused).is_err(), "{refused}");
        }
    }
}
