//! `certify`, licenses signed by certified issuer keys, and certificate verification.

use std::fs;

use crate::{Keys, Workdir, assert_one_error, stdout};

/// A root, an issuer key and a certificate for it bounded to org `acme`, tier team, able
/// to sign one-year offline licenses.
fn certified(work: &Workdir, extra: &[&str]) -> (Keys, Keys) {
    let root = work.keygen("root");
    let issuer = work.keygen("issuer");
    let mut args = vec![
        "certify".to_string(),
        "--key".into(),
        root.secret.display().to_string(),
        "--subject-key".into(),
        issuer.public.display().to_string(),
        "--issuer".into(),
        "https://auth.acme.example".into(),
        "--org".into(),
        "acme".into(),
        "--max-tier".into(),
        "team".into(),
        "--max-token-lifetime".into(),
        "366d".into(),
        "--out".into(),
        "issuer.cert".into(),
    ];
    if !extra.contains(&"--valid-for") {
        args.extend(["--valid-for".into(), "400d".into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = work.run(args).success();
    assert!(stdout(&out).contains("cert_"), "certificate id printed");
    (root, issuer)
}

fn issue_certified(work: &Workdir, issuer: &Keys, extra: &[&str]) -> assert_cmd::assert::Assert {
    let mut args = vec!["--certificate", "issuer.cert"];
    args.extend_from_slice(extra);
    work.issue(&issuer.secret, "acme.license", &args)
}

#[test]
fn a_license_from_a_certified_key_verifies_with_the_root_only() {
    let work = Workdir::new();
    let (root, issuer) = certified(&work, &[]);
    issue_certified(&work, &issuer, &[]).success();
    let out = work
        .verify("acme.license", &root.public, &["--json"])
        .success();
    let verdict: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(verdict["valid"], true);
    // The issuer defaults to the certificate's.
    assert_eq!(verdict["claims"]["iss"], "https://auth.acme.example");
    assert!(
        verdict["signer"]["certificate"]
            .as_str()
            .expect("certificate id")
            .starts_with("cert_")
    );
    // The issuer key alone is not a root.
    assert_one_error(
        work.verify("acme.license", &issuer.public, &[]),
        1,
        "[untrusted_root]",
    );
}

#[test]
fn a_license_beyond_the_certificate_bounds_is_refused_at_issue_time() {
    let work = Workdir::new();
    let (_root, issuer) = certified(&work, &[]);
    let cases: [(&[&str], &str); 4] = [
        (&["--tier", "enterprise"], "[tier_above_max]"),
        (&["--org", "globex"], "[org_not_allowed]"),
        (&["--valid-for", "500d"], "[lifetime_too_long]"),
        (&["--issuer", "https://evil.example"], "[issuer_mismatch]"),
    ];
    for (extra, code) in cases {
        assert_one_error(issue_certified(&work, &issuer, extra), 2, code);
        assert!(
            !work.path("acme.license").exists(),
            "nothing written for {code}"
        );
    }
}

#[test]
fn a_license_cannot_outlive_its_certificate() {
    let work = Workdir::new();
    let (_root, issuer) = certified(&work, &["--valid-for", "30d"]);
    assert_one_error(
        issue_certified(&work, &issuer, &["--valid-for", "60d"]),
        2,
        "[outlives_certificate]",
    );
}

#[test]
fn a_certificate_for_another_key_is_refused_at_issue_time() {
    let work = Workdir::new();
    let (root, _issuer) = certified(&work, &[]);
    assert_one_error(
        work.issue(
            &root.secret,
            "acme.license",
            &["--certificate", "issuer.cert"],
        ),
        2,
        "the certificate certifies key",
    );
}

#[test]
fn a_certificate_verifies_against_its_root_and_not_a_foreign_one() {
    let work = Workdir::new();
    let (root, _issuer) = certified(&work, &[]);
    let foreign = work.keygen("foreign");
    let out = work.verify("issuer.cert", &root.public, &[]).success();
    assert!(stdout(&out).contains("VALID issuer certificate"));
    assert_one_error(
        work.verify("issuer.cert", &foreign.public, &[]),
        1,
        "[untrusted_root]",
    );
}

#[test]
fn a_certificate_is_expired_after_its_validity() {
    let work = Workdir::new();
    let (root, _issuer) = certified(&work, &[]);
    assert_one_error(
        work.verify(
            "issuer.cert",
            &root.public,
            &["--at", "2035-01-01T00:00:00Z"],
        ),
        1,
        "[certificate_expired]",
    );
    let verdict: serde_json::Value = serde_json::from_str(&stdout(
        &work
            .verify(
                "issuer.cert",
                &root.public,
                &["--json", "--at", "2035-01-01T00:00:00Z"],
            )
            .code(1),
    ))
    .expect("json");
    assert_eq!(verdict["kind"], "certificate");
    assert_eq!(verdict["code"], "certificate_expired");
}

#[test]
fn a_license_under_an_expired_certificate_is_invalid() {
    let work = Workdir::new();
    let (root, issuer) = certified(&work, &[]);
    issue_certified(&work, &issuer, &[]).success();
    assert_one_error(
        work.verify(
            "acme.license",
            &root.public,
            &["--at", "2035-01-01T00:00:00Z"],
        ),
        1,
        "[certificate_expired]",
    );
}

#[test]
fn certify_refuses_an_issuer_that_is_not_a_url_and_the_root_itself() {
    let work = Workdir::new();
    let root = work.keygen("root");
    let issuer = work.keygen("issuer");
    let certify = |subject: &std::path::Path, url: &str| {
        work.run([
            "certify",
            "--key",
            &root.secret.display().to_string(),
            "--subject-key",
            &subject.display().to_string(),
            "--issuer",
            url,
            "--out",
            "c.cert",
        ])
    };
    assert_one_error(certify(&issuer.public, "auth.acme.example"), 2, "--issuer");
    assert_one_error(
        certify(&root.public, "https://a.example"),
        2,
        "root key itself",
    );
    assert!(!work.path("c.cert").exists());
    certify(&issuer.jwk, "https://a.example").success();
    assert!(
        fs::read_to_string(work.path("c.cert"))
            .expect("certificate")
            .starts_with("v4.public.")
    );
}
