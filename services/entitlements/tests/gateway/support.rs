//! Test fixtures: a root and issuer generated at run time, a fake federation that mints
//! real tokens, and gateways on a manual clock.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpg_entitlements::{
    Denial, FederationClient, FetchError, FetchFuture, Gateway, GatewayBuilder, ModeSettings,
    Settings, TokenResponse, UsageReport,
};
use mcpg_license_core::{
    AUDIENCE, Bounds, Catalog, IssuerCertificate, JwtSigner, LicenseClaims, Limits, ManualClock,
    PluginSet, SigningKey, Tier, TrustStore, UnixTime,
};
use secrecy::SecretString;

/// 2027-01-15T08:00:00Z: the tests' "now" at start.
pub const START: UnixTime = 1_800_000_000;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;
pub const ISSUER: &str = "https://auth.test";
pub const CREDENTIAL: &str = "mcpg_gw_test_credential";

/// A root key and one certified issuer key.
pub struct Authority {
    pub root: SigningKey,
    pub signer: JwtSigner,
    pub certificate: String,
}

impl Authority {
    pub fn new() -> Self {
        let root = SigningKey::generate().expect("root key");
        let (signer, certificate) =
            Self::issuer(&root, Bounds::unbounded(), START - DAY, START + 365 * DAY);
        Self {
            root,
            signer,
            certificate,
        }
    }

    /// An authority whose certificate is valid around the real current time.
    pub fn new_now() -> Self {
        let now = mcpg_license_core::Clock::now(&mcpg_license_core::SystemClock);
        let root = SigningKey::generate().expect("root key");
        let (signer, certificate) =
            Self::issuer(&root, Bounds::unbounded(), now - DAY, now + 365 * DAY);
        Self {
            root,
            signer,
            certificate,
        }
    }

    /// A fresh issuer key certified by `root` with `bounds`, valid `[nbf, exp)`.
    pub fn issuer(
        root: &SigningKey,
        bounds: Bounds,
        nbf: UnixTime,
        exp: UnixTime,
    ) -> (JwtSigner, String) {
        let key = SigningKey::generate().expect("issuer key");
        let cert = IssuerCertificate {
            cid: format!("cert-{}", key.kid()),
            issuer: ISSUER.into(),
            key: key.public_key().clone(),
            iat: nbf,
            nbf,
            exp,
            bounds,
        }
        .sign(root)
        .expect("certificate signs");
        (JwtSigner::new(key), cert)
    }

    pub fn trust(&self) -> TrustStore {
        TrustStore::new([self.root.public_key().clone()])
    }

    /// Rotates to a new certified issuer key.
    pub fn rotate(&mut self) {
        let (signer, certificate) = Self::issuer(
            &self.root,
            Bounds::unbounded(),
            START - DAY,
            START + 365 * DAY,
        );
        self.signer = signer;
        self.certificate = certificate;
    }

    pub fn mint(&self, claims: &LicenseClaims) -> TokenResponse {
        TokenResponse {
            token: self.signer.sign(claims).expect("claims sign"),
            issuer_certificate: self.certificate.clone(),
            issuer_certificates: Vec::new(),
            plugin_set: None,
        }
    }

    /// A response for `claims` carrying `plugin_set` as the `plugin_set` member.
    pub fn mint_with(
        &self,
        claims: &LicenseClaims,
        plugin_set: Option<serde_json::Value>,
    ) -> TokenResponse {
        TokenResponse {
            plugin_set,
            ..self.mint(claims)
        }
    }
}

/// The `plugin_set` member the federation serves for `set`.
pub fn served(set: &PluginSet) -> serde_json::Value {
    serde_json::json!({"digest": set.digest(), "plugins": set})
}

/// What the fake federation puts in the `plugin_set` member when its tokens name a set.
#[derive(Clone)]
pub enum ServedSet {
    /// The set the token names.
    Matching,
    /// Nothing.
    Omitted,
    /// This JSON instead.
    Other(serde_json::Value),
}

/// The contract's claims for `org` at `tier`, issued at `iat`.
pub fn claims(org: &str, tier: Tier, iat: UnixTime) -> LicenseClaims {
    let exp = iat + 24 * HOUR;
    LicenseClaims {
        iss: ISSUER.into(),
        sub: "gw_1".into(),
        aud: AUDIENCE.into(),
        iat,
        nbf: iat - 5,
        exp,
        jti: format!("tok-{iat}-{}", fastrand::u64(..)),
        org: org.into(),
        ws: Some("platform".into()),
        env: Some("prod".into()),
        tier,
        ent: Catalog::builtin().tier_defaults(tier),
        lim: Limits::default(),
        lic: format!("lic-{org}"),
        rfa: Some(iat + 8 * HOUR),
        grc: Some(exp + 7 * DAY),
        bind: None,
        ps: None,
    }
}

/// What the fake federation answers.
#[derive(Clone)]
pub enum Behaviour {
    /// Mint a token for the org and tier at the clock's time.
    Serve {
        org: String,
        tier: Tier,
    },
    /// Hand out exactly this response.
    Fixed(TokenResponse),
    Outage {
        retry_after: Option<Duration>,
    },
    Deny(Denial),
}

