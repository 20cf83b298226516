//! `issue` and `verify` of offline licenses signed by a root.

use std::fs;

use serde_json::Value;

use crate::{Workdir, assert_one_error, stdout};

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("stdout is JSON")
}

#[test]
fn a_license_issued_by_a_root_verifies_against_that_root() {
    let work = Workdir::new();
    let root = work.keygen("root");
    let issued = work
        .issue(
            &root.secret,
            "acme.license",
            &["--limit", "max_gateways=50"],
        )
        .success();
    let out = stdout(&issued);
    assert!(out.contains("lic_"), "license id printed: {out}");
    assert!(out.contains("in 365 days"), "expiry printed: {out}");
    let token = fs::read_to_string(work.path("acme.license")).expect("license written");
    assert!(token.starts_with("v4.public."));

    let verified = work.verify("acme.license", &root.public, &[]).success();
    assert!(stdout(&verified).contains("VALID offline license"));

    let verdict = json(&stdout(
        &work
            .verify("acme.license", &root.public, &["--json"])
            .code(0),
    ));
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["kind"], "license");
    assert_eq!(verdict["claims"]["org"], "acme");
    assert_eq!(verdict["claims"]["tier"], "team");
    assert_eq!(verdict["claims"]["lim"]["max_gateways"], 50);
    assert_eq!(verdict["claims"]["sub"], verdict["claims"]["lic"]);
    let ent = verdict["claims"]["ent"].as_array().expect("ent");
    assert!(ent.contains(&Value::from("feature:workspace.rbac")));
    assert!(!ent.contains(&Value::from("feature:environment.rbac")));
}

#[test]
fn entitlements_are_the_tier_defaults_plus_added_minus_removed() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(
        &root.secret,
        "a.license",
        &[
            "--entitlement",
            "feature:environment.rbac",
            "--without",
            "plugin:identity.oidc",
        ],
    )
    .success();
    let verdict = json(&stdout(&work.verify(
        "a.license",
        &root.public,
        &["--json"],
    )));
    let ent = verdict["claims"]["ent"].as_array().expect("ent");
    assert!(ent.contains(&Value::from("feature:environment.rbac")));
    assert!(!ent.contains(&Value::from("plugin:identity.oidc")));
}

#[test]
fn a_license_fails_against_another_root_with_unknown_key() {
    let work = Workdir::new();
    let root = work.keygen("root");
    let other = work.keygen("other");
    work.issue(&root.secret, "a.license", &[]).success();
    assert_one_error(
        work.verify("a.license", &other.public, &[]),
        1,
        "[unknown_key]",
    );
    let verdict = json(&stdout(
        &work.verify("a.license", &other.public, &["--json"]).code(1),
    ));
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["code"], "unknown_key");
    assert!(verdict["claims"].is_null());
}

#[test]
fn a_license_is_expired_after_its_validity() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(&root.secret, "a.license", &["--valid-for", "30d"])
        .success();
    let later = (chrono::Utc::now() + chrono::Duration::days(31)).to_rfc3339();
    assert_one_error(
        work.verify("a.license", &root.public, &["--at", &later]),
        1,
        "[expired]",
    );
    let sooner = (chrono::Utc::now() + chrono::Duration::days(29)).to_rfc3339();
    work.verify("a.license", &root.public, &["--at", &sooner])
        .success();
}

#[test]
fn a_license_is_not_valid_before_its_not_before_time() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(
        &root.secret,
        "a.license",
        &["--not-before", "2030-01-01T00:00:00Z", "--valid-for", "10d"],
    )
    .success();
    assert_one_error(
        work.verify("a.license", &root.public, &[]),
        1,
        "[not_yet_valid]",
    );
    work.verify("a.license", &root.public, &["--at", "2030-01-05T00:00:00Z"])
        .success();
}

#[test]
fn a_bound_license_verifies_only_on_its_deployment() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(&root.secret, "a.license", &["--bind", "dep-7f3a"])
        .success();
    work.verify("a.license", &root.public, &["--bind", "dep-7f3a"])
        .success();
    assert_one_error(
        work.verify("a.license", &root.public, &["--bind", "dep-other"]),
        1,
        "[binding_mismatch]",
    );
    assert_one_error(
        work.verify("a.license", &root.public, &[]),
        1,
        "[binding_mismatch]",
    );
}

#[test]
fn a_tampered_license_fails_with_bad_signature() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(&root.secret, "a.license", &[]).success();
    let token = fs::read_to_string(work.path("a.license")).expect("license");
    let (body, footer) = token.trim().rsplit_once('.').expect("has a footer");
    // Flip one character of the signed body (well inside the base64 payload).
    let mut bytes = body.as_bytes().to_vec();
    let i = 40;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{}.{footer}", String::from_utf8(bytes).expect("ascii"));
    fs::write(work.path("t.license"), tampered).expect("write");
    assert_one_error(
        work.verify("t.license", &root.public, &[]),
        1,
        "[bad_signature]",
    );
}

#[test]
fn issue_refuses_to_overwrite_unless_forced() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(&root.secret, "a.license", &[]).success();
    let first = fs::read_to_string(work.path("a.license")).expect("license");
    assert_one_error(
        work.issue(&root.secret, "a.license", &[]),
        2,
        "pass --force",
    );
    assert_eq!(
        fs::read_to_string(work.path("a.license")).expect("license"),
        first
    );
    work.issue(&root.secret, "a.license", &["--force"])
        .success();
    assert_ne!(
        fs::read_to_string(work.path("a.license")).expect("license"),
        first
    );
}

#[test]
fn a_license_that_would_already_be_expired_is_refused() {
    let work = Workdir::new();
    let root = work.keygen("root");
    assert_one_error(
        work.issue(
            &root.secret,
            "a.license",
            &["--not-before", "2020-01-01T00:00:00Z", "--valid-for", "30d"],
        ),
        2,
        "already have expired",
    );
    assert!(!work.path("a.license").exists());
}
