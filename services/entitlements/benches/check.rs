//! `check()` with 1 and 10,000 tenants, through the gateway's tenant index and through a
//! kept `TenantHandle`, next to verifying the JWT on every call; and with 1 tenant whose
//! token names a plugin set (`*_plugin_set`).
//!
//! `cargo bench -p mcpg-entitlements --bench check -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mcpg_entitlements::{
    FederationClient, FetchFuture, Gateway, GatewayBuilder, ModeSettings, PluginIndex, Settings,
    TenantKey, TokenResponse, Verifier,
};
use mcpg_license_core::{
    AUDIENCE, Bounds, Catalog, Clock, IssuerCertificate, JwtSigner, LicenseClaims, Limits,
    PluginSet, PluginSetEntry, SigningKey, SystemClock, Tier, TrustStore, Validity,
};
use secrecy::{ExposeSecret, SecretString};

const ISSUER: &str = "https://auth.bench";

/// Mints a token for org `org-N` when asked with credential `cred-N`.
struct Minter {
    signer: JwtSigner,
    certificate: String,
    /// The plugin set its tokens name, if any.
    plugin_set: Option<PluginSet>,
}

impl Minter {
    fn token(&self, org: &str) -> TokenResponse {
        let now = SystemClock.now();
        let claims = LicenseClaims {
            iss: ISSUER.into(),
            sub: format!("gw-{org}"),
            aud: AUDIENCE.into(),
            iat: now,
            nbf: now - 5,
            exp: now + 86_400,
            jti: format!("jti-{org}"),
            org: org.into(),
            ws: Some("platform".into()),
            env: Some("prod".into()),
            tier: Tier::Team,
            ent: Catalog::builtin().tier_defaults(Tier::Team),
            lim: Limits::default(),
            lic: format!("lic-{org}"),
            rfa: Some(now + 28_800),
            grc: Some(now + 86_400 + 7 * 86_400),
            bind: None,
            ps: self.plugin_set.as_ref().map(PluginSet::claim),
        };
        TokenResponse {
            token: self.signer.sign(&claims).expect("sign"),
            issuer_certificate: self.certificate.clone(),
            issuer_certificates: Vec::new(),
            plugin_set: self
                .plugin_set
                .as_ref()
                .map(|set| serde_json::json!({"digest": set.digest(), "plugins": set})),
        }
    }
}

impl FederationClient for Minter {
    fn fetch_token<'a>(&'a self, credential: &'a SecretString) -> FetchFuture<'a> {
        let org = credential.expose_secret().replace("cred", "org");
        Box::pin(async move { Ok(self.token(&org)) })
    }
}

fn authority(plugin_set: Option<PluginSet>) -> (TrustStore, Arc<Minter>) {
    let root = SigningKey::generate().expect("root");
    let key = SigningKey::generate().expect("issuer");
    let now = SystemClock.now();
    let certificate = IssuerCertificate {
        cid: "bench".into(),
        issuer: ISSUER.into(),
        key: key.public_key().clone(),
        iat: now - 60,
        nbf: now - 60,
        exp: now + 365 * 86_400,
        bounds: Bounds::unbounded(),
    }
    .sign(&root)
    .expect("certificate");
    let trust = TrustStore::new([root.public_key().clone()]);
    (
        trust,
        Arc::new(Minter {
            signer: JwtSigner::new(key),
            certificate,
            plugin_set,
        }),
    )
}

/// A federated gateway with `tenants` tenants, all refreshed once.
fn gateway(
    tenants: usize,
    trust: TrustStore,
    minter: Arc<Minter>,
) -> (Gateway, Vec<TenantKey>, tempfile::TempDir) {
    // tmpfs when there is one: the setup persists every token with an fsync.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temp dir");
    let mut builder = GatewayBuilder::new(Settings {
        mode: ModeSettings::Federated {
            url: "http://127.0.0.1:9".into(),
            credential: SecretString::from("cred-0"),
            timeout: Duration::from_secs(1),
        },
        state_dir: dir.path().to_owned(),
        trust,
        revocation_list: None,
        more_tenants: Vec::new(),
    })
    .client(minter);
    for i in 1..tenants {
        builder = builder.credential(SecretString::from(format!("cred-{i}")));
    }
    let gateway = builder.build().expect("gateway");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let refreshed = runtime.block_on(gateway.refresh_due());
    assert_eq!(refreshed, tenants);
    let keys = (0..tenants)
        .map(|i| TenantKey::parse(&format!("org-{i}/platform/prod")).expect("key"))
        .collect();
    (gateway, keys, dir)
}

