//! The published usage receipt vector (`docs/test-vectors/usage-v1.json`): a three-day
//! bundle of deployment `dc1-cluster-7` under an offline license, with the canonical bytes
//! and hash of its first entry. Ed25519 and PASETO v4.public are deterministic, so
//! re-deriving reproduces every byte.
//!
//! The deployment key's seed is the published test seed `[7; 32]` and the root's is
//! SHA-256 of a public label: both are test keys, known to everyone, never to be trusted.
//! Regenerate with `MCPG_WRITE_VECTORS=1 cargo test -p mcpg-license-core --test core usage`.

use std::collections::BTreeMap;

use mcpg_license_core::usage::{
    BUNDLE_FORMAT, Bundle, ChainState, Day, DayEntry, ENTRY_VERSION, GENESIS_HASH, LicenseBinding,
    LicenseCheck, PluginCounts, encode_key, license_digest, verify_bundle,
};
use mcpg_license_core::{
    AUDIENCE, EntitlementId, LicenseClaims, Limits, SigningKey, Tier, TrustStore,
    issue_offline_license,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/test-vectors/usage-v1.json"
);
const ROOT_LABEL: &str = "mcpg test vector root 1";
const DEPLOYMENT_SEED: [u8; 32] = [7; 32];
const DEPLOYMENT: &str = "dc1-cluster-7";
const FIRST_DAY: i64 = 1_798_761_600; // 2027-01-01

fn root() -> SigningKey {
    let seed: [u8; 32] = Sha256::digest(ROOT_LABEL.as_bytes()).into();
    SigningKey::from_seed(&seed)
}

fn license_claims() -> LicenseClaims {
    LicenseClaims {
        iss: "https://auth.mcpg.dev".into(),
        sub: "lic_2222222222222222222222".into(),
        aud: AUDIENCE.into(),
        iat: 1_798_675_200, // 2026-12-31
        nbf: 1_798_675_200,
        exp: 1_830_211_200, // 2027-12-31
        jti: "jti_2222222222222222222222".into(),
        org: "acme-corp".into(),
        ws: None,
        env: None,
        tier: Tier::Enterprise,
        ent: ["plugin:policy.cedar"]
            .iter()
            .map(|e| EntitlementId::parse(e).expect("valid"))
            .collect(),
        lim: Limits {
            max_gateways: Some(5),
            ..Limits::default()
        },
        lic: "lic_2222222222222222222222".into(),
        rfa: None,
        grc: None,
        bind: Some(DEPLOYMENT.into()),
        ps: None,
    }
}

fn build() -> (Bundle, String) {
    let key = SigningKey::from_seed(&DEPLOYMENT_SEED);
    let license = issue_offline_license(&license_claims(), &root(), None).expect("signs");
    let mut prev = GENESIS_HASH.to_owned();
    let mut first_canonical = String::new();
    let entries = (0..3u64)
        .map(|i| {
            let mut plugins = BTreeMap::new();
            plugins.insert(
                "policy.cedar".to_owned(),
                PluginCounts {
                    allowed: [1200, 0, 980][i as usize],
                    refused: [3, 0, 1][i as usize],
                },
            );
            plugins.insert(
                "_unknown".to_owned(),
                PluginCounts {
                    allowed: 0,
                    refused: [2, 0, 0][i as usize],
                },
            );
            plugins.retain(|_, c| !c.is_zero());
            let entry = DayEntry {
                v: ENTRY_VERSION,
                seq: i + 1,
                day: Day::of(FIRST_DAY + i as i64 * 86_400).to_string(),
                deployment_id: DEPLOYMENT.into(),
                org: "acme-corp".into(),
                license_id: "lic_2222222222222222222222".into(),
                gateways_active: u32::from(i != 1),
                tokens: 0,
                peak_gateways: u32::from(i != 1),
                plugins,
                version: "0.1.0".into(),
                prev_hash: prev.clone(),
            };
            if i == 0 {
                first_canonical = entry.canonical();
            }
            let signed = entry.sign(&key);
            prev = signed.hash.clone();
            signed
        })
        .collect();
    let bundle = Bundle {
        format: BUNDLE_FORMAT.into(),
        deployment_id: DEPLOYMENT.into(),
        deployment_key: encode_key(key.public_key()),
        license: LicenseBinding {
            id: "lic_2222222222222222222222".into(),
            org: "acme-corp".into(),
            sha256: license_digest(&license),
            token: license,
        },
        exported_at: "2027-01-04T09:00:00Z".into(),
        entries,
    };
    (bundle, first_canonical)
}

fn vector() -> Value {
    let (bundle, first_canonical) = build();
    json!({
        "description": "MCPG usage receipt (bundle) test vector. TEST KEYS ONLY: the deployment key's Ed25519 seed is the published test seed [7; 32] (32 bytes of 0x07), the root's is SHA-256 of its label. Never trust either.",
        "deployment_seed_hex": hex(&DEPLOYMENT_SEED),
        "root": {
            "seed": format!("SHA-256(\"{ROOT_LABEL}\")"),
            "public_paserk": root().public_key().to_paserk(),
        },
        "entry_signature_domain": "mcpg-usage-entry-v1\\0",
        "first_entry_canonical": first_canonical,
        "first_entry_sha256": bundle.entries[0].hash,
        "chain_head": ChainState {
            deployment_key: bundle.deployment_key.clone(),
            last_seq: 3,
            last_hash: bundle.entries[2].hash.clone(),
        },
        "bundle": bundle,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn published() -> Value {
    serde_json::from_str(&std::fs::read_to_string(PATH).expect("vector file exists"))
        .expect("vector is JSON")
}

#[test]
fn the_usage_vector_is_reproduced_exactly() {
    let fresh = vector();
    if std::env::var_os("MCPG_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&fresh).expect("serialises") + "\n";
        std::fs::write(PATH, text).expect("write vector");
    }
    assert_eq!(published(), fresh);
}

#[test]
fn the_usage_vector_verifies() {
    let published = published();
    let root = mcpg_license_core::PublicKey::from_paserk(
        published["root"]["public_paserk"].as_str().expect("string"),
    )
    .expect("root key");
    let trust = TrustStore::new([root]);
    let bytes = serde_json::to_vec(&published["bundle"]).expect("json");
    let verified = verify_bundle(
        &bytes,
        None,
        &LicenseCheck {
            trust: &trust,
            license: None,
            deployment_id: Some(DEPLOYMENT),
        },
    )
    .expect("the vector verifies");
    let head: ChainState =
        serde_json::from_value(published["chain_head"].clone()).expect("chain head");
    assert_eq!(verified.chain, head);
    assert_eq!(verified.entries.len(), 3);
    assert_eq!(verified.license, license_claims());
    let canonical = published["first_entry_canonical"].as_str().expect("string");
    assert_eq!(
        hex(&Sha256::digest(canonical.as_bytes())),
        published["first_entry_sha256"].as_str().expect("string")
    );
    assert_eq!(
        verified.entries[1].entry.prev_hash,
        published["first_entry_sha256"]
    );
}
