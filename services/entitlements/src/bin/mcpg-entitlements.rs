//! `mcpg-entitlements`: status, plugin checks and a sidecar endpoint for one `gateway.toml`.
//!
//! Exit codes: 0 allowed / success, 1 denied (`check`), 2 error.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use axum::routing::get;
use clap::{CommandFactory, Parser, Subcommand};
use mcpg_entitlements::timeline::Timeline;
use mcpg_entitlements::{Gateway, GatewayBuilder, GatewayConfig, Mode, TenantKey, sidecar};
use mcpg_runtime::output::Output;
use mcpg_runtime::{LogFormat, init_tracing};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;

/// The package version and the commit built.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MCPG_COMMIT"),
    ")"
);

/// Gateway-side MCPG licensing: status, plugin checks and a sidecar.
#[derive(Debug, Parser)]
#[command(version = VERSION, about)]
struct Cli {
    /// The gateway configuration file (before or after the subcommand).
    #[arg(
        long,
        global = true,
        env = "MCPG_GATEWAY_CONFIG",
        default_value = "gateway.toml"
    )]
    config: PathBuf,
    /// Do not contact the federation; answer from the state directory only.
    #[arg(long, global = true)]
    no_refresh: bool,
    /// Log lines as `text` or `json` on stderr (default: `log_format` in the config, else
    /// text); never coloured unless stderr is a terminal.
    #[arg(long, global = true, value_enum, env = "MCPG_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Output format of status and check: JSON goes to stdout alone, logs to stderr.
    #[arg(long, short, value_enum, global = true, default_value_t = Output::Table)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

const STATUS_EXAMPLE: &str = "\
Examples:
  mcpg-entitlements status
  mcpg-entitlements status -o json --config /etc/mcpg/gateway.toml
  mcpg-entitlements status --no-refresh";

const CHECK_EXAMPLE: &str = "\
Examples:
  mcpg-entitlements check policy.cedar
  mcpg-entitlements check policy.cedar --tenant acme-corp/platform-team/prod -o json
  mcpg-entitlements check policy.cedar --no-refresh --config /etc/mcpg/gateway.toml";

const SERVE_EXAMPLE: &str = "\
Examples:
  mcpg-entitlements serve
  mcpg-entitlements serve --listen 0.0.0.0:8431 --config /etc/mcpg/gateway.toml
  mcpg-entitlements serve --listen 127.0.0.1:0";

#[derive(Debug, Subcommand)]
enum Command {
    /// Shows the mode, every tenant's state, tier and license, and the refresh status.
    #[command(after_help = STATUS_EXAMPLE)]
    Status {
        /// The same as `-o json`.
        #[arg(long, hide = true)]
        json: bool,
    },
    /// Checks one plugin: exit 0 when allowed, 1 when denied, 2 on error.
    #[command(after_help = CHECK_EXAMPLE)]
    Check {
        /// The plugin id (e.g. policy.cedar).
        plugin: String,
        /// The tenant as ORG/WS/ENV (default: the gateway's own).
        #[arg(long)]
        tenant: Option<String>,
        /// The same as `-o json`.
        #[arg(long, hide = true)]
        json: bool,
    },
    /// Serves GET /v1/check, /v1/plugin-set, /v1/limits/servers, /v1/status and /metrics,
    /// refreshing in the background.
    #[command(after_help = SERVE_EXAMPLE)]
    Serve {
        /// Address to listen on (port 0 picks a free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:8431")]
        listen: String,
    },
    /// The offline usage ledger: export its signed days for the vendor.
    #[command(subcommand, after_help = USAGE_EXAMPLE)]
    Usage(UsageCommand),
    /// Print a shell completion script to standard output.
    #[command(after_help = COMPLETION_EXAMPLE)]
    Completion(mcpg_runtime::shell::CompletionArgs),
    /// Write man pages, one per command and subcommand, into a directory.
    #[command(after_help = MAN_EXAMPLE)]
    Man(mcpg_runtime::shell::ManArgs),
}

#[derive(Debug, Subcommand)]
enum UsageCommand {
    /// Writes the ledger's recorded days (signed, hash-chained) as a bundle, with the
    /// deployment's public key and the license, for `mcpg-license usage verify` or
    /// `mcpg-ctl usage import` (offline mode only).
    #[command(after_help = USAGE_EXPORT_EXAMPLE)]
    Export {
        /// The bundle file to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
        /// Only days from this one on (YYYY-MM-DD); default: every recorded day.
        #[arg(long)]
        since: Option<String>,
    },
}

const USAGE_EXAMPLE: &str = "\
Examples:
  mcpg-entitlements usage export --out usage-2026-11.json
  mcpg-entitlements usage export --out usage.json --since 2026-11-01 -o json";

const USAGE_EXPORT_EXAMPLE: &str = "\
Examples:
  mcpg-entitlements usage export --out usage.json
  mcpg-entitlements usage export --out usage-nov.json --since 2026-11-01
  mcpg-entitlements usage export --out usage.json -o json --config /etc/mcpg/gateway.toml";