fn bench(c: &mut Criterion) {
    let (trust, minter) = authority(None);
    let mut group = c.benchmark_group("check");
    for tenants in [1usize, 10_000] {
        let (gateway, keys, _dir) = gateway(tenants, trust.clone(), minter.clone());
        assert!(gateway.check(&keys[0], "workspace.rbac").allowed);
        let handles: Vec<_> = keys
            .iter()
            .map(|k| gateway.handle(k).expect("handle"))
            .collect();
        let mut i = 0usize;
        group.bench_function(format!("index/{tenants}_tenants"), |b| {
            b.iter(|| {
                i = (i + 7_919) % keys.len();
                black_box(gateway.check(black_box(&keys[i]), black_box("workspace.rbac")))
            })
        });
        group.bench_function(format!("handle/{tenants}_tenants"), |b| {
            b.iter(|| {
                i = (i + 7_919) % handles.len();
                black_box(handles[i].check(black_box("workspace.rbac")))
            })
        });
        let index = PluginIndex::resolve(gateway.catalog(), "workspace.rbac");
        group.bench_function(format!("handle_index/{tenants}_tenants"), |b| {
            b.iter(|| {
                i = (i + 7_919) % handles.len();
                black_box(handles[i].check_index(black_box(index)))
            })
        });
    }
    // One tenant whose token names a plugin set that includes the plugin checked.
    let (set_trust, with_set) = authority(Some(plugin_set()));
    let (gateway, keys, _dir) = gateway(1, set_trust, with_set);
    assert_eq!(
        gateway.check(&keys[0], "observability.audit").reason,
        mcpg_entitlements::Reason::NotInPluginSet
    );
    let handle = gateway.handle(&keys[0]).expect("handle");
    let index = PluginIndex::resolve(gateway.catalog(), "workspace.rbac");
    group.bench_function("index_plugin_set/1_tenants", |b| {
        b.iter(|| black_box(gateway.check(black_box(&keys[0]), black_box("workspace.rbac"))))
    });
    group.bench_function("handle_plugin_set/1_tenants", |b| {
        b.iter(|| black_box(handle.check(black_box("workspace.rbac"))))
    });
    group.bench_function("handle_index_plugin_set/1_tenants", |b| {
        b.iter(|| black_box(handle.check_index(black_box(index))))
    });
    let response = minter.token("org-0");
    let verifier = Verifier::new(trust);
    group.bench_function("verify_jwt_every_call", |b| {
        b.iter(|| {
            let now = SystemClock.now();
            let token = verifier
                .verify(
                    black_box(&response.token),
                    &response.issuer_certificate,
                    now,
                    Validity::Strict,
                )
                .expect("verifies");
            black_box(
                Catalog::builtin()
                    .decide("workspace.rbac", &token.claims.ent)
                    .is_ok(),
            )
        })
    });
    group.finish();
    let mut parts = c.benchmark_group("parts");
    parts.bench_function("system_clock_now", |b| {
        b.iter(|| black_box(SystemClock.now()))
    });
    parts.bench_function("catalog_index_of", |b| {
        b.iter(|| black_box(Catalog::builtin().index_of(black_box("workspace.rbac"))))
    });
    parts.finish();
}

/// A set of four plugins with small configs, `workspace.rbac` among them.
fn plugin_set() -> PluginSet {
    let entry = |id: &str| PluginSetEntry {
        id: id.into(),
        config: serde_json::json!({"enabled": true}),
    };
    PluginSet::new(vec![
        entry("workspace.rbac"),
        entry("identity.oidc"),
        entry("identity.apikey"),
        entry("reliability.retry"),
    ])
    .expect("valid set")
}

criterion_group!(benches, bench);
criterion_main!(benches);
