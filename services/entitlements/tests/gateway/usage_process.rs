//! The usage ledger through the binary: `serve` keeps the open day at SIGTERM and after a
//! `kill -9` loses nothing it had kept; `usage export` writes a bundle that verifies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcpg_entitlements::usage::ledger::CURRENT_FILE;
use mcpg_entitlements::{GatewayBuilder, GatewayConfig};
use mcpg_license_core::usage::{LicenseCheck, verify_bundle};
use mcpg_license_core::{
    Clock, ManualClock, SigningKey, SystemClock, Tier, TrustStore, issue_offline_license,
};

use crate::binary::run;
use crate::sidecar_process::Sidecar;
use crate::support::{DAY, claims, temp_dir};

struct Site {
    dir: tempfile::TempDir,
    root: SigningKey,
    license: String,
    config: PathBuf,
}

fn site() -> Site {
    let root = SigningKey::generate().expect("root");
    let now = SystemClock.now();
    let mut c = claims("airgap", Tier::Enterprise, now - 5 * DAY);
    c.exp = now + 365 * DAY;
    (c.rfa, c.grc, c.bind) = (None, None, Some("dc1".into()));
    let license = issue_offline_license(&c, &root, None).expect("sign");
    let dir = temp_dir();
    std::fs::write(dir.path().join("airgap.license"), &license).expect("write");
    std::fs::write(
        dir.path().join("root.public.paserk"),
        root.public_key().to_paserk(),
    )
    .expect("root");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "mode = \"offline\"\nstate_dir = \"state\"\ntrusted_roots = [\"root.public.paserk\"]\n\
         [offline]\nlicense = \"airgap.license\"\ndeployment_id = \"dc1\"\n",
    )
    .expect("config");
    Site {
        dir,
        root,
        license,
        config,
    }
}

fn open_day_count(state: &Path) -> u64 {
    let text = std::fs::read_to_string(state.join(CURRENT_FILE)).expect("open day file");
    let open: serde_json::Value = serde_json::from_str(&text).expect("json");
    open["plugins"]["policy.cedar"]["allowed"]
        .as_u64()
        .unwrap_or(0)
}

async fn checks(sidecar: &Sidecar, n: usize) {
    let http = reqwest::Client::new();
    for _ in 0..n {
        let answer: serde_json::Value = http
            .get(sidecar.url("/v1/check?plugin=policy.cedar"))
            .send()
            .await
            .expect("check")
            .json()
            .await
            .expect("json");
        assert_eq!(answer["allowed"], true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_the_open_day_at_sigterm_and_a_kill_9_loses_nothing_kept() {
    let site = site();
    let state = site.dir.path().join("state");
    let sidecar = Sidecar::start(&site.config, &[], &[]);
    sidecar.ready().await;
    checks(&sidecar, 3).await;
    let (status, _, stderr) = sidecar.stop();
    assert!(status.success(), "{stderr}");
    assert_eq!(open_day_count(&state), 3, "kept at SIGTERM");

    // kill -9: what was kept before stays; the two checks since the last tick were never
    // kept (acknowledged) and may be lost.
    let mut sidecar = Sidecar::start(&site.config, &[], &[]);
    sidecar.ready().await;
    checks(&sidecar, 2).await;
    sidecar.kill9();
    assert!(open_day_count(&state) >= 3);
    let sidecar = Sidecar::start(&site.config, &[], &[]);
    sidecar.ready().await;
    checks(&sidecar, 1).await;
    let (status, _, stderr) = sidecar.stop();
    assert!(status.success(), "{stderr}");
    let kept = open_day_count(&state);
    assert!(
        (4..=6).contains(&kept),
        "3 kept + 1, maybe the 2 before the kill: {kept}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_export_writes_a_bundle_that_verifies() {
    let site = site();
    // Three days recorded earlier, on a manual clock, in the same state directory.
    let now = SystemClock.now();
    let clock = ManualClock::new(now - 3 * DAY);
    {
        let file = GatewayConfig::load(&site.config).expect("config");
        let settings = file.resolve(site.dir.path()).expect("settings");
        let gateway = GatewayBuilder::new(settings)
            .clock(Arc::new(clock.clone()))
            .build()
            .expect("starts");
        gateway.check_default("policy.cedar");
        clock.set(now - DAY);
        gateway.tick();
    }
    let out = site.dir.path().join("usage.json");
    let exported = run(
        &site.config,
        &[
            "usage",
            "export",
            "--out",
            out.to_str().expect("utf-8"),
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(
        exported.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&exported.stdout).expect("json");
    // The two days before, plus the open one, closed by the export's own tick.
    assert_eq!(summary["days"], 3);
    assert_eq!(summary["first_seq"], 1);
    let bytes = std::fs::read(&out).expect("bundle");
    let trust = TrustStore::new([site.root.public_key().clone()]);
    let verified = verify_bundle(
        &bytes,
        None,
        &LicenseCheck {
            trust: &trust,
            license: Some(&site.license),
            deployment_id: Some("dc1"),
        },
    )
    .expect("the export verifies");
    assert_eq!(verified.entries.len(), 3);
    assert_eq!(verified.entries[0].entry.plugins["policy.cedar"].allowed, 1);
    assert_eq!(summary["last_hash"], verified.chain.last_hash.as_str());

    // Federated and tier0 gateways have no ledger to export.
    let tier0 = site.dir.path().join("tier0.toml");
    std::fs::write(&tier0, "mode = \"tier0\"\nstate_dir = \"state0\"\n").expect("config");
    let refused = run(&tier0, &["usage", "export", "--out", "x.json"]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("mode = \"offline\""));
}
