//! Unit tests of the usage receipts: canonical form, and every reason a bundle is refused.

use std::collections::BTreeMap;

use super::*;
use crate::chain::{TrustStore, issue_offline_license};
use crate::claims::{AUDIENCE, LicenseClaims};
use crate::entitlement::EntitlementSet;
use crate::limits::Limits;
use crate::tier::Tier;

const DAY0: i64 = 1_793_664_000; // 2026-11-03T00:00:00Z

struct Site {
    root: SigningKey,
    key: SigningKey,
    license: String,
}

fn license_for(root: &SigningKey, lic: &str, bind: &str) -> String {
    let claims = LicenseClaims {
        iss: "https://vendor.example".into(),
        sub: lic.into(),
        aud: AUDIENCE.into(),
        iat: DAY0 - 86_400,
        nbf: DAY0 - 86_400,
        exp: DAY0 + 365 * 86_400,
        jti: format!("jti-{lic}"),
        org: "acme".into(),
        ws: None,
        env: None,
        tier: Tier::Enterprise,
        ent: EntitlementSet::new(),
        lim: Limits::default(),
        lic: lic.into(),
        rfa: None,
        grc: None,
        bind: Some(bind.into()),
        ps: None,
    };
    issue_offline_license(&claims, root, None).expect("signs")
}

fn site(deployment: &str) -> Site {
    let root = SigningKey::generate().expect("rng");
    let license = license_for(&root, "lic_a", deployment);
    Site {
        root,
        key: SigningKey::generate().expect("rng"),
        license,
    }
}

fn entries(
    key: &SigningKey,
    deployment: &str,
    from_seq: u64,
    prev: &str,
    days: u64,
) -> Vec<SignedEntry> {
    let mut prev_hash = prev.to_owned();
    (0..days)
        .map(|i| {
            let seq = from_seq + i;
            let mut plugins = BTreeMap::new();
            plugins.insert(
                "policy.cedar".to_owned(),
                PluginCounts {
                    allowed: 100 + seq,
                    refused: seq % 3,
                },
            );
            let signed = DayEntry {
                v: ENTRY_VERSION,
                seq,
                day: Day::of(DAY0 + (seq as i64 - 1) * 86_400).to_string(),
                deployment_id: deployment.into(),
                org: "acme".into(),
                license_id: "lic_a".into(),
                gateways_active: 1,
                tokens: 0,
                peak_gateways: 1,
                plugins,
                version: "0.1.0".into(),
                prev_hash: prev_hash.clone(),
            }
            .sign(key);
            prev_hash = signed.hash.clone();
            signed
        })
        .collect()
}

fn bundle_of(site: &Site, deployment: &str, entries: Vec<SignedEntry>) -> Bundle {
    Bundle {
        format: BUNDLE_FORMAT.into(),
        deployment_id: deployment.into(),
        deployment_key: encode_key(site.key.public_key()),
        license: LicenseBinding {
            id: "lic_a".into(),
            org: "acme".into(),
            sha256: license_digest(&site.license),
            token: site.license.clone(),
        },
        exported_at: "2026-11-10T00:00:00Z".into(),
        entries,
    }
}

fn bytes(bundle: &Bundle) -> Vec<u8> {
    bundle.to_json().into_bytes()
}

fn verify(
    site: &Site,
    bytes: &[u8],
    chain: Option<&ChainState>,
) -> Result<VerifiedBundle, ReceiptError> {
    let trust = TrustStore::new([site.root.public_key().clone()]);
    verify_bundle(
        bytes,
        chain,
        &LicenseCheck {
            trust: &trust,
            license: Some(&site.license),
            deployment_id: Some("dc1"),
        },
    )
}

