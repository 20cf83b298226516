//! A license made by `mcpg-license issue` gates plugins in a gateway that embeds
//! `mcpg-entitlements` in offline mode: the whole air-gapped path, built binary to library.

use std::path::Path;
use std::sync::Arc;

use mcpg_entitlements::config::GatewayConfig;
use mcpg_entitlements::decision::{Reason, State};
use mcpg_entitlements::gateway::{Gateway, GatewayBuilder};
use mcpg_license_core::{Clock, ManualClock, SystemClock};

use crate::Workdir;

fn offline_gateway(
    work: &Workdir,
    root_public: &Path,
    deployment_id: Option<&str>,
) -> Result<Gateway, String> {
    offline_gateway_at(work, root_public, deployment_id, None)
}

fn offline_gateway_at(
    work: &Workdir,
    root_public: &Path,
    deployment_id: Option<&str>,
    at: Option<i64>,
) -> Result<Gateway, String> {
    let deployment = deployment_id
        .map(|id| format!("deployment_id = \"{id}\"\n"))
        .unwrap_or_default();
    let toml = format!(
        "mode = \"offline\"\nstate_dir = \"state\"\ntrusted_roots = [\"{}\"]\n[offline]\nlicense = \"acme.license\"\n{deployment}",
        root_public.display()
    );
    let config_path = work.path("gateway.toml");
    let config = GatewayConfig::parse(&toml, &config_path).map_err(|e| e.to_string())?;
    let settings = config.resolve(&work.path("")).map_err(|e| e.to_string())?;
    let mut builder = GatewayBuilder::new(settings);
    if let Some(at) = at {
        builder = builder.clock(Arc::new(ManualClock::new(at)));
    }
    builder.build().map_err(|e| e.to_string())
}

#[test]
fn an_issued_team_license_allows_team_plugins_and_denies_enterprise_ones() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(
        &root.secret,
        "acme.license",
        &["--tier", "team", "--without", "plugin:observability.audit"],
    )
    .success();
    let gateway = offline_gateway(&work, &root.public, None).expect("gateway starts");
    let allowed = gateway.check_default("identity.oidc");
    assert!(allowed.allowed);
    assert_eq!(allowed.state, State::Offline);
    let denied = gateway.check_default("identity.saml");
    assert!(!denied.allowed);
    assert_eq!(denied.reason, Reason::NotEntitled);
    assert!(!gateway.check_default("observability.audit").allowed);
    assert_eq!(
        gateway.check_default("no.such-plugin").reason,
        Reason::UnknownPlugin
    );
}

#[test]
fn a_license_bound_to_another_deployment_does_not_start() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(&root.secret, "acme.license", &["--bind", "dc1-cluster-7"])
        .success();
    assert!(offline_gateway(&work, &root.public, Some("dc1-cluster-7")).is_ok());
    let Err(err) = offline_gateway(&work, &root.public, Some("dc2-cluster-1")) else {
        panic!("a license bound to dc1-cluster-7 started on dc2-cluster-1");
    };
    assert!(err.contains("dc1-cluster-7"), "{err}");
}

#[test]
fn an_expired_license_leaves_only_tier0_plugins() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(
        &root.secret,
        "acme.license",
        &["--tier", "enterprise", "--valid-for", "30d"],
    )
    .success();
    let in_two_months = SystemClock.now() + 60 * 86_400;
    let gateway =
        offline_gateway_at(&work, &root.public, None, Some(in_two_months)).expect("gateway starts");
    let paid = gateway.check_default("identity.saml");
    assert!(!paid.allowed);
    assert_eq!(paid.state, State::OfflineExpired);
    assert!(gateway.check_default("identity.apikey").allowed);
}
