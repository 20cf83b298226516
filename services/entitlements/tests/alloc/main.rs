//! `check()` allocates nothing: counted with dhat's global allocator, in its own test
//! binary because a global allocator is process-wide. Covers a tenant whose token names a
//! plugin set, and the limit checks (`try_begin_request`, `check_servers`) too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mcpg_entitlements::{
    FederationClient, FetchFuture, Gateway, GatewayBuilder, ModeSettings, PluginIndex, Reason,
    Settings, TenantKey, TokenResponse,
};
use mcpg_license_core::{
    AUDIENCE, Bounds, Catalog, IssuerCertificate, JwtSigner, LicenseClaims, Limits, ManualClock,
    PluginSet, PluginSetEntry, SigningKey, Tier, TrustStore, issue_offline_license,
};
use secrecy::SecretString;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const NOW: i64 = 1_800_000_000;

/// Hands out one fixed token response.
struct Fixed(TokenResponse);

impl FederationClient for Fixed {
    fn fetch_token<'a>(&'a self, _credential: &'a SecretString) -> FetchFuture<'a> {
        let response = self.0.clone();
        Box::pin(async move { Ok(response) })
    }
}

/// A federated gateway whose token for `acme/platform/prod` names a plugin set of
/// `identity.oidc` and `workspace.rbac`.
fn federated_with_plugin_set(dir: &std::path::Path, claims: &LicenseClaims) -> Gateway {
    let root = SigningKey::generate().expect("root");
    let key = SigningKey::generate().expect("issuer");
    let certificate = IssuerCertificate {
        cid: "alloc".into(),
        issuer: claims.iss.clone(),
        key: key.public_key().clone(),
        iat: NOW - 600,
        nbf: NOW - 600,
        exp: NOW + 365 * 86_400,
        bounds: Bounds::unbounded(),
    }
    .sign(&root)
    .expect("certificate");
    let entry = |id: &str| PluginSetEntry {
        id: id.into(),
        config: serde_json::json!({"on": true}),
    };
    let set = PluginSet::new(vec![entry("identity.oidc"), entry("workspace.rbac")]).expect("set");
    let claims = LicenseClaims {
        sub: "gw-1".into(),
        iat: NOW,
        nbf: NOW,
        rfa: Some(NOW + 3_600),
        grc: Some(NOW + 2 * 86_400),
        ps: Some(set.claim()),
        lim: Limits {
            max_servers: Some(5),
            max_concurrent_requests: Some(1),
            ..Limits::default()
        },
        ..claims.clone()
    };
    let response = TokenResponse {
        token: JwtSigner::new(key).sign(&claims).expect("sign"),
        issuer_certificate: certificate,
        issuer_certificates: Vec::new(),
        plugin_set: Some(serde_json::json!({"digest": set.digest(), "plugins": set})),
    };
    let gateway = GatewayBuilder::new(Settings {
        mode: ModeSettings::Federated {
            url: "http://127.0.0.1:9".into(),
            credential: SecretString::from("cred"),
            timeout: Duration::from_secs(1),
        },
        state_dir: dir.to_owned(),
        trust: TrustStore::new([root.public_key().clone()]),
        revocation_list: None,
        more_tenants: Vec::new(),
    })
    .clock(Arc::new(ManualClock::new(NOW)))
    .client(Arc::new(Fixed(response)))
    .build()
    .expect("gateway");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime
        .block_on(gateway.refresh_now())
        .expect("token accepted");
    gateway
}

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
    let set_dir = tempfile::tempdir().expect("temp dir");
    let with_set = federated_with_plugin_set(set_dir.path(), &claims);
    let set_handle = with_set.default_handle();
    assert_eq!(
        with_set.check(&tenant, "observability.audit").reason,
        Reason::NotInPluginSet
    );
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
        allowed += usize::from(with_set.check(&tenant, "workspace.rbac").allowed);
        allowed += usize::from(with_set.check(&tenant, "observability.audit").allowed);
        allowed += usize::from(set_handle.check_index(index).allowed);
        if let Ok(permit) = set_handle.try_begin_request() {
            allowed += usize::from(set_handle.check_servers(1).allowed);
            // Refusals, counted on their metric, allocate nothing either.
            allowed += usize::from(set_handle.try_begin_request().is_ok());
            allowed += usize::from(set_handle.check_servers(6).allowed);
            drop(permit);
        }
    }
    let after = dhat::HeapStats::get();
    // Per round: 5 of the 6 above, 2 of the 3 with the set, 1 server check in a permit
    // (the second permit and six servers are refused).
    assert_eq!(allowed, 80_000);
    assert_eq!(
        after.total_blocks - before.total_blocks,
        0,
        "check() allocated"
    );
}