/// A federation client that mints real tokens and counts calls.
pub struct FakeFederation {
    pub authority: Mutex<Authority>,
    pub behaviour: Mutex<Behaviour>,
    pub clock: ManualClock,
    pub calls: AtomicUsize,
    pub delay: Option<Duration>,
    /// The revocation list it publishes, if any.
    pub revocations: Mutex<Option<String>>,
    /// The plugin set its tokens name (`ps`), if any.
    pub plugin_set: Mutex<Option<PluginSet>>,
    /// What it serves beside a token that names a set.
    pub served_set: Mutex<ServedSet>,
    /// The limits its tokens carry (`lim`).
    pub limits: Mutex<Limits>,
    /// The usage report of every token request, in order.
    pub reports: Mutex<Vec<Option<UsageReport>>>,
}

impl FakeFederation {
    pub fn new(clock: ManualClock, tier: Tier) -> Arc<Self> {
        Arc::new(Self {
            authority: Mutex::new(Authority::new()),
            behaviour: Mutex::new(Behaviour::Serve {
                org: "acme".into(),
                tier,
            }),
            clock,
            calls: AtomicUsize::new(0),
            delay: None,
            revocations: Mutex::new(None),
            plugin_set: Mutex::new(None),
            served_set: Mutex::new(ServedSet::Matching),
            limits: Mutex::new(Limits::default()),
            reports: Mutex::new(Vec::new()),
        })
    }

    /// The usage reports received so far.
    pub fn reports(&self) -> Vec<Option<UsageReport>> {
        self.reports.lock().expect("lock").clone()
    }

    /// Its tokens name `set` from now on (`None`: no set).
    pub fn set_plugin_set(&self, set: Option<PluginSet>) {
        *self.plugin_set.lock().expect("lock") = set;
    }

    /// What it serves beside tokens naming a set from now on.
    pub fn serve_set(&self, served: ServedSet) {
        *self.served_set.lock().expect("lock") = served;
    }

    /// The limits its tokens carry from now on.
    pub fn set_limits(&self, limits: Limits) {
        *self.limits.lock().expect("lock") = limits;
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().expect("lock") = behaviour;
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn trust(&self) -> TrustStore {
        self.authority.lock().expect("lock").trust()
    }
}

impl FederationClient for FakeFederation {
    fn fetch_token<'a>(&'a self, _credential: &'a SecretString) -> FetchFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(delay) = self.delay {
                tokio::time::sleep(delay).await;
            }
            let behaviour = self.behaviour.lock().expect("lock").clone();
            match behaviour {
                Behaviour::Serve { org, tier } => {
                    let now = mcpg_license_core::Clock::now(&self.clock);
                    let mut claims = claims(&org, tier, now);
                    claims.lim = *self.limits.lock().expect("lock");
                    let set = self.plugin_set.lock().expect("lock").clone();
                    claims.ps = set.as_ref().map(PluginSet::claim);
                    let member = match (&set, self.served_set.lock().expect("lock").clone()) {
                        (None, _) | (Some(_), ServedSet::Omitted) => None,
                        (Some(set), ServedSet::Matching) => Some(served(set)),
                        (Some(_), ServedSet::Other(value)) => Some(value),
                    };
                    Ok(self
                        .authority
                        .lock()
                        .expect("lock")
                        .mint_with(&claims, member))
                }
                Behaviour::Fixed(response) => Ok(response),
                Behaviour::Outage { retry_after } => Err(FetchError::Outage {
                    cause: "connection refused".into(),
                    retry_after,
                }),
                Behaviour::Deny(denial) => Err(FetchError::Denied(denial)),
            }
        })
    }

    fn fetch_token_reporting<'a>(
        &'a self,
        credential: &'a SecretString,
        usage: Option<&'a UsageReport>,
    ) -> FetchFuture<'a> {
        self.reports.lock().expect("lock").push(usage.cloned());
        self.fetch_token(credential)
    }

    fn fetch_revocations(&self) -> mcpg_entitlements::RevocationsFuture<'_> {
        let list = self.revocations.lock().expect("lock").clone();
        Box::pin(async move { Ok(list) })
    }
}

/// Settings for a federated gateway keeping state in `dir`.
pub fn federated_settings(dir: &Path, trust: TrustStore) -> Settings {
    Settings {
        mode: ModeSettings::Federated {
            url: "http://127.0.0.1:9".into(),
            credential: SecretString::from(CREDENTIAL),
            timeout: Duration::from_secs(1),
        },
        state_dir: dir.to_owned(),
        trust,
        revocation_list: None,
        more_tenants: Vec::new(),
    }
}

/// A federated gateway on `clock` talking to `fed`.
pub fn federated(dir: &Path, clock: &ManualClock, fed: &Arc<FakeFederation>) -> Gateway {
    federated_as(dir, clock, fed, CREDENTIAL)
}

/// A federated gateway holding `credential`, on `clock`, talking to `fed`.
pub fn federated_as(
    dir: &Path,
    clock: &ManualClock,
    fed: &Arc<FakeFederation>,
    credential: &str,
) -> Gateway {
    let mut settings = federated_settings(dir, fed.trust());
    if let ModeSettings::Federated { credential: c, .. } = &mut settings.mode {
        *c = SecretString::from(credential);
    }
    GatewayBuilder::new(settings)
        .clock(Arc::new(clock.clone()))
        .client(fed.clone())
        .build()
        .expect("gateway starts")
}

/// The tenant the fake federation's tokens are for.
pub fn acme() -> mcpg_entitlements::TenantKey {
    mcpg_entitlements::TenantKey::parse("acme/platform/prod").expect("valid tenant")
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}
