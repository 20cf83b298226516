//! `mcpg-ctl usage import` against a real service: an air-gapped site's bundle (made here
//! with license-core, under a license `mcpg-license issue` signed with a vendor root the
//! service trusts) is imported into the org its license names, shows in `usage show`, and
//! a replay exits 1 with its reason.

use std::collections::BTreeMap;

use mcpg_license_core::usage::{
    BUNDLE_FORMAT, Bundle, Day, DayEntry, ENTRY_VERSION, GENESIS_HASH, LicenseBinding,
    PluginCounts, SignedEntry, encode_key, license_digest,
};
use mcpg_license_core::{SigningKey, Unverified, decode_unverified};

use super::{Server, assert_one_error, stdout};
use crate::support::Signer;

/// Five days of ledger, the last one yesterday (UTC).
fn ledger(key: &SigningKey, license: &str) -> Vec<SignedEntry> {
    let Ok(Unverified::OfflineLicense { claims, .. }) = decode_unverified(license) else {
        panic!("not an offline license");
    };
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        / 86_400;
    let mut prev = GENESIS_HASH.to_owned();
    (0..5u64)
        .map(|i| {
            let signed = DayEntry {
                v: ENTRY_VERSION,
                seq: i + 1,
                day: Day::of((today - 5 + i as i64) * 86_400).to_string(),
                deployment_id: "dc1".into(),
                org: claims.org.clone(),
                license_id: claims.lic.clone(),
                gateways_active: 1,
                tokens: 0,
                peak_gateways: 1,
                plugins: BTreeMap::from([(
                    "policy.cedar".to_owned(),
                    PluginCounts {
                        allowed: 100,
                        refused: 1,
                    },
                )]),
                version: "0.1.0".into(),
                prev_hash: prev.clone(),
            }
            .sign(key);
            prev = signed.hash.clone();
            signed
        })
        .collect()
}

fn bundle(key: &SigningKey, license: &str, entries: &[SignedEntry]) -> String {
    let Ok(Unverified::OfflineLicense { claims, .. }) = decode_unverified(license) else {
        panic!("not an offline license");
    };
    Bundle {
        format: BUNDLE_FORMAT.into(),
        deployment_id: "dc1".into(),
        deployment_key: encode_key(key.public_key()),
        license: LicenseBinding {
            id: claims.lic.clone(),
            org: claims.org.clone(),
            sha256: license_digest(license),
            token: license.trim().to_owned(),
        },
        exported_at: "2027-01-01T00:00:00Z".into(),
        entries: entries.to_vec(),
    }
    .to_json()
}

#[test]
fn an_air_gapped_sites_bundle_is_imported_once_into_its_licenses_org() {
    let signer = Signer::new();
    let root = signer.keygen("vendor");
    let secret = root.secret.display().to_string();
    signer.ok(&[
        "issue",
        "--key",
        &secret,
        "--org",
        "acme",
        "--tier",
        "team",
        "--bind",
        "dc1",
        "--out",
        "acme.license",
    ]);
    let license = std::fs::read_to_string(signer.path("acme.license")).expect("license");
    let public = root.public.display().to_string();
    let server = Server::start_with(&["--trusted-root", &public]);
    server
        .ctl(["org", "create", "acme", "--display-name", "Acme"])
        .success();
    let key = SigningKey::generate().expect("rng");
    let entries = ledger(&key, &license);
    let first = bundle(&key, &license, &entries[..3]);
    std::fs::write(server.dir().join("usage-1.json"), &first).expect("write");
    std::fs::write(
        server.dir().join("usage-2.json"),
        bundle(&key, &license, &entries),
    )
    .expect("write");

    // The org comes from the bundle's license.
    let out = server.ctl(["usage", "import", "usage-1.json"]).success();
    let text = stdout(&out);
    for needle in ["acme", "dc1", "days imported", "policy.cedar 300/3", "1-3"] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    let shown = server.json(["usage", "show", "acme"]);
    let periods: Vec<&str> = shown["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["period"].as_str().expect("period"))
        .collect();
    let days: Vec<&str> = entries[..3].iter().map(|e| e.entry.day.as_str()).collect();
    assert_eq!(periods, days);

    // The same bundle again: refused with its reason, exit 1.
    assert_one_error(
        server.ctl(["usage", "import", "usage-1.json"]),
        1,
        "replayed",
    );
    // Into another org: its license is acme's.
    server
        .ctl(["org", "create", "globex", "--display-name", "Globex"])
        .success();
    assert_one_error(
        server.ctl(["usage", "import", "usage-1.json", "globex"]),
        1,
        "license_mismatch",
    );

    // The whole ledger: only the two new days.
    let answer = server.json(["usage", "import", "usage-2.json", "acme"]);
    assert_eq!(
        (
            &answer["days_imported"],
            &answer["already_imported"],
            &answer["first_seq"],
            &answer["last_seq"]
        ),
        (
            &serde_json::json!(2),
            &serde_json::json!(3),
            &serde_json::json!(4),
            &serde_json::json!(5)
        )
    );
    assert_eq!(answer["chain_hash"], entries[4].hash.as_str());
    let shown = server.json(["usage", "show", "acme"]);
    assert_eq!(shown["rows"].as_array().expect("rows").len(), 5);
    assert_one_error(
        server.ctl(["usage", "import", "usage-1.json", "-o", "csv"]),
        2,
        "--output csv",
    );
}
