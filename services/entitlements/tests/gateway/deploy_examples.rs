//! `deploy/examples/gateway-*.toml` parse as `gateway.toml` (unknown keys are refused), in
//! the mode their name says, so the examples cannot drift from the binary.

use std::path::Path;

use mcpg_entitlements::config::{GatewayConfig, Mode};

fn example(name: &str) -> GatewayConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/examples")
        .join(name);
    GatewayConfig::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_gateway_example_parses_in_its_mode() {
    let tier0 = example("gateway-tier0.toml");
    assert_eq!(tier0.mode, Mode::Tier0);
    let federated = example("gateway-federated.toml");
    assert_eq!(federated.mode, Mode::Federated);
    let federation = federated.federation.expect("[federation]");
    assert!(federation.url.starts_with("https://"));
    assert!(federation.credential_file.is_some());
    assert!(!federated.trusted_roots.is_empty());
    let offline = example("gateway-offline.toml");
    assert_eq!(offline.mode, Mode::Offline);
    let settings = offline.offline.expect("[offline]");
    assert_eq!(settings.deployment_id.as_deref(), Some("dc1-cluster-7"));
}