const COMPLETION_EXAMPLE: &str = "\
Examples:
  mcpg-entitlements completion bash > /etc/bash_completion.d/mcpg-entitlements
  mcpg-entitlements completion zsh > \"${fpath[1]}/_mcpg-entitlements\"
  mcpg-entitlements completion fish > ~/.config/fish/completions/mcpg-entitlements.fish";

const MAN_EXAMPLE: &str = "\
Examples:
  mcpg-entitlements man --out /usr/local/share/man/man1
  man mcpg-entitlements-check";

fn main() -> ExitCode {
    mcpg_runtime::exit_quietly_on_broken_pipe();
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // Completions and man pages need no gateway.toml.
    match &cli.command {
        Command::Completion(args) => {
            mcpg_runtime::shell::print_completion(Cli::command(), args.shell);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man(args) => {
            let pages = mcpg_runtime::shell::write_man_pages(Cli::command(), &args.out)
                .with_context(|| format!("cannot write man pages to {}", args.out.display()))?;
            eprintln!("wrote {} man pages to {}", pages.len(), args.out.display());
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let output = cli.output;
    let config = GatewayConfig::load(&cli.config)?;
    let log_format = cli.log_format.or(config.log_format).unwrap_or_default();
    init_tracing(log_format, "warn");
    let base = cli.config.parent().unwrap_or(Path::new("."));
    let settings = config.resolve(base)?;
    let export_from = match &settings.mode {
        mcpg_entitlements::ModeSettings::Offline {
            license,
            deployment_id,
            ..
        } => Some((
            settings.state_dir.clone(),
            license.clone(),
            deployment_id.clone(),
        )),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut builder = GatewayBuilder::new(settings);
        if let Some(path) = &config.revocation_list {
            // `serve` re-reads it every minute: a newer list applies without a restart.
            builder = builder.revocation_file(base.join(path));
        }
        let gateway = builder.build()?;
        if gateway.mode() == Mode::Federated
            && !cli.no_refresh
            && !matches!(cli.command, Command::Serve { .. })
        {
            gateway.refresh_due().await;
            gateway.tick();
        }
        match cli.command {
            Command::Status { json } => status(&gateway, output.or_json(json).is_json()),
            Command::Check {
                plugin,
                tenant,
                json,
            } => check(
                &gateway,
                &plugin,
                tenant.as_deref(),
                output.or_json(json).is_json(),
            ),
            Command::Serve { listen } => serve(gateway, &listen).await,
            Command::Usage(UsageCommand::Export { out, since }) => export(
                &gateway,
                export_from,
                &out,
                since.as_deref(),
                output.is_json(),
            ),
            Command::Completion(_) | Command::Man(_) => Ok(ExitCode::SUCCESS),
        }
    })
}

fn status(gateway: &Gateway, json: bool) -> anyhow::Result<ExitCode> {
    let snapshot = gateway.snapshot();
    if json {
        println!("{}", serde_json::to_string_pretty(&snapshot)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("mode:     {:?}", snapshot.mode);
    println!(
        "now:      {}{}",
        snapshot.now_rfc3339,
        if snapshot.clock_behind {
            " (system clock is behind)"
        } else {
            ""
        }
    );
    let d = &snapshot.default;
    let tenant = d
        .tenant
        .as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string);
    println!("tenant:   {tenant}");
    println!("state:    {}", d.state);
    println!("tier:     {} (licensed: {})", d.tier, d.licensed_tier);
    if let Some(license) = &d.license {
        println!("license:  {} from {}", license.license, license.issuer);
        println!(
            "expires:  {}",
            mcpg_license_core::clock::to_rfc3339(license.expires_at)
        );
        let limits: Vec<String> = license
            .limits
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        if !limits.is_empty() {
            println!("limits:   {}", limits.join(", "));
        }
        if let Some(grc) = license.grace_until {
            println!(
                "grace:    until {}",
                mcpg_license_core::clock::to_rfc3339(grc)
            );
        }
    }
    if let Some(code) = d.revoked {
        match d.revoked_since {
            Some(since) => println!(
                "revoked:  {code} (decided {}, {})",
                mcpg_license_core::clock::to_rfc3339(since),
                mcpg_entitlements::timeline::relative(since, snapshot.now)
            ),
            None => println!("revoked:  {code}"),
        }
    }
    if let Some(set) = &d.plugin_set {
        println!("plugin set: {} ({})", set.ids.join(", "), set.digest);
        if !set.configs_available {
            println!("            configs not available yet (they come with the next refresh)");
        }
    }
    let limit = |v: Option<u64>| v.map_or_else(|| "no limit".to_owned(), |v| v.to_string());
    println!(
        "gateway limits: max_servers {}, max_concurrent_requests {}",
        limit(d.limits.max_servers),
        limit(d.limits.max_concurrent_requests)
    );
    println!("plugins:  {}", d.allowed_plugins.join(", "));
    match snapshot.revocation_serial {
        Some(serial) => println!("revocations: list serial {serial} in force"),
        None => println!("revocations: none"),
    }
    let colour = std::io::stdout().is_terminal();
    let tenants = std::iter::once(d).chain(
        snapshot
            .tenants
            .iter()
            .filter(|t| t.tenant.is_some() && t.tenant != d.tenant),
    );
    for t in tenants {
        if let Some(license) = &t.license {
            let name = t
                .tenant
                .as_ref()
                .map_or_else(|| "-".into(), ToString::to_string);
            println!("timeline: {name} ({})", t.state);
            for line in Timeline::of(license).render(snapshot.now, colour) {
                println!("{line}");
            }
        }
    }
    if let Some(ledger) = &snapshot.usage_ledger {
        match (&ledger.last_day, ledger.last_seq) {
            (Some(day), Some(seq)) => println!(
                "usage:    ledger through {day} (seq {seq}), counting {}",
                ledger.open_day
            ),
            _ => println!("usage:    ledger empty, counting {}", ledger.open_day),
        }
    }
    for f in &snapshot.federation {
        if let Some(at) = f.last_usage_report {
            println!(
                "usage:    last report acknowledged {}",
                mcpg_license_core::clock::to_rfc3339(at)
            );
        }
        if let Some(next) = f.next_refresh {
            println!(
                "refresh:  next at {}",
                mcpg_license_core::clock::to_rfc3339(next)
            );
        }
        if let Some(e) = &f.last_error {
            println!(
                "error:    {e} ({} consecutive failures)",
                f.consecutive_failures
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn export(
    gateway: &Gateway,
    from: Option<(PathBuf, String, Option<String>)>,
    out: &Path,
    since: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use mcpg_license_core::usage::Day;
    let Some((state_dir, license, deployment_id)) = from else {
        anyhow::bail!(
            "usage export needs mode = \"offline\": federated gateways report their usage with every token request"
        );
    };
    let Some(deployment_id) = deployment_id else {
        anyhow::bail!(
            "usage export needs [offline] deployment_id in the configuration: receipts are bound to a deployment"
        );
    };
    let since = since
        .map(|text| {
            Day::parse(text).with_context(|| format!("--since {text:?} is not a YYYY-MM-DD date"))
        })
        .transpose()?;
    // Record the open day first, so that a day just over is in the bundle.
    gateway.tick();
    gateway.flush_usage();
    let now = gateway.snapshot().now;
    let bundle =
        mcpg_entitlements::usage::export::bundle(&state_dir, &deployment_id, &license, since, now)?;
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    mcpg_entitlements::store::write_file(&dir, out, bundle.to_json().as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    let (first, last) = (
        &bundle.entries[0].entry,
        &bundle.entries[bundle.entries.len() - 1].entry,
    );
    if json {
        let summary = serde_json::json!({
            "out": out.display().to_string(),
            "deployment_id": bundle.deployment_id,
            "license": bundle.license.id,
            "days": bundle.entries.len(),
            "first_day": first.day,
            "last_day": last.day,
            "first_seq": first.seq,
            "last_seq": last.seq,
            "last_hash": bundle.entries[bundle.entries.len() - 1].hash,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "wrote {} days ({} to {}, seq {}-{}) of deployment {} to {}",
            bundle.entries.len(),
            first.day,
            last.day,
            first.seq,
            last.seq,
            bundle.deployment_id,
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check(
    gateway: &Gateway,
    plugin: &str,
    tenant: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let tenant = tenant.map(TenantKey::parse).transpose()?;
    let answer = sidecar::check_answer(gateway, tenant.as_ref(), plugin.to_owned());
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!("{}", answer.explanation);
        if let Some(config) = &answer.config {
            println!("config: {}", serde_json::to_string_pretty(config)?);
        }
    }
    Ok(if answer.decision.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn serve(gateway: Gateway, listen: &str) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let address = listener.local_addr()?;
    println!("listening on {address}");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let refresher = tokio::spawn(gateway.clone().run(wait_for(stop_rx.clone())));
    let shutdown = async move {
        terminated().await;
        let _ = stop_tx.send(true);
    };
    let mut app = sidecar::router(gateway);
    match PrometheusBuilder::new().install_recorder() {
        Ok(metrics) => {
            mcpg_entitlements::observe::describe_metrics();
            app = app.route(
                "/metrics",
                get(move || std::future::ready(metrics.render())),
            )
        }
        Err(e) => tracing::warn!(error = %e, "no /metrics endpoint"),
    }
    sidecar::serve(app, listener, shutdown).await?;
    let _ = refresher.await;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM (what container runtimes send).
async fn terminated() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn wait_for(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

#[cfg(test)]
mod tests {
    use super::{Cli, CommandFactory};

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn readme_cli_reference_is_current() {
        let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        if let Err(stale) = mcpg_runtime::reference::check_readme(&Cli::command(), &readme) {
            panic!("{stale}");
        }
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
