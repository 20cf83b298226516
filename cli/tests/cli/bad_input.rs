//! Bad input: one `error:` line, a non-zero exit, never a panic.

use std::fs;

use crate::{Workdir, assert_one_error};

#[test]
fn a_truncated_secret_paserk_is_refused() {
    let work = Workdir::new();
    let root = work.keygen("root");
    let secret = fs::read_to_string(&root.secret).expect("secret");
    fs::write(work.path("short.paserk"), &secret[..40]).expect("write");
    assert_one_error(
        work.issue(&work.path("short.paserk"), "a.license", &[]),
        2,
        "truncated",
    );
}

#[test]
fn a_public_key_passed_as_the_signing_key_is_refused() {
    let work = Workdir::new();
    let root = work.keygen("root");
    assert_one_error(
        work.issue(&root.public, "a.license", &[]),
        2,
        "a secret key (k4.secret) is needed",
    );
    assert!(!work.path("a.license").exists());
}

#[test]
fn a_garbage_license_file_is_invalid_for_verify_and_an_error_for_inspect() {
    let work = Workdir::new();
    let root = work.keygen("root");
    fs::write(work.path("garbage.license"), "this is not a license\n").expect("write");
    assert_one_error(
        work.verify("garbage.license", &root.public, &[]),
        1,
        "[malformed]",
    );
    assert_one_error(
        work.run(["inspect", "garbage.license"]),
        2,
        "not a license, certificate or token",
    );
    fs::write(work.path("binary.license"), [0u8, 159, 146, 150]).expect("write");
    assert_one_error(work.run(["inspect", "binary.license"]), 2, "not text");
}

#[test]
fn a_missing_file_is_an_error_with_exit_2() {
    let work = Workdir::new();
    let root = work.keygen("root");
    assert_one_error(
        work.verify("missing.license", &root.public, &[]),
        2,
        "cannot read missing.license",
    );
    assert_one_error(
        work.verify("missing.license", &work.path("nope.paserk"), &[]),
        2,
        "cannot read",
    );
    assert_one_error(
        work.issue(&work.path("nope.paserk"), "a.license", &[]),
        2,
        "cannot read",
    );
}

#[test]
fn an_unknown_tier_is_a_usage_error() {
    let work = Workdir::new();
    let root = work.keygen("root");
    assert_one_error(
        work.issue(&root.secret, "a.license", &["--tier", "platinum"]),
        2,
        "unknown tier",
    );
}

#[test]
fn a_malformed_entitlement_is_a_usage_error() {
    let work = Workdir::new();
    let root = work.keygen("root");
    assert_one_error(
        work.issue(&root.secret, "a.license", &["--entitlement", "cedar"]),
        2,
        "must start with plugin: or feature:",
    );
}

#[test]
fn an_entitlement_outside_the_catalog_is_refused_unless_future_ones_are_allowed() {
    let work = Workdir::new();
    let root = work.keygen("root");
    assert_one_error(
        work.issue(
            &root.secret,
            "a.license",
            &["--entitlement", "plugin:policy.cedr"],
        ),
        2,
        "plugin:policy.cedr (did you mean plugin:policy.cedar?)",
    );
    assert!(!work.path("a.license").exists(), "nothing was written");
    work.issue(
        &root.secret,
        "a.license",
        &[
            "--entitlement",
            "plugin:billing.stripe",
            "--allow-future-entitlement",
        ],
    )
    .success()
    .stderr(predicates::str::contains(
        "plugin:billing.stripe is not in the built-in plugin catalog",
    ));
}

#[test]
fn an_unknown_limit_key_is_refused() {
    let work = Workdir::new();
    let root = work.keygen("root");
    assert_one_error(
        work.issue(&root.secret, "a.license", &["--limit", "max_widgets=3"]),
        2,
        "unknown limit",
    );
    assert_one_error(
        work.issue(&root.secret, "a.license", &["--limit", "rps=lots"]),
        2,
        "whole number",
    );
}

#[test]
fn a_license_passed_as_a_certificate_is_refused() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(&root.secret, "a.license", &[]).success();
    assert_one_error(
        work.issue(&root.secret, "b.license", &["--certificate", "a.license"]),
        2,
        "not an issuer certificate",
    );
}

#[test]
fn a_bad_time_or_duration_is_a_usage_error() {
    let work = Workdir::new();
    let root = work.keygen("root");
    assert_one_error(
        work.issue(&root.secret, "a.license", &["--valid-for", "1y"]),
        2,
        "invalid duration",
    );
    assert_one_error(
        work.issue(&root.secret, "a.license", &["--not-before", "tomorrow"]),
        2,
        "RFC 3339",
    );
}

#[test]
fn help_teaches_by_example_and_documents_exit_codes() {
    let work = Workdir::new();
    let out = crate::stdout(&work.run(["--help"]).success());
    assert!(out.contains("Exit codes:"), "{out}");
    assert!(out.contains("mcpg-license keygen --out"), "{out}");
    for sub in ["keygen", "issue", "certify", "verify", "inspect", "jwks"] {
        let help = crate::stdout(&work.run([sub, "--help"]).success());
        assert!(help.contains("Examples:"), "{sub} --help has examples");
        assert!(
            help.contains(&format!("mcpg-license {sub}")),
            "{sub} example"
        );
    }
}
