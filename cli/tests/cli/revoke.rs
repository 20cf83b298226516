//! `revoke`: root-signed revocation lists, applied by `verify --revocations`.

use serde_json::Value;

use crate::{Workdir, assert_one_error, stdout};

fn license_id(work: &Workdir, file: &str) -> String {
    let out = stdout(&work.run(["inspect", file, "--json"]).success());
    let inspected: Value = serde_json::from_str(&out).expect("inspect --json is JSON");
    inspected["claims"]["lic"]
        .as_str()
        .expect("license id")
        .to_owned()
}

#[test]
fn a_revoked_license_fails_verification_with_the_list_and_passes_without() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(&root.secret, "acme.license", &[]).success();
    let lic = license_id(&work, "acme.license");
    let key = root.secret.display().to_string();
    work.run([
        "revoke",
        "--key",
        &key,
        "--serial",
        "1",
        "--license",
        &lic,
        "--out",
        "rl-1",
    ])
    .success();

    work.verify("acme.license", &root.public, &[]).success();
    assert_one_error(
        work.verify("acme.license", &root.public, &["--revocations", "rl-1"]),
        1,
        "[revoked]",
    );
}

#[test]
fn a_later_list_carries_the_earlier_one_forward_and_needs_a_higher_serial() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(&root.secret, "a.license", &[]).success();
    work.issue(&root.secret, "b.license", &[]).success();
    let (a, b) = (
        license_id(&work, "a.license"),
        license_id(&work, "b.license"),
    );
    let key = root.secret.display().to_string();
    work.run([
        "revoke",
        "--key",
        &key,
        "--serial",
        "1",
        "--license",
        &a,
        "--out",
        "rl-1",
    ])
    .success();
    assert_one_error(
        work.run([
            "revoke",
            "--key",
            &key,
            "--serial",
            "1",
            "--previous",
            "rl-1",
            "--license",
            &b,
            "--out",
            "rl-2",
        ]),
        2,
        "must be higher",
    );
    work.run([
        "revoke",
        "--key",
        &key,
        "--serial",
        "2",
        "--previous",
        "rl-1",
        "--license",
        &b,
        "--out",
        "rl-2",
    ])
    .success();
    for file in ["a.license", "b.license"] {
        assert_one_error(
            work.verify(file, &root.public, &["--revocations", "rl-2"]),
            1,
            "[revoked]",
        );
    }
}

#[test]
fn a_list_signed_by_a_foreign_key_is_refused() {
    let work = Workdir::new();
    let root = work.keygen("root");
    let stranger = work.keygen("stranger");
    work.issue(&root.secret, "acme.license", &[]).success();
    let key = stranger.secret.display().to_string();
    work.run([
        "revoke",
        "--key",
        &key,
        "--serial",
        "7",
        "--license",
        "lic_x",
        "--out",
        "forged",
    ])
    .success();
    assert_one_error(
        work.verify("acme.license", &root.public, &["--revocations", "forged"]),
        2,
        "[untrusted_root]",
    );
}

#[test]
fn an_empty_list_or_a_bad_id_is_refused() {
    let work = Workdir::new();
    let root = work.keygen("root");
    let key = root.secret.display().to_string();
    assert_one_error(
        work.run(["revoke", "--key", &key, "--serial", "1", "--out", "rl"]),
        2,
        "nothing to revoke",
    );
    assert_one_error(
        work.run([
            "revoke",
            "--key",
            &key,
            "--serial",
            "1",
            "--license",
            "lic x/../",
            "--out",
            "rl",
        ]),
        2,
        "is not a certificate or license id",
    );
}