fn code(result: Result<VerifiedBundle, ReceiptError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn the_canonical_form_sorts_members_and_has_no_whitespace() {
    let mut plugins = BTreeMap::new();
    plugins.insert(
        "slack".to_owned(),
        PluginCounts {
            allowed: 120,
            refused: 2,
        },
    );
    plugins.insert(
        "_unknown".to_owned(),
        PluginCounts {
            allowed: 0,
            refused: 5,
        },
    );
    let entry = DayEntry {
        v: 1,
        seq: 1,
        day: "2026-11-03".into(),
        deployment_id: "dc1".into(),
        org: "acme".into(),
        license_id: "lic_a".into(),
        gateways_active: 1,
        tokens: 0,
        peak_gateways: 1,
        plugins,
        version: "0.1.0".into(),
        prev_hash: GENESIS_HASH.into(),
    };
    assert_eq!(
        entry.canonical(),
        format!(
            "{{\"day\":\"2026-11-03\",\"deployment_id\":\"dc1\",\"gateways_active\":1,\
             \"license_id\":\"lic_a\",\"org\":\"acme\",\"peak_gateways\":1,\"plugins\":\
             {{\"_unknown\":{{\"allowed\":0,\"refused\":5}},\"slack\":{{\"allowed\":120,\
             \"refused\":2}}}},\"prev_hash\":\"{GENESIS_HASH}\",\"seq\":1,\"tokens\":0,\
             \"v\":1,\"version\":\"0.1.0\"}}"
        )
    );
    // The canonical form is JSON that reads back to the same entry.
    let back: DayEntry = serde_json::from_str(&entry.canonical()).expect("json");
    assert_eq!(back, entry);
    assert_eq!(entry.validate(), Ok(()));
}

#[test]
fn days_parse_and_print_as_utc_dates() {
    assert_eq!(Day::of(DAY0).to_string(), "2026-11-03");
    assert_eq!(Day::of(DAY0 + 86_399), Day::of(DAY0));
    assert_eq!(Day::parse("2026-11-03"), Some(Day::of(DAY0)));
    assert_eq!(Day::of(DAY0).next().to_string(), "2026-11-04");
    assert_eq!(Day::parse("2026-13-01"), None);
    assert_eq!(Day::parse("2026-1-01"), None);
    assert_eq!(Day::parse("1969-12-31"), None);
}

#[test]
fn a_ledger_bundle_verifies_and_names_the_chain_head() {
    let site = site("dc1");
    let list = entries(&site.key, "dc1", 1, GENESIS_HASH, 3);
    let head = list[2].hash.clone();
    let verified = verify(&site, &bytes(&bundle_of(&site, "dc1", list)), None).expect("verifies");
    assert_eq!(verified.entries.len(), 3);
    assert_eq!(verified.already_imported, 0);
    assert!(verified.from_genesis);
    assert_eq!(verified.deployment_id, "dc1");
    assert_eq!(verified.org, "acme");
    assert_eq!(verified.license.lic, "lic_a");
    assert_eq!(
        verified.chain,
        ChainState {
            deployment_key: encode_key(site.key.public_key()),
            last_seq: 3,
            last_hash: head,
        }
    );
    assert_eq!(verified.entries[1].entry.day, "2026-11-04");
    assert_eq!(
        verified.entries[1].entry.plugins["policy.cedar"].allowed,
        102
    );
}

#[test]
fn an_edited_count_is_refused_as_edited() {
    let site = site("dc1");
    let mut list = entries(&site.key, "dc1", 1, GENESIS_HASH, 3);
    if let Some(c) = list[1].entry.plugins.get_mut("policy.cedar") {
        c.allowed = 5;
    }
    let err = verify(&site, &bytes(&bundle_of(&site, "dc1", list)), None).expect_err("refused");
    assert_eq!(err.code(), "edited");
    assert!(err.to_string().contains("seq 2"), "{err}");
}

#[test]
fn an_edit_with_a_recomputed_hash_fails_the_signature() {
    let site = site("dc1");
    let mut list = entries(&site.key, "dc1", 1, GENESIS_HASH, 3);
    list[2].entry.tokens = 9;
    list[2].hash = list[2].entry.hash();
    let result = verify(&site, &bytes(&bundle_of(&site, "dc1", list)), None);
    assert_eq!(
        result.err(),
        Some(ReceiptError::BadSignature {
            seq: 3,
            day: "2026-11-05".into()
        })
    );
}

#[test]
fn an_edit_re_signed_with_the_key_breaks_the_link_to_the_next_day() {
    let site = site("dc1");
    let mut list = entries(&site.key, "dc1", 1, GENESIS_HASH, 3);
    let mut edited = list[1].entry.clone();
    edited.gateways_active = 0;
    list[1] = edited.sign(&site.key);
    let err = verify(&site, &bytes(&bundle_of(&site, "dc1", list)), None).expect_err("refused");
    assert_eq!(err.code(), "edited");
    assert!(err.to_string().contains("seq 3"), "{err}");
}

#[test]
fn a_removed_day_is_refused() {
    let site = site("dc1");
    let mut list = entries(&site.key, "dc1", 1, GENESIS_HASH, 4);
    list.remove(2);
    let err = verify(&site, &bytes(&bundle_of(&site, "dc1", list)), None).expect_err("refused");
    assert_eq!(
        err,
        ReceiptError::RemovedDay {
            prev_seq: 2,
            prev_day: "2026-11-04".into(),
            seq: 4,
            day: "2026-11-06".into()
        }
    );
}

#[test]
fn reordered_days_are_refused() {
    let site = site("dc1");
    let mut list = entries(&site.key, "dc1", 1, GENESIS_HASH, 4);
    list.swap(1, 2);
    assert_eq!(
        code(verify(&site, &bytes(&bundle_of(&site, "dc1", list)), None)),
        "reordered"
    );
}

#[test]
fn a_bundle_replayed_after_its_import_is_refused() {
    let site = site("dc1");
    let bundle = bytes(&bundle_of(
        &site,
        "dc1",
        entries(&site.key, "dc1", 1, GENESIS_HASH, 3),
    ));
    let imported = verify(&site, &bundle, None).expect("first import");
    let again = verify(&site, &bundle, Some(&imported.chain)).expect_err("replay");
    assert_eq!(
        again,
        ReceiptError::Replayed {
            last_in_bundle: 3,
            last_seq: 3
        }
    );
}

#[test]
fn the_next_bundle_continues_and_an_overlapping_one_imports_only_new_days() {
    let site = site("dc1");
    let all = entries(&site.key, "dc1", 1, GENESIS_HASH, 6);
    let first = bytes(&bundle_of(&site, "dc1", all[..3].to_vec()));
    let chain = verify(&site, &first, None).expect("first").chain;
    let next = verify(
        &site,
        &bytes(&bundle_of(&site, "dc1", all[3..].to_vec())),
        Some(&chain),
    )
    .expect("continues");
    assert_eq!((next.already_imported, next.entries.len()), (0, 3));
    assert_eq!(next.chain.last_seq, 6);
    let whole = verify(
        &site,
        &bytes(&bundle_of(&site, "dc1", all.clone())),
        Some(&chain),
    )
    .expect("overlap");
    assert_eq!((whole.already_imported, whole.entries.len()), (3, 3));
    assert_eq!(whole.entries[0].entry.seq, 4);
    assert_eq!(whole.chain, next.chain);
}

#[test]
fn a_bundle_that_does_not_continue_the_chain_is_a_gap() {
    let site = site("dc1");
    let all = entries(&site.key, "dc1", 1, GENESIS_HASH, 6);
    let chain = verify(
        &site,
        &bytes(&bundle_of(&site, "dc1", all[..2].to_vec())),
        None,
    )
    .expect("first")
    .chain;
    let skipped = verify(
        &site,
        &bytes(&bundle_of(&site, "dc1", all[3..].to_vec())),
        Some(&chain),
    );
    assert_eq!(
        skipped.err(),
        Some(ReceiptError::Gap {
            last_seq: 2,
            first_seq: 4,
            why: "(entries in between are missing)"
        })
    );
    // A chain forked after the import: seq 3 exists, but does not follow the imported seq 2.
    let forked = entries(&site.key, "dc1", 3, &"ab".repeat(32), 2);
    let err = verify(
        &site,
        &bytes(&bundle_of(&site, "dc1", forked)),
        Some(&chain),
    )
    .expect_err("gap");
    assert_eq!(err.code(), "gap");
    // An overlap that rewrites the imported seq 2.
    let mut rewritten = entries(&site.key, "dc1", 1, GENESIS_HASH, 4);
    rewritten[1].entry.tokens = 1;
    let resigned: Vec<SignedEntry> = {
        let mut prev = GENESIS_HASH.to_owned();
        rewritten
            .into_iter()
            .map(|s| {
                let mut e = s.entry;
                e.prev_hash = prev.clone();
                let signed = e.sign(&site.key);
                prev = signed.hash.clone();
                signed
            })
            .collect()
    };
    let err = verify(
        &site,
        &bytes(&bundle_of(&site, "dc1", resigned)),
        Some(&chain),
    )
    .expect_err("rewritten history");
    assert_eq!(err.code(), "edited");
}

#[test]
fn another_deployment_key_is_refused() {
    let site = site("dc1");
    let chain = verify(
        &site,
        &bytes(&bundle_of(
            &site,
            "dc1",
            entries(&site.key, "dc1", 1, GENESIS_HASH, 2),
        )),
        None,
    )
    .expect("first")
    .chain;
    let impostor = SigningKey::generate().expect("rng");
    let forged = Site {
        root: site.root.clone(),
        key: impostor.clone(),
        license: site.license.clone(),
    };
    let list = entries(&impostor, "dc1", 3, &chain.last_hash, 2);
    let err = verify(
        &forged,
        &bytes(&bundle_of(&forged, "dc1", list)),
        Some(&chain),
    )
    .expect_err("other key");
    assert_eq!(err.code(), "wrong_deployment_key");
    // Entries signed by another key than the bundle names: bad signatures.
    let mut mixed = bundle_of(&site, "dc1", entries(&impostor, "dc1", 1, GENESIS_HASH, 2));
    mixed.deployment_key = encode_key(site.key.public_key());
    assert_eq!(code(verify(&site, &bytes(&mixed), None)), "bad_signature");
}

#[test]
fn a_bundle_of_deployment_a_presented_as_deployment_b_is_refused() {
    // Site B's verifier (license bound to dc1 here is "B"); a bundle from deployment dc2.
    let b = site("dc1");
    let a_license = license_for(&b.root, "lic_a", "dc2");
    let a = Site {
        root: b.root.clone(),
        key: SigningKey::generate().expect("rng"),
        license: a_license,
    };
    let from_a = bytes(&bundle_of(
        &a,
        "dc2",
        entries(&a.key, "dc2", 1, GENESIS_HASH, 2),
    ));
    let err = verify(&b, &from_a, None).expect_err("other deployment");
    assert_eq!(err.code(), "license_mismatch");
    assert!(err.to_string().contains("deployment dc2"), "{err}");
    // Relabelled as dc1 in the bundle: the entries say dc2 (and the license binds dc2).
    let mut relabelled = bundle_of(&a, "dc1", entries(&a.key, "dc2", 1, GENESIS_HASH, 2));
    relabelled.license.token = b.license.clone();
    relabelled.license.sha256 = license_digest(&b.license);
    assert_eq!(
        code(verify(&b, &bytes(&relabelled), None)),
        "license_mismatch"
    );
}

#[test]
fn a_license_other_than_the_one_held_or_untrusted_is_refused() {
    let site = site("dc1");
    let list = entries(&site.key, "dc1", 1, GENESIS_HASH, 2);
    let good = bytes(&bundle_of(&site, "dc1", list.clone()));
    let trust = TrustStore::new([site.root.public_key().clone()]);
    let held_other = license_for(&site.root, "lic_b", "dc1");
    let result = verify_bundle(
        &good,
        None,
        &LicenseCheck {
            trust: &trust,
            license: Some(&held_other),
            deployment_id: None,
        },
    );
    assert_eq!(code(result), "license_mismatch");
    // Signed by a root the verifier does not trust.
    let stranger = TrustStore::new([SigningKey::generate().expect("rng").public_key().clone()]);
    let result = verify_bundle(
        &good,
        None,
        &LicenseCheck {
            trust: &stranger,
            license: None,
            deployment_id: None,
        },
    );
    let err = result.expect_err("untrusted");
    assert_eq!(err.code(), "license_mismatch");
    assert!(err.to_string().contains("does not verify"), "{err}");
    // The license text swapped without its digest.
    let mut swapped = bundle_of(&site, "dc1", list);
    swapped.license.token = held_other;
    assert_eq!(
        code(verify(&site, &bytes(&swapped), None)),
        "license_mismatch"
    );
}

#[test]
fn malformed_bundles_are_refused_as_malformed() {
    let site = site("dc1");
    assert_eq!(code(verify(&site, b"not json", None)), "malformed");
    assert_eq!(
        code(verify(
            &site,
            &bytes(&bundle_of(&site, "dc1", Vec::new())),
            None
        )),
        "malformed"
    );
    let good = bundle_of(&site, "dc1", entries(&site.key, "dc1", 1, GENESIS_HASH, 1));
    let mut value: serde_json::Value = serde_json::from_slice(&bytes(&good)).expect("json");
    value["entries"][0]["extra"] = serde_json::json!(1);
    let text = serde_json::to_vec(&value).expect("json");
    assert_eq!(code(verify(&site, &text, None)), "malformed");
    let mut bad_name = good.clone();
    bad_name.entries[0]
        .entry
        .plugins
        .insert("Slack!".into(), PluginCounts::default());
    assert_eq!(code(verify(&site, &bytes(&bad_name), None)), "malformed");
    let mut bad_format = good;
    bad_format.format = "mcpg-usage-bundle-v9".into();
    assert_eq!(code(verify(&site, &bytes(&bad_format), None)), "malformed");
}
