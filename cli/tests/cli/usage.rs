//! `usage verify` and `issue --renew … --usage …`: a site's usage bundle verified with no
//! server, tampering refused with its reason, and the renewal loop.

use std::collections::BTreeMap;
use std::fs;

use mcpg_license_core::usage::{
    BUNDLE_FORMAT, Bundle, Day, DayEntry, ENTRY_VERSION, GENESIS_HASH, LicenseBinding,
    PluginCounts, SignedEntry, encode_key, license_digest,
};
use mcpg_license_core::{SigningKey, Unverified, decode_unverified};
use serde_json::Value;

use crate::{Workdir, assert_one_error, stdout};

/// 2027-01-01.
const FIRST_DAY: i64 = 1_798_761_600;

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("stdout is JSON")
}

/// A license bound to `deployment`, issued by the binary with the root `keys/root`.
fn license(work: &Workdir, root: &std::path::Path, out: &str, deployment: &str) -> String {
    work.issue(
        root,
        out,
        &[
            "--bind",
            deployment,
            "--limit",
            "max_gateways=3",
            "--entitlement",
            "plugin:policy.cedar",
        ],
    )
    .success();
    fs::read_to_string(work.path(out)).expect("license")
}

/// Three days of the ledger of `deployment` under `license`, signed with `key`.
fn bundle(key: &SigningKey, deployment: &str, license: &str) -> Bundle {
    let Ok(Unverified::OfflineLicense { claims, .. }) = decode_unverified(license) else {
        panic!("not a license");
    };
    let mut prev = GENESIS_HASH.to_owned();
    let entries: Vec<SignedEntry> = (0..3u64)
        .map(|i| {
            let mut plugins = BTreeMap::new();
            plugins.insert(
                "policy.cedar".to_owned(),
                PluginCounts {
                    allowed: 100 * (i + 1),
                    refused: i,
                },
            );
            let signed = DayEntry {
                v: ENTRY_VERSION,
                seq: i + 1,
                day: Day::of(FIRST_DAY + i as i64 * 86_400).to_string(),
                deployment_id: deployment.into(),
                org: claims.org.clone(),
                license_id: claims.lic.clone(),
                gateways_active: 1,
                tokens: 0,
                peak_gateways: 1,
                plugins,
                version: "0.1.0".into(),
                prev_hash: prev.clone(),
            }
            .sign(key);
            prev = signed.hash.clone();
            signed
        })
        .collect();
    Bundle {
        format: BUNDLE_FORMAT.into(),
        deployment_id: deployment.into(),
        deployment_key: encode_key(key.public_key()),
        license: LicenseBinding {
            id: claims.lic.clone(),
            org: claims.org.clone(),
            sha256: license_digest(license),
            token: license.trim().to_owned(),
        },
        exported_at: "2027-01-04T00:00:00Z".into(),
        entries,
    }
}

fn write(work: &Workdir, name: &str, bundle: &Bundle) {
    fs::write(work.path(name), bundle.to_json()).expect("write bundle");
}

