//! `gateway.toml` with several `[[tenant]]` entries: resolved in file order, names unique,
//! and never together with a `[federation]` section (which keeps working alone).

use std::path::Path;

use mcpg_entitlements::{GatewayConfig, ModeSettings};
use secrecy::ExposeSecret;

/// A directory with two credential files.
fn credentials() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (file, secret) in [
        ("acme.credential", "mcpg_gw_acme"),
        ("globex.credential", "mcpg_gw_globex"),
    ] {
        std::fs::write(dir.path().join(file), format!("{secret}\n")).expect("credential");
    }
    dir
}

fn parse(text: &str) -> GatewayConfig {
    GatewayConfig::parse(text, Path::new("gateway.toml")).expect("parses")
}

/// The resolution error of `text`, as text.
fn refused(text: &str, base: &Path) -> String {
    match parse(text).resolve(base) {
        Ok(_) => panic!("accepted: {text}"),
        Err(error) => error.to_string(),
    }
}

const TWO_TENANTS: &str = r#"
mode = "federated"
state_dir = "state"
[[tenant]]
name = "acme"
url = "http://127.0.0.1:8421"
credential_file = "acme.credential"
[[tenant]]
name = "globex"
url = "https://auth.globex.example/"
credential_file = "globex.credential"
timeout = "3s"
"#;

#[test]
fn tenant_entries_resolve_in_file_order_with_their_own_urls_and_credentials() {
    let dir = credentials();
    let config = parse(TWO_TENANTS);
    let tenants = config.federated_tenants(dir.path()).expect("valid");
    let names: Vec<_> = tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["acme", "globex"]);
    assert_eq!(tenants[1].url, "https://auth.globex.example");
    assert_eq!(tenants[1].credential.expose_secret(), "mcpg_gw_globex");
    assert_eq!(tenants[1].timeout.as_secs(), 3);

    let settings = config.resolve(dir.path()).expect("resolves");
    match &settings.mode {
        ModeSettings::Federated {
            url, credential, ..
        } => {
            assert_eq!(url, "http://127.0.0.1:8421");
            assert_eq!(credential.expose_secret(), "mcpg_gw_acme");
        }
        other => panic!("not federated: {other:?}"),
    }
    assert_eq!(settings.more_tenants.len(), 1);
    assert_eq!(settings.more_tenants[0].name, "globex");
}

#[test]
fn the_single_federation_section_still_works() {
    let dir = credentials();
    let text = r#"
mode = "federated"
state_dir = "state"
[federation]
url = "http://127.0.0.1:8421"
credential_file = "acme.credential"
"#;
    let settings = parse(text).resolve(dir.path()).expect("resolves");
    assert!(matches!(settings.mode, ModeSettings::Federated { .. }));
    assert!(settings.more_tenants.is_empty());
}

#[test]
fn duplicate_tenant_names_are_refused_with_the_name() {
    let dir = credentials();
    let text = TWO_TENANTS.replace("name = \"globex\"", "name = \"acme\"");
    let error = refused(&text, dir.path());
    assert!(error.contains("\"acme\" appears more than once"), "{error}");
}

#[test]
fn both_forms_at_once_or_neither_are_refused_clearly() {
    let dir = credentials();
    let both = format!(
        "{TWO_TENANTS}\n[federation]\nurl = \"http://127.0.0.1:1\"\ncredential_file = \"acme.credential\"\n"
    );
    let error = refused(&both, dir.path());
    assert!(error.contains("either a [federation] section"), "{error}");
    assert!(error.contains("not both"), "{error}");

    let neither = "mode = \"federated\"\nstate_dir = \"state\"\n";
    let error = refused(neither, dir.path());
    assert!(error.contains("[[tenant]] entries"), "{error}");
}

#[test]
fn a_bad_tenant_entry_is_named_in_the_error() {
    let dir = credentials();
    let text = TWO_TENANTS.replace("https://auth.globex.example/", "http://auth.globex.example");
    let error = refused(&text, dir.path());
    assert!(error.contains("[[tenant]] \"globex\""), "{error}");
    assert!(error.contains("https"), "{error}");

    let unknown = TWO_TENANTS.replace("timeout = \"3s\"", "colour = \"red\"");
    assert!(GatewayConfig::parse(&unknown, Path::new("gateway.toml")).is_err());
    let missing = TWO_TENANTS.replace("globex.credential", "missing.credential");
    let error = refused(&missing, dir.path());
    assert!(error.contains("missing.credential"), "{error}");
}
