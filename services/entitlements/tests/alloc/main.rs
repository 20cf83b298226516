//! `check()` allocates nothing: counted with dhat's global allocator, in its own test
//! binary because a global allocator is process-wide.

use std::path::PathBuf;
use std::sync::Arc;

use mcpg_entitlements::{GatewayBuilder, ModeSettings, PluginIndex, Settings, TenantKey};
use mcpg_license_core::{
    AUDIENCE, Catalog, LicenseClaims, Limits, ManualClock, SigningKey, Tier, TrustStore,
    issue_offline_license,
};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const NOW: i64 = 1_800_000_000;

#[test]
fn check_allocates_nothing_through_the_cache_or_a_kept_handle() {
    let root = SigningKey::generate().expect("root");
    let claims = LicenseClaims {
        iss: "https://vendor.test".into(),
        sub: "lic-1".into(),
        aud: AUDIENCE.into(),
        iat: NOW - 60,
        nbf: NOW - 60,
        exp: NOW + 86_400,
        jti: "jti-1".into(),
        org: "acme".into(),
        ws: Some("platform".into()),
        env: Some("prod".into()),
        tier: Tier::Team,
        ent: Catalog::builtin().tier_defaults(Tier::Team),
        lim: Limits::default(),
        lic: "lic-1".into(),
        rfa: None,
        grc: None,
        bind: None,
        ps: None,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = GatewayBuilder::new(Settings {
        mode: ModeSettings::Offline {
            license: issue_offline_license(&claims, &root, None).expect("sign"),
            license_path: PathBuf::from("license"),
            deployment_id: None,
        },
        state_dir: dir.path().to_owned(),
        trust: TrustStore::new([root.public_key().clone()]),
        revocation_list: None,
        more_tenants: Vec::new(),
    })
    .clock(Arc::new(ManualClock::new(NOW)))
    .build()
    .expect("gateway");
    let tenant = TenantKey::parse("acme/platform/prod").expect("tenant");
    let stranger = TenantKey::parse("globex/a/b").expect("tenant");
    let handle = gateway.handle(&tenant).expect("handle");
    let index = PluginIndex::resolve(gateway.catalog(), "workspace.rbac");
    // Warm up: moka sizes its frequency sketch and read buffers lazily, once, during the
    // first few thousand operations; the steady state is what a gateway runs in.
    for _ in 0..10_000 {
        gateway.check(&tenant, "workspace.rbac");
        gateway.check(&stranger, "workspace.rbac");
    }

    let _profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get();
    let mut allowed = 0;
    for _ in 0..10_000 {
        allowed += usize::from(gateway.check(&tenant, "workspace.rbac").allowed);
        allowed += usize::from(gateway.check(&tenant, "policy.cedar").allowed);
        allowed += usize::from(gateway.check(&stranger, "identity.apikey").allowed);
        allowed += usize::from(handle.check("workspace.rbac").allowed);
        allowed += usize::from(handle.check_index(index).allowed);
        allowed += usize::from(gateway.check_default("observability.audit").allowed);
    }
    let after = dhat::HeapStats::get();
    assert_eq!(allowed, 50_000);
    assert_eq!(
        after.total_blocks - before.total_blocks,
        0,
        "check() allocated"
    );
}
