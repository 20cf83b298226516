//! Criterion benchmarks of the license codecs: JWT sign/verify, PASETO sign/verify, chain
//! verification, and a raw Ed25519 signature as the floor they are measured against.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mcpg_license_core::{
    AUDIENCE, Bounds, Catalog, IssuerCertificate, JwtSigner, LicenseClaims, Limits, SigningKey,
    Tier, TrustStore, Validity, issue_offline_license, jwt,
};

const NOW: i64 = 1_800_000_000;

fn claims() -> LicenseClaims {
    LicenseClaims {
        iss: "https://auth.mcpg.dev".into(),
        sub: "gw_01HZX3K4M5N6P7Q8R9S0T1V2W3".into(),
        aud: AUDIENCE.into(),
        iat: NOW,
        nbf: NOW - 5,
        exp: NOW + 86_400,
        jti: "tok_01HZX3K4M5N6P7Q8R9S0T1V2W3".into(),
        org: "acme-corp".into(),
        ws: Some("platform-team".into()),
        env: Some("prod".into()),
        tier: Tier::Enterprise,
        ent: Catalog::builtin().tier_defaults(Tier::Enterprise),
        lim: Limits {
            max_gateways: Some(50),
            max_workspaces: Some(10),
            max_environments: Some(30),
            rps: Some(100),
            ..Limits::default()
        },
        lic: "lic_01HZX3K4M5N6P7Q8R9S0T1V2W3".into(),
        rfa: Some(NOW + 28_800),
        grc: Some(NOW + 86_400 + 604_800),
        bind: None,
        ps: None,
    }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_seed(&[seed; 32])
}

fn benches(c: &mut Criterion) {
    let root = key(1);
    let issuer = key(2);
    let cert = IssuerCertificate {
        cid: "cert_bench".into(),
        issuer: "https://auth.mcpg.dev".into(),
        key: issuer.public_key().clone(),
        iat: NOW - 86_400,
        nbf: NOW - 86_400,
        exp: NOW + 90 * 86_400,
        bounds: Bounds::unbounded(),
    }
    .sign(&root)
    .expect("signs");
    let trust = TrustStore::new([root.public_key().clone()]);
    let verified_issuer = trust
        .verify_certificate(&cert, NOW, Validity::Strict)
        .expect("verifies");
    let signer = JwtSigner::new(issuer.clone());
    let claims = claims();
    let token = signer.sign(&claims).expect("signs");
    let offline = LicenseClaims {
        exp: NOW + 365 * 86_400,
        rfa: None,
        grc: None,
        ..claims.clone()
    };
    let license = issue_offline_license(&offline, &root, None).expect("signs");
    let message = vec![0x5a_u8; token.len() - 87];

    c.bench_function("ed25519_raw_sign_32_bytes", |b| {
        b.iter(|| issuer.sign(black_box(&[0x5a_u8; 32])))
    });
    c.bench_function("ed25519_raw_sign", |b| {
        b.iter(|| issuer.sign(black_box(&message)))
    });
    let raw_signature = issuer.sign(&message);
    c.bench_function("ed25519_raw_verify_strict", |b| {
        b.iter(|| {
            issuer
                .public_key()
                .verify(black_box(&message), &raw_signature)
        })
    });
    c.bench_function("jwt_sign", |b| b.iter(|| signer.sign(black_box(&claims))));
    c.bench_function("jwt_verify", |b| {
        b.iter(|| {
            let jwt = jwt::parse_jwt(black_box(&token)).expect("parses");
            let claims = jwt.verify(issuer.public_key()).expect("verifies");
            jwt::check_times(&claims, NOW, Validity::Strict).expect("valid");
        })
    });
    c.bench_function("jwt_verify_with_chain_cached", |b| {
        b.iter(|| {
            verified_issuer
                .verify_jwt(black_box(&token), NOW, Validity::Strict)
                .expect("verifies")
        })
    });
    c.bench_function("chain_verify_certificate_and_jwt", |b| {
        b.iter(|| {
            trust
                .verify_online_token(black_box(&token), &cert, NOW, Validity::Strict)
                .expect("verifies")
        })
    });
    c.bench_function("paseto_sign", |b| {
        b.iter(|| issue_offline_license(black_box(&offline), &root, None).expect("signs"))
    });
    c.bench_function("paseto_verify", |b| {
        b.iter(|| {
            trust
                .verify_offline_license(black_box(&license), NOW, None)
                .expect("verifies")
        })
    });
}

criterion_group!(codecs, benches);
criterion_main!(codecs);
