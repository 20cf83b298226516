//! `keygen`.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::{Workdir, assert_one_error, stdout};

#[test]
fn keygen_writes_a_private_secret_and_public_files_and_prints_the_kid() {
    let work = Workdir::new();
    let out = work
        .run(["keygen", "--out", "keys", "--name", "root"])
        .success();
    let keys = work.path("keys");
    let mode = |f: &str| {
        fs::metadata(keys.join(f))
            .expect("file exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("root.secret.paserk"), 0o600);
    assert_eq!(mode("root.public.paserk") & 0o077, 0o044);
    let public = fs::read_to_string(keys.join("root.public.paserk")).expect("public key");
    assert!(public.starts_with("k4.public."));
    let secret = fs::read_to_string(keys.join("root.secret.paserk")).expect("secret key");
    assert!(secret.starts_with("k4.secret."));
    let jwk: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(keys.join("root.jwk.json")).expect("jwk"))
            .expect("jwk is json");
    assert_eq!(jwk["kty"], "OKP");
    let kid = jwk["kid"].as_str().expect("jwk has a kid");
    assert!(stdout(&out).contains(kid), "kid printed");
}

#[test]
fn keygen_defaults_to_the_name_mcpg_and_writes_pem_on_request() {
    let work = Workdir::new();
    work.run(["keygen", "--out", ".", "--pem"]).success();
    for file in [
        "mcpg.secret.paserk",
        "mcpg.public.paserk",
        "mcpg.jwk.json",
        "mcpg.public.pem",
    ] {
        assert!(work.path(file).exists(), "{file} written");
    }
    let secret_pem = work.path("mcpg.secret.pem");
    let mode = fs::metadata(&secret_pem).expect("pem").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        fs::read_to_string(secret_pem)
            .expect("pem")
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
}

#[test]
fn keygen_refuses_to_overwrite_any_existing_key_file() {
    let work = Workdir::new();
    work.keygen("root");
    let before = fs::read(work.path("keys/root.secret.paserk")).expect("secret");
    assert_one_error(
        work.run(["keygen", "--out", "keys", "--name", "root"]),
        2,
        "already exists",
    );
    assert_eq!(
        fs::read(work.path("keys/root.secret.paserk")).expect("secret"),
        before
    );

    // One existing file of the set is enough to refuse, and nothing else is written.
    fs::write(work.path("keys/other.jwk.json"), "{}").expect("write");
    assert_one_error(
        work.run(["keygen", "--out", "keys", "--name", "other"]),
        2,
        "other.jwk.json already exists",
    );
    assert!(!work.path("keys/other.secret.paserk").exists());
}

#[test]
fn keygen_refuses_a_name_that_is_a_path() {
    let work = Workdir::new();
    assert_one_error(
        work.run(["keygen", "--out", "keys", "--name", "../escape"]),
        2,
        "not a plain file name",
    );
    assert!(!work.path("escape.secret.paserk").exists());
}
