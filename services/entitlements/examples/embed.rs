//! Embedding `mcpg-entitlements` in a Rust gateway (docs/GATEWAY.md walks through it).
//!
//! Builds a [`Gateway`] from a `gateway.toml`, lets it fetch its first token (federated
//! mode) and keep refreshing in the background, then decides for each plugin named on the
//! command line whether to load it, with what config, and what to tell the operator when
//! not — one arm per [`Reason`].
//!
//! ```sh
//! cargo run -p mcpg-entitlements --example embed -- \
//!     --config gateway.toml identity.oidc policy.cedar
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mcpg_entitlements::{
    Decision, Gateway, GatewayBuilder, GatewayConfig, Mode, Reason, TenantKey,
};

/// Decides which plugins a gateway loads.
#[derive(Debug, Parser)]
pub struct Args {
    /// The gateway configuration file.
    #[arg(long, default_value = "gateway.toml")]
    pub config: PathBuf,
    /// The tenant as ORG/WS/ENV (default: the gateway's own).
    #[arg(long)]
    pub tenant: Option<String>,
    /// The plugins the gateway would load.
    pub plugins: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args, &mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Starts the gateway from `args.config` and writes one line per plugin to `out`.
pub fn run(args: &Args, out: &mut impl Write) -> anyhow::Result<()> {
    let config = GatewayConfig::load(&args.config)?;
    let base = args.config.parent().unwrap_or(Path::new("."));
    let settings = config.resolve(base)?;
    let tenant = args.tenant.as_deref().map(TenantKey::parse).transpose()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let gateway = GatewayBuilder::new(settings).build()?;
        if gateway.mode() == Mode::Federated {
            // Before serving: the first token (or the state directory's) decides. Without
            // it every paid plugin would be `not_federated`.
            gateway.refresh_due().await;
        }
        // In a real gateway this runs for the life of the process; here until we are done.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let refresher = tokio::spawn(gateway.clone().run(async {
            let _ = stopped.await;
        }));
        for plugin in &args.plugins {
            writeln!(out, "{}", load_or_skip(&gateway, tenant.as_ref(), plugin))?;
        }
        let _ = stop.send(());
        refresher
            .await
            .context("the refresher stopped abnormally")?;
        Ok(())
    })
}

/// The hot-path question and what the gateway does with the answer.
fn load_or_skip(gateway: &Gateway, tenant: Option<&TenantKey>, plugin: &str) -> String {
    // A long-lived gateway keeps the handle of each tenant it serves (and, for hot loops,
    // `gateway.plugin_index(plugin)` with `handle.check_index`).
    let handle = gateway.handle_or_default(tenant);
    let decision: Decision = handle.check(plugin);
    let head = format!(
        "{plugin}: {} ({}, {})",
        decision.reason, decision.state, decision.tier
    );
    let action = match decision.reason {
        Reason::Allowed => match handle.plugin_config(plugin) {
            Some(config) => format!("load it with config {config}"),
            None => "load it".to_owned(),
        },
        Reason::NotEntitled => {
            "skip it; the license does not include it (an upgrade or add-on would)".into()
        }
        Reason::UnknownPlugin => {
            "refuse it; the catalog does not know it (a typo, or a newer plugin)".into()
        }
        Reason::NotInPluginSet => {
            "skip it; entitled, but not in this workspace's plugin set".into()
        }
        Reason::Tier0Only => "skip it; this gateway runs in tier0 mode".into(),
        Reason::NotFederated => {
            "skip it for now; no token for this tenant yet (retry after the first refresh)".into()
        }
        Reason::Lapsed => {
            "skip it; grace ended without reaching the federation (alert the operator)".into()
        }
        Reason::Revoked => {
            "skip it; the federation said no (alert the operator, do not retry faster)".into()
        }
        Reason::OfflineExpired => "skip it; the offline license expired (renew it)".into(),
    };
    format!("{head}: {action}")
}
