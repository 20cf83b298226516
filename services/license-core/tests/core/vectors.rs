//! Published test vectors (`docs/test-vectors/v1.json`): fixed keys, claims and the exact
//! tokens they produce. Ed25519 is deterministic, so re-deriving must reproduce every byte.
//!
//! The vector keys are derived at run time from public labels (SHA-256 of a text), so no
//! private key is stored anywhere. Regenerate with `MCPG_WRITE_VECTORS=1 cargo test -p
//! mcpg-license-core --test core vectors`.

use mcpg_license_core::{
    AUDIENCE, Bounds, EntitlementId, IssuerCertificate, Jwks, JwtSigner, LicenseClaims, Limits,
    SigningKey, Tier, TimeFormat, TrustStore, Validity, issue_offline_license,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/test-vectors/v1.json"
);
const ROOT_LABEL: &str = "mcpg test vector root 1";
const ISSUER_LABEL: &str = "mcpg test vector issuer 1";

fn derived_key(label: &str) -> SigningKey {
    let seed: [u8; 32] = Sha256::digest(label.as_bytes()).into();
    SigningKey::from_seed(&seed)
}

fn claims() -> LicenseClaims {
    LicenseClaims {
        iss: "https://auth.mcpg.dev".into(),
        sub: "gw_0000000000000000000000".into(),
        aud: AUDIENCE.into(),
        iat: 1_798_761_600, // 2027-01-01T00:00:00Z
        nbf: 1_798_761_595,
        exp: 1_798_848_000,
        jti: "tok_0000000000000000000000".into(),
        org: "acme-corp".into(),
        ws: Some("platform-team".into()),
        env: Some("prod".into()),
        tier: Tier::Team,
        ent: ["feature:workspace.rbac", "plugin:identity.oidc"]
            .iter()
            .map(|e| EntitlementId::parse(e).expect("valid"))
            .collect(),
        lim: Limits {
            max_gateways: Some(25),
            rps: Some(100),
            ..Limits::default()
        },
        lic: "lic_0000000000000000000000".into(),
        rfa: Some(1_798_790_400),
        grc: Some(1_799_452_800),
        bind: None,
        ps: None,
    }
}

fn offline() -> LicenseClaims {
    LicenseClaims {
        sub: "lic_1111111111111111111111".into(),
        lic: "lic_1111111111111111111111".into(),
        exp: 1_830_297_600, // 2028-01-01
        ws: None,
        env: None,
        rfa: None,
        grc: None,
        bind: Some("dc1-cluster-7".into()),
        tier: Tier::Enterprise,
        ..claims()
    }
}

fn build() -> Value {
    let root = derived_key(ROOT_LABEL);
    let issuer = derived_key(ISSUER_LABEL);
    let cert = IssuerCertificate {
        cid: "cert_0000000000000000000000".into(),
        issuer: "https://auth.mcpg.dev".into(),
        key: issuer.public_key().clone(),
        iat: 1_798_675_200,
        nbf: 1_798_675_200,
        exp: 1_806_451_200,
        bounds: Bounds::unbounded(),
    }
    .sign(&root)
    .expect("signs");
    let jwt = JwtSigner::new(issuer.clone())
        .sign(&claims())
        .expect("signs");
    let license = issue_offline_license(&offline(), &root, None).expect("signs");
    let mut jwk = issuer.public_key().to_jwk();
    jwk.mcpg_cert = Some(cert.clone());
    let parse = |bytes: Vec<u8>| serde_json::from_slice::<Value>(&bytes).expect("json");
    json!({
        "description": "MCPG license token test vectors. Keys are Ed25519 seeds derived as SHA-256 of the UTF-8 label; no private key is stored here.",
        "root": {
            "seed": format!("SHA-256(\"{ROOT_LABEL}\")"),
            "public_paserk": root.public_key().to_paserk(),
            "kid": root.kid().as_str(),
        },
        "issuer": {
            "seed": format!("SHA-256(\"{ISSUER_LABEL}\")"),
            "public_paserk": issuer.public_key().to_paserk(),
            "kid": issuer.kid().as_str(),
            "public_pem": issuer.public_key().to_pem(),
        },
        "issuer_certificate": cert,
        "jwks": Jwks { keys: vec![jwk] },
        "online": {
            "claims": parse(claims().to_json(TimeFormat::Seconds)),
            "jwt": jwt,
        },
        "offline": {
            "implicit_assertion": "mcpg-offline-license-v1",
            "claims": parse(offline().to_json(TimeFormat::Rfc3339)),
            "license": license,
        },
    })
}

#[test]
fn published_vectors_are_reproduced_exactly() {
    let fresh = build();
    if std::env::var_os("MCPG_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&fresh).expect("serialises") + "\n";
        std::fs::write(PATH, text).expect("write vectors");
    }
    let published: Value =
        serde_json::from_str(&std::fs::read_to_string(PATH).expect("vectors file exists"))
            .expect("vectors are JSON");
    assert_eq!(published, fresh);
}

#[test]
fn published_vectors_verify() {
    let published: Value =
        serde_json::from_str(&std::fs::read_to_string(PATH).expect("vectors file exists"))
            .expect("vectors are JSON");
    let text = |v: &Value| v.as_str().expect("string").to_owned();
    let root =
        mcpg_license_core::PublicKey::from_paserk(&text(&published["root"]["public_paserk"]))
            .expect("root key");
    let trust = TrustStore::new([root]);
    let at = 1_798_761_600 + 60;
    let online = trust
        .verify_online_token(
            &text(&published["online"]["jwt"]),
            &text(&published["issuer_certificate"]),
            at,
            Validity::Strict,
        )
        .expect("online vector verifies");
    assert_eq!(online, claims());
    let license = trust
        .verify_offline_license(
            &text(&published["offline"]["license"]),
            at,
            Some("dc1-cluster-7"),
        )
        .expect("offline vector verifies");
    assert_eq!(license.claims, offline());
}
