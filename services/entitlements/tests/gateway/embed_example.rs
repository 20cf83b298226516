//! examples/embed.rs, compiled into this test and run against offline licenses signed at
//! test time: its output names the decision and the action for each plugin.

use std::path::{Path, PathBuf};

use mcpg_license_core::{
    Clock, LicenseClaims, SigningKey, SystemClock, Tier, issue_offline_license,
};

use crate::support::{DAY, claims, temp_dir};

#[allow(dead_code)]
#[path = "../../examples/embed.rs"]
mod embed;

/// A `gateway.toml` in `dir` for an offline license of `tier` valid from `iat` to `exp`.
fn offline_gateway(dir: &Path, tier: Tier, iat: i64, exp: i64) -> PathBuf {
    let root = SigningKey::generate().expect("root key");
    let mut c: LicenseClaims = claims("acme", tier, iat);
    c.exp = exp;
    c.rfa = None;
    c.grc = None;
    c.sub = "lic-acme".into();
    let license = issue_offline_license(&c, &root, None).expect("license signs");
    std::fs::write(dir.join("acme.license"), license).expect("license");
    std::fs::write(dir.join("root.paserk"), root.public_key().to_paserk()).expect("root");
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "mode = \"offline\"\nstate_dir = \"state\"\ntrusted_roots = [\"root.paserk\"]\n\
         [offline]\nlicense = \"acme.license\"\n",
    )
    .expect("config");
    config
}

fn run(config: PathBuf, tenant: Option<&str>, plugins: &[&str]) -> Vec<String> {
    let args = embed::Args {
        config,
        tenant: tenant.map(str::to_owned),
        plugins: plugins.iter().map(|p| (*p).to_owned()).collect(),
    };
    let mut out = Vec::new();
    embed::run(&args, &mut out).expect("the example runs");
    String::from_utf8(out)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_embedding_example_loads_entitled_plugins_and_says_why_it_skips_others() {
    let dir = temp_dir();
    let now = SystemClock.now();
    let config = offline_gateway(dir.path(), Tier::Team, now - DAY, now + 30 * DAY);
    let lines = run(
        config.clone(),
        None,
        &[
            "workspace.rbac",
            "identity.apikey",
            "policy.cedar",
            "shadow.exfiltrate",
        ],
    );
    assert_eq!(
        lines,
        [
            "workspace.rbac: allowed (offline, team): load it",
            "identity.apikey: allowed (offline, team): load it",
            "policy.cedar: not_entitled (offline, team): skip it; the license does not include it (an upgrade or add-on would)",
            "shadow.exfiltrate: unknown_plugin (offline, team): refuse it; the catalog does not know it (a typo, or a newer plugin)",
        ]
    );
    let other = run(config, Some("globex/a/b"), &["workspace.rbac"]);
    assert_eq!(other.len(), 1);
    assert!(
        other[0].starts_with("workspace.rbac: not_federated (unlicensed, free): skip it"),
        "{other:?}"
    );
}

#[test]
fn the_embedding_example_runs_tier0_once_the_offline_license_expired() {
    let dir = temp_dir();
    let now = SystemClock.now();
    let config = offline_gateway(dir.path(), Tier::Team, now - 30 * DAY, now - DAY);
    let lines = run(config, None, &["workspace.rbac", "identity.apikey"]);
    assert_eq!(
        lines,
        [
            "workspace.rbac: offline_expired (offline_expired, free): skip it; the offline license expired (renew it)",
            "identity.apikey: allowed (offline_expired, free): load it",
        ]
    );
}
