//! `inspect` and `jwks`.

use std::fs;

use crate::{Workdir, assert_one_error, stdout};

#[test]
fn inspect_shows_the_claims_marked_unverified_and_days_to_expiry() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(&root.secret, "a.license", &["--valid-for", "30d"])
        .success();
    let text = stdout(&work.run(["inspect", "a.license"]).success());
    assert!(text.contains("UNVERIFIED"), "{text}");
    assert!(text.contains("acme"), "{text}");
    assert!(
        text.contains("in 30 days") || text.contains("in 29 days"),
        "{text}"
    );

    let json: serde_json::Value = serde_json::from_str(&stdout(
        &work.run(["inspect", "a.license", "--json"]).success(),
    ))
    .expect("json");
    assert_eq!(json["verified"], false);
    assert_eq!(json["kind"], "license");
    assert_eq!(json["claims"]["org"], "acme");
    let days = json["days_to_expiry"].as_i64().expect("days");
    assert!((29..=30).contains(&days), "{days}");
}

#[test]
fn inspect_reads_a_license_signed_by_an_unknown_key_without_judging_it() {
    let work = Workdir::new();
    let root = work.keygen("root");
    work.issue(&root.secret, "a.license", &[]).success();
    fs::remove_file(&root.public).expect("remove");
    let text = stdout(&work.run(["inspect", "a.license"]).success());
    assert!(text.contains("UNVERIFIED"));
}

#[test]
fn jwks_lists_each_key_once_with_its_kid() {
    let work = Workdir::new();
    let root = work.keygen("root");
    let other = work.keygen("other");
    let out = work
        .run([
            "jwks",
            &root.public.display().to_string(),
            &other.jwk.display().to_string(),
            &root.jwk.display().to_string(),
        ])
        .success();
    let jwks: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JWKS is JSON");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "duplicates removed");
    let root_jwk: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&root.jwk).expect("jwk")).expect("json");
    assert_eq!(keys[0]["kid"], root_jwk["kid"]);
    assert_eq!(keys[0]["x"], root_jwk["x"]);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert_eq!(keys[0]["alg"], "EdDSA");
    let kid = keys[0]["kid"].as_str().expect("kid");
    assert!(kid.starts_with("k4.pid."));
}

#[test]
fn jwks_refuses_a_secret_key() {
    let work = Workdir::new();
    let root = work.keygen("root");
    assert_one_error(
        work.run(["jwks", &root.secret.display().to_string()]),
        2,
        "pass the public key",
    );
}

#[test]
fn inspect_decodes_an_online_token_and_verify_refuses_it_as_the_wrong_type() {
    use mcpg_license_core::{AUDIENCE, JwtSigner, LicenseClaims, Limits, SigningKey, Tier};

    let work = Workdir::new();
    let key = SigningKey::generate().expect("rng");
    let now = chrono::Utc::now().timestamp();
    let claims = LicenseClaims {
        iss: "https://auth.mcpg.dev".into(),
        sub: "gw_1".into(),
        aud: AUDIENCE.into(),
        iat: now,
        nbf: now,
        exp: now + 86_400,
        jti: "tok_1".into(),
        org: "acme".into(),
        ws: None,
        env: None,
        tier: Tier::Team,
        ent: Default::default(),
        lim: Limits::default(),
        lic: "lic_1".into(),
        rfa: Some(now + 8 * 3_600),
        grc: Some(now + 8 * 86_400),
        bind: None,
        ps: None,
    };
    let token = JwtSigner::new(key.clone()).sign(&claims).expect("signs");
    fs::write(work.path("token.jwt"), token).expect("write");
    let text = stdout(&work.run(["inspect", "token.jwt"]).success());
    assert!(text.starts_with("online token  UNVERIFIED"), "{text}");
    assert!(text.contains("gw_1"), "{text}");

    fs::write(work.path("key.public.paserk"), key.public_key().to_paserk()).expect("write");
    assert_one_error(
        work.run(["verify", "token.jwt", "--trust", "key.public.paserk"]),
        1,
        "[wrong_type]",
    );
}

#[test]
fn a_reader_that_closes_stdout_early_ends_the_command_quietly() {
    let work = Workdir::new();
    let keys = work.keygen("root");
    work.issue(&keys.secret, "a.license", &[]).success();
    // `verify … | head`, with a reader that has already closed its end: every line of the
    // output hits a closed pipe.
    let script = format!(
        "(sleep 0.3; '{}' verify a.license --trust '{}') | (exec 0<&-; sleep 1); exit ${{PIPESTATUS[0]}}",
        env!("CARGO_BIN_EXE_mcpg-license"),
        keys.public.display()
    );
    let output = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(work.path("."))
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
}
