//! Federation URLs, the issue's example file, unknown keys, the compiled-in root.

use super::*;

#[test]
fn federation_urls_need_https_except_on_loopback() {
    for ok in [
        "https://auth.mcpg.dev",
        "https://auth.mcpg.dev/",
        "http://127.0.0.1:8421",
        "http://localhost:8421",
        "http://[::1]:8421",
    ] {
        assert!(federation_url(ok).is_ok(), "{ok} refused");
    }
    for bad in [
        "http://auth.mcpg.dev",
        "http://10.0.0.5:8421",
        "ftp://x",
        "not a url",
    ] {
        assert!(federation_url(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn the_issue_example_parses() {
    let text = r#"
mode = "offline"
state_dir = "/var/lib/mcpg-gateway"
trusted_roots = ["/etc/mcpg/vendor.public.paserk"]
[federation]
url = "https://auth.mcpg.dev"
credential_file = "/etc/mcpg/gateway.credential"
[offline]
license = "/etc/mcpg/acme.license"
deployment_id = "dc1-cluster-7"
"#;
    let config = GatewayConfig::parse(text, Path::new("gateway.toml")).expect("valid");
    assert_eq!(config.mode, Mode::Offline);
    assert_eq!(
        config.offline.and_then(|o| o.deployment_id).as_deref(),
        Some("dc1-cluster-7")
    );
}

#[test]
fn unknown_keys_and_modes_are_refused() {
    let path = Path::new("gateway.toml");
    assert!(GatewayConfig::parse("mode = \"tier0\"\nstate_dir = \"x\"\ncolour = 1", path).is_err());
    assert!(GatewayConfig::parse("mode = \"gold\"\nstate_dir = \"x\"", path).is_err());
}

#[test]
fn the_vendor_root_is_compiled_in() {
    let trust = vendor_trust_store().expect("vendor root parses");
    assert_eq!(trust.roots().count(), VENDOR_ROOTS.len());
}
