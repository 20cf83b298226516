//! Keys, certificates and claims shared by the tests. Keys are generated at run time.

use mcpg_license_core::{
    AUDIENCE, Bounds, Catalog, IssuerCertificate, JwtSigner, LicenseClaims, Limits, SigningKey,
    Tier, TrustStore,
};

pub const NOW: i64 = 1_800_000_000;
pub const ISSUER: &str = "https://auth.mcpg.test";
pub const DAY: i64 = 86_400;

pub struct World {
    pub root: SigningKey,
    pub issuer_key: SigningKey,
    pub cert: String,
    pub trust: TrustStore,
}

pub fn key() -> SigningKey {
    SigningKey::generate().expect("system rng")
}

pub fn certificate(root: &SigningKey, subject: &SigningKey, bounds: Bounds) -> String {
    IssuerCertificate {
        cid: "cert_test".into(),
        issuer: ISSUER.into(),
        key: subject.public_key().clone(),
        iat: NOW - DAY,
        nbf: NOW - DAY,
        exp: NOW + 90 * DAY,
        bounds,
    }
    .sign(root)
    .expect("valid certificate")
}

pub fn world_with(bounds: Bounds) -> World {
    let root = key();
    let issuer_key = key();
    let cert = certificate(&root, &issuer_key, bounds);
    let trust = TrustStore::new([root.public_key().clone()]);
    World {
        root,
        issuer_key,
        cert,
        trust,
    }
}

pub fn world() -> World {
    world_with(Bounds::unbounded())
}

/// Online claims exactly as the federation service mints them at `NOW`.
pub fn online_claims(tier: Tier) -> LicenseClaims {
    LicenseClaims {
        iss: ISSUER.into(),
        sub: "gw_01".into(),
        aud: AUDIENCE.into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + DAY,
        jti: "tok_01".into(),
        org: "acme-corp".into(),
        ws: Some("platform-team".into()),
        env: Some("prod".into()),
        tier,
        ent: Catalog::builtin().tier_defaults(tier),
        lim: Limits {
            max_gateways: Some(50),
            ..Limits::default()
        },
        lic: "lic_01".into(),
        rfa: Some(NOW + 8 * 3_600),
        grc: Some(NOW + DAY + 7 * DAY),
        bind: None,
        ps: None,
    }
}

/// Offline claims as `mcpg-license issue` makes them: a year, no refresh, no grace.
pub fn offline_claims(tier: Tier) -> LicenseClaims {
    LicenseClaims {
        sub: "lic_offline".into(),
        lic: "lic_offline".into(),
        exp: NOW + 365 * DAY,
        rfa: None,
        grc: None,
        ws: None,
        env: None,
        ..online_claims(tier)
    }
}

pub fn sign_jwt(key: &SigningKey, claims: &LicenseClaims) -> String {
    JwtSigner::new(key.clone())
        .sign(claims)
        .expect("valid claims")
}