#[test]
fn a_bundle_verifies_with_no_server_and_is_summarised() {
    let work = Workdir::new();
    let root = work.keygen("root");
    let text = license(&work, &root.secret, "acme.license", "dc1");
    let key = SigningKey::generate().expect("rng");
    let good = bundle(&key, "dc1", &text);
    write(&work, "usage.json", &good);
    let root_public = root.public.display().to_string();
    let args = |extra: &[&str]| {
        let mut args = vec![
            "usage",
            "verify",
            "usage.json",
            "--license",
            "acme.license",
            "--trust",
            &root_public,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let out = json(&stdout(&work.run(args(&["-o", "json"])).success()));
    assert_eq!(out["valid"], true);
    assert_eq!(out["days"], 3);
    assert_eq!(out["first_day"], "2027-01-01");
    assert_eq!(out["last_day"], "2027-01-03");
    assert_eq!(out["org"], "acme");
    assert_eq!(out["deployment_id"], "dc1");
    assert_eq!(
        out["plugins"]["policy.cedar"],
        serde_json::json!({"allowed": 600, "refused": 3})
    );
    assert_eq!(out["chain"]["last_seq"], 3);
    assert_eq!(out["chain"]["last_hash"], good.entries[2].hash.as_str());
    let text_out = stdout(&work.run(args(&[])).success());
    assert!(text_out.contains("VALID usage bundle"), "{text_out}");
    assert!(text_out.contains("2027-01-02"), "{text_out}");
    assert!(
        text_out.contains("policy.cedar: 600 allowed, 3 refused"),
        "{text_out}"
    );

    // The same bundle after it was imported up to its last entry: a replay.
    let head = good.entries[2].hash.clone();
    assert_one_error(
        work.run(args(&[
            "--deployment-key",
            &good.deployment_key,
            "--after-seq",
            "3",
            "--after-hash",
            &head,
        ])),
        1,
        "[replayed]",
    );
    // Another deployment's key on record.
    let other = encode_key(SigningKey::generate().expect("rng").public_key());
    assert_one_error(
        work.run(args(&[
            "--deployment-key",
            &other,
            "--after-seq",
            "1",
            "--after-hash",
            &good.entries[0].hash,
        ])),
        1,
        "[wrong_deployment_key]",
    );
    // Expected from deployment dc2.
    assert_one_error(
        work.run(args(&["--deployment", "dc2"])),
        1,
        "[license_mismatch]",
    );

    // Tampered: a count edited, a day removed, two days swapped.
    let mut edited = good.clone();
    if let Some(c) = edited.entries[1].entry.plugins.get_mut("policy.cedar") {
        c.allowed = 1;
    }
    write(&work, "usage.json", &edited);
    assert_one_error(work.run(args(&[])), 1, "[edited]");
    let mut removed = good.clone();
    removed.entries.remove(1);
    write(&work, "usage.json", &removed);
    assert_one_error(work.run(args(&[])), 1, "[removed_day]");
    let mut swapped = good.clone();
    swapped.entries.swap(1, 2);
    write(&work, "usage.json", &swapped);
    let out = json(&stdout(&work.run(args(&["-o", "json"])).code(1)));
    assert_eq!(
        (out["valid"].clone(), out["code"].clone()),
        (Value::Bool(false), Value::from("reordered"))
    );
}

#[test]
fn a_renewal_keeps_the_terms_and_starts_at_the_expiry_of_the_renewed_license() {
    let work = Workdir::new();
    let root = work.keygen("root");
    let text = license(&work, &root.secret, "acme.license", "dc1");
    let key = SigningKey::generate().expect("rng");
    write(&work, "usage.json", &bundle(&key, "dc1", &text));
    let root_secret = root.secret.display().to_string();
    let out = json(&stdout(
        &work
            .run([
                "issue",
                "--key",
                &root_secret,
                "--renew",
                "acme.license",
                "--usage",
                "usage.json",
                "--out",
                "acme-next.license",
                "-o",
                "json",
            ])
            .success(),
    ));
    let Ok(Unverified::OfflineLicense { claims: old, .. }) = decode_unverified(&text) else {
        panic!("not a license");
    };
    let new = &out["claims"];
    assert_eq!(new["org"], "acme");
    assert_eq!(new["tier"], "team");
    assert_eq!(new["bind"], "dc1");
    assert_eq!(new["lim"]["max_gateways"], 3);
    let ent: Vec<String> = old.ent.iter().map(|e| e.to_string()).collect();
    assert_eq!(new["ent"], serde_json::json!(ent));
    assert!(ent.contains(&"plugin:policy.cedar".to_owned()));
    assert_eq!(out["renews"], old.lic.as_str());
    assert_ne!(out["license"], old.lic.as_str());
    assert_eq!(out["usage"]["days"], 3);
    assert_eq!(out["usage"]["plugins"]["policy.cedar"]["allowed"], 600);
    // The new year starts where the renewed one ends.
    let nbf = new["nbf"].as_str().expect("nbf");
    assert_eq!(mcpg_license_core::clock::parse_rfc3339(nbf), Some(old.exp));
    let renewed = fs::read_to_string(work.path("acme-next.license")).expect("written");
    assert!(renewed.starts_with("v4.public."));
    // The text output names the usage it was based on.
    let text_out = stdout(
        &work
            .run([
                "issue",
                "--key",
                &root_secret,
                "--renew",
                "acme.license",
                "--usage",
                "usage.json",
                "--out",
                "acme-next2.license",
                "--limit",
                "max_gateways=5",
            ])
            .success(),
    );
    assert!(
        text_out.contains(&format!("renews {}", old.lic)),
        "{text_out}"
    );
    assert!(
        text_out.contains("policy.cedar: 600 allowed, 3 refused"),
        "{text_out}"
    );
}

#[test]
fn a_renewal_refuses_a_bundle_that_does_not_verify_or_is_another_licenses() {
    let work = Workdir::new();
    let root = work.keygen("root");
    let text = license(&work, &root.secret, "acme.license", "dc1");
    let other = license(&work, &root.secret, "other.license", "dc2");
    let key = SigningKey::generate().expect("rng");
    let root_secret = root.secret.display().to_string();
    let renew = |work: &Workdir| {
        work.run([
            "issue",
            "--key",
            &root_secret,
            "--renew",
            "acme.license",
            "--usage",
            "usage.json",
            "--out",
            "next.license",
        ])
    };
    let mut edited = bundle(&key, "dc1", &text);
    edited.entries[0].entry.tokens = 7;
    write(&work, "usage.json", &edited);
    assert_one_error(renew(&work), 2, "[edited]");
    write(&work, "usage.json", &bundle(&key, "dc2", &other));
    assert_one_error(renew(&work), 2, "[license_mismatch]");
    assert!(!work.path("next.license").exists(), "nothing written");
    // --renew needs --usage.
    let refused = work
        .run([
            "issue",
            "--key",
            &root_secret,
            "--renew",
            "acme.license",
            "--out",
            "next.license",
        ])
        .code(2);
    assert!(crate::stderr(&refused).contains("--usage"));
}
