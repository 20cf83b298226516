//! Root key custody: passphrase-sealed keys and k-of-n shares, through the built binary.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use mcpg_cli::license::shares::{ShareFile, ShareSet};
use mcpg_license_core::sealed::{self, Argon2Cost};

use crate::{Workdir, assert_one_error, stderr, stdout};

/// Cheap Argon2id for tests; the default (256 MiB, 3 passes) is for real keys.
const CHEAP: [&str; 4] = ["--argon2-memory", "8", "--argon2-passes", "1"];

fn passphrase(work: &Workdir, name: &str, text: &str) -> String {
    let path = work.path(name);
    fs::write(&path, format!("{text}\n")).expect("passphrase file");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    path.display().to_string()
}

/// `keygen --seal` of NAME into DIR with the passphrase file PW (cheap Argon2id).
fn keygen_sealed(work: &Workdir, dir: &str, name: &str, pw: &str) -> assert_cmd::assert::Assert {
    let mut args = vec!["keygen", "--out", dir, "--name", name, "--seal"];
    args.extend(CHEAP);
    args.extend(["--passphrase-file", pw]);
    work.run(&args)
}

/// `keygen --shares 5 --threshold 3`, each share under "custodian I passphrase".
fn split_root(work: &Workdir, name: &str) -> Vec<PathBuf> {
    let mut args: Vec<String> = ["keygen", "--out", "root", "--name", name]
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(["--shares", "5", "--threshold", "3"].map(String::from));
    args.extend(CHEAP.map(String::from));
    for i in 1..=5 {
        args.push("--passphrase-file".into());
        args.push(passphrase(
            work,
            &format!("{name}-p{i}"),
            &format!("custodian {i} passphrase"),
        ));
    }
    work.run(args).success();
    (1..=5)
        .map(|i| work.path(&format!("root/{name}.share-{i}-of-5.json")))
        .collect()
}

/// `--share FILE --passphrase-file FILE` for the given share indexes of `name`.
fn share_args(work: &Workdir, name: &str, indexes: &[usize]) -> Vec<String> {
    let mut args = Vec::new();
    for i in indexes {
        args.push("--share".to_string());
        args.push(format!("root/{name}.share-{i}-of-5.json"));
    }
    for i in indexes {
        args.push("--passphrase-file".to_string());
        args.push(work.path(&format!("{name}-p{i}")).display().to_string());
    }
    args
}

fn run_with(work: &Workdir, base: &[&str], extra: Vec<String>) -> assert_cmd::assert::Assert {
    let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    args.extend(extra);
    work.run(args)
}

#[test]
fn a_sealed_key_signs_after_its_passphrase_and_a_wrong_one_says_nothing_about_which_part_failed() {
    let work = Workdir::new();
    let pw = passphrase(&work, "pw", "a passphrase long enough");
    let out = keygen_sealed(&work, "keys", "root", &pw).success();
    assert!(stdout(&out).contains("k4.secret-pw"));
    let sealed_path = work.path("keys/root.secret-pw.paserk");
    let mode = fs::metadata(&sealed_path)
        .expect("sealed")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!work.path("keys/root.secret.paserk").exists());
    let text = fs::read_to_string(&sealed_path).expect("sealed");
    assert!(text.starts_with("k4.secret-pw."));

    work.run([
        "issue",
        "--key",
        "keys/root.secret-pw.paserk",
        "--passphrase-file",
        &pw,
        "--org",
        "acme",
        "--tier",
        "team",
        "--out",
        "acme.license",
    ])
    .success();
    work.verify("acme.license", &work.path("keys/root.public.paserk"), &[])
        .success();

    let wrong = passphrase(&work, "wrong", "not the passphrase at all");
    let refused = work.run([
        "issue",
        "--key",
        "keys/root.secret-pw.paserk",
        "--passphrase-file",
        &wrong,
        "--org",
        "acme",
        "--tier",
        "team",
        "--out",
        "b.license",
    ]);
    let wrong_err = stderr(&refused.code(2));
    // Alter one character of the encrypted key (after the header and the 56 bytes of salt,
    // parameters and nonce, before the tag): the same words as a wrong passphrase.
    let mut altered = text.trim().to_string().into_bytes();
    let at = "k4.secret-pw.".len() + 100;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    fs::write(work.path("altered.paserk"), &altered).expect("write");
    let refused = work.run([
        "issue",
        "--key",
        "altered.paserk",
        "--passphrase-file",
        &pw,
        "--org",
        "acme",
        "--tier",
        "team",
        "--out",
        "c.license",
    ]);
    let altered_err = stderr(&refused.code(2));
    let reason = |err: &str| {
        err.lines()
            .find(|l| l.starts_with("error:"))
            .and_then(|l| l.split_once("does not open"))
            .map(|(_, why)| why.to_string())
            .unwrap_or_else(|| panic!("no 'does not open' in {err}"))
    };
    assert_eq!(reason(&wrong_err), reason(&altered_err));
    assert!(wrong_err.contains("the passphrase is wrong or the sealed key was altered"));
    assert!(!work.path("b.license").exists() && !work.path("c.license").exists());

    // No terminal and no file: a clear instruction, not a hang.
    assert_one_error(
        work.run([
            "issue",
            "--key",
            "keys/root.secret-pw.paserk",
            "--org",
            "acme",
            "--tier",
            "team",
            "--out",
            "d.license",
        ]),
        2,
        "give --passphrase-file FILE",
    );
}

#[test]
fn a_short_passphrase_is_refused_before_anything_is_written() {
    let work = Workdir::new();
    let short = passphrase(&work, "short", "too short");
    assert_one_error(
        keygen_sealed(&work, "keys", "root", &short),
        2,
        "at least 12",
    );
    assert!(!work.path("keys").exists());
}

#[test]
fn three_of_five_shares_sign_what_the_root_public_key_alone_verifies() {
    let work = Workdir::new();
    let shares = split_root(&work, "root27");
    for share in &shares {
        let mode = fs::metadata(share).expect("share").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let root_public = work.path("root/root27.public.paserk");
    // A license signed by shares 5, 1 and 3.
    run_with(
        &work,
        &[
            "issue",
            "--org",
            "acme",
            "--tier",
            "enterprise",
            "--out",
            "acme.license",
        ],
        share_args(&work, "root27", &[5, 1, 3]),
    )
    .success();
    work.verify("acme.license", &root_public, &[]).success();
    // A certificate signed by shares 2, 3 and 4, all four shares also work.
    work.run(["keygen", "--out", "issuer", "--name", "issuer"])
        .success();
    run_with(
        &work,
        &[
            "certify",
            "--subject-key",
            "issuer/issuer.public.paserk",
            "--issuer",
            "https://auth.example",
            "--out",
            "issuer.cert",
        ],
        share_args(&work, "root27", &[2, 3, 4, 5]),
    )
    .success();
    work.verify("issuer.cert", &root_public, &[]).success();
    // A revocation list signed by shares 1, 2 and 4.
    run_with(
        &work,
        &[
            "revoke",
            "--serial",
            "1",
            "--license",
            "lic_abc",
            "--out",
            "rl.paseto",
        ],
        share_args(&work, "root27", &[1, 2, 4]),
    )
    .success();
    work.verify(
        "acme.license",
        &root_public,
        &["--revocations", "rl.paseto"],
    )
    .success();
}

#[test]
fn too_few_repeated_foreign_and_tampered_shares_are_each_refused_with_their_own_reason() {
    let work = Workdir::new();
    split_root(&work, "root27");
    split_root(&work, "other");
    let issue = [
        "issue",
        "--org",
        "acme",
        "--tier",
        "team",
        "--out",
        "x.license",
    ];

    assert_one_error(
        run_with(&work, &issue, share_args(&work, "root27", &[1, 2])),
        2,
        "needs 3 shares; 2 given",
    );
    let mut repeated = share_args(&work, "root27", &[1, 2]);
    repeated.extend(["--share".into(), "root/root27.share-1-of-5.json".into()]);
    assert_one_error(run_with(&work, &issue, repeated), 2, "are the same share");
    let mut foreign = share_args(&work, "root27", &[1, 2]);
    foreign.extend(["--share".into(), "root/other.share-3-of-5.json".into()]);
    assert_one_error(run_with(&work, &issue, foreign), 2, "shares of another key");

    // A share whose sealed bytes were altered does not open.
    let share3 = work.path("root/root27.share-3-of-5.json");
    let original = fs::read_to_string(&share3).expect("share");
    let mut share: ShareFile = serde_json::from_str(&original).expect("json");
    let mut bytes = share.sealed.clone().into_bytes();
    let at = bytes.len() - 30;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    share.sealed = String::from_utf8(bytes).expect("ascii");
    fs::write(&share3, serde_json::to_string(&share).expect("json")).expect("write");
    assert_one_error(
        run_with(&work, &issue, share_args(&work, "root27", &[1, 2, 3])),
        2,
        "root27.share-3-of-5.json does not open",
    );

    // A share re-sealed with another value by someone who knows its passphrase opens, but
    // the key it rebuilds is not the one the set names: nothing is signed.
    share.sealed = sealed::seal_local(
        &[9u8; 32],
        b"custodian 3 passphrase",
        Argon2Cost::new(8, 1).expect("cost"),
    )
    .expect("seal");
    fs::write(&share3, serde_json::to_string(&share).expect("json")).expect("write");
    assert_one_error(
        run_with(&work, &issue, share_args(&work, "root27", &[1, 2, 3])),
        2,
        "a share was altered",
    );
    // An altered label (the index) is caught the same way.
    fs::write(&share3, &original).expect("restore");
    let mut relabelled: ShareFile = serde_json::from_str(&original).expect("json");
    relabelled.index = 4;
    fs::write(&share3, serde_json::to_string(&relabelled).expect("json")).expect("write");
    assert_one_error(
        run_with(&work, &issue, share_args(&work, "root27", &[1, 2, 3])),
        2,
        "a share was altered",
    );
    assert!(!work.path("x.license").exists());
}

#[test]
fn the_secret_never_appears_in_any_file_written() {
    let work = Workdir::new();
    let shares = split_root(&work, "root27");
    let set = ShareSet::read(&shares[..3]).expect("set");
    let key = set
        .rebuild(|position, _| {
            let index = set.shares[position].1.index;
            Ok(zeroize::Zeroizing::new(
                format!("custodian {index} passphrase").into_bytes(),
            ))
        })
        .expect("rebuilds");
    assert_secret_absent(
        &work.path("root"),
        &key.seed_bytes()[..],
        &key.keypair_bytes()[..],
    );

    let pw = passphrase(&work, "pw", "a passphrase long enough");
    keygen_sealed(&work, "sealed", "issuer", &pw).success();
    let text = fs::read_to_string(work.path("sealed/issuer.secret-pw.paserk")).expect("sealed");
    let key = sealed::open_secret(&text, b"a passphrase long enough").expect("opens");
    assert_secret_absent(
        &work.path("sealed"),
        &key.seed_bytes()[..],
        &key.keypair_bytes()[..],
    );
}

fn assert_secret_absent(dir: &Path, seed: &[u8], keypair: &[u8]) {
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for secret in [seed, keypair] {
        needles.push(secret.to_vec());
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            needles.push(engine.encode(secret).into_bytes());
        }
        needles.push(
            secret
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
        );
    }
    let mut scanned = 0;
    for entry in fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        let contents = fs::read(&path).expect("file");
        scanned += 1;
        for needle in &needles {
            assert!(
                !contents
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice()),
                "{} holds the secret",
                path.display()
            );
        }
    }
    assert!(scanned >= 3, "files were scanned");
}

/// The PASERK password wrapping checked against an independent implementation: PyPI
/// `pyseto` opens what we seal and we open what it seals. `.ci/run` installs pyseto and sets
/// `MCPG_REQUIRE_PYSETO=1`, so there the test cannot skip; elsewhere it skips with a message
/// when Python or pyseto is missing.
#[test]
fn sealed_keys_and_shares_interoperate_with_pyseto() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import pyseto"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("MCPG_REQUIRE_PYSETO").is_none(),
            "MCPG_REQUIRE_PYSETO is set but python3 cannot import pyseto"
        );
        eprintln!("SKIPPED: python3 with pyseto not found (pip install pyseto)");
        return;
    }
    let work = Workdir::new();
    let pw = passphrase(&work, "pw", "a passphrase long enough");
    keygen_sealed(&work, "sealed", "issuer", &pw).success();
    let ours = fs::read_to_string(work.path("sealed/issuer.secret-pw.paserk")).expect("sealed");
    let key = sealed::open_secret(&ours, b"a passphrase long enough").expect("opens");
    let shares = split_root(&work, "root27");
    let share: ShareFile =
        serde_json::from_str(&fs::read_to_string(&shares[1]).expect("share")).expect("json");

    let script = r#"
import json, sys
from pyseto import Key
case = json.load(sys.stdin)
opened = Key.from_paserk(case["sealed"], password=case["password"]).to_paserk()
share = Key.from_paserk(case["share"], password=case["share_password"]).to_paserk()
theirs = Key.from_paserk(opened).to_paserk(
    password="pyseto passphrase", memory_cost=8192, time_cost=1, parallelism=1)
print(json.dumps({"opened": opened, "share": share, "theirs": theirs}))
"#;
    let case = serde_json::json!({
        "sealed": ours.trim(),
        "password": "a passphrase long enough",
        "share": share.sealed,
        "share_password": "custodian 2 passphrase",
    });
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(case.to_string().as_bytes())
            .expect("write case");
    }
    let output = child.wait_with_output().expect("python3 finishes");
    assert!(
        output.status.success(),
        "pyseto failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json answer");
    // pyseto opens our k4.secret-pw to the same key.
    assert_eq!(answer["opened"], key.to_paserk().as_str());
    // pyseto opens our k4.local-pw share to the same 32 bytes we do.
    let value = sealed::open_local(&share.sealed, b"custodian 2 passphrase").expect("opens");
    assert_eq!(
        answer["share"],
        format!("k4.local.{}", URL_SAFE_NO_PAD.encode(value.as_ref()))
    );
    // And we open pyseto's k4.secret-pw to the same key.
    let theirs = answer["theirs"].as_str().expect("theirs");
    assert!(theirs.starts_with("k4.secret-pw."));
    let reopened = sealed::open_secret(theirs, b"pyseto passphrase").expect("we open theirs");
    assert_eq!(reopened.public_key(), key.public_key());
}

#[test]
fn sealing_flags_without_a_seal_and_shared_passphrases_are_refused() {
    let work = Workdir::new();
    let pw = passphrase(&work, "pw", "a passphrase long enough");
    assert_one_error(
        work.run(["keygen", "--out", "keys", "--passphrase-file", &pw]),
        2,
        "add --seal",
    );
    assert_one_error(
        work.run(["keygen", "--out", "keys", "--argon2-memory", "64"]),
        2,
        "add --seal",
    );
    let mut one_for_all = vec![
        "keygen",
        "--out",
        "root",
        "--shares",
        "5",
        "--threshold",
        "3",
    ];
    one_for_all.extend(CHEAP);
    one_for_all.extend(["--passphrase-file", &pw]);
    assert_one_error(work.run(&one_for_all), 2, "one per secret");
    let mut same_twice = vec![
        "keygen",
        "--out",
        "root",
        "--shares",
        "2",
        "--threshold",
        "2",
    ];
    same_twice.extend(CHEAP);
    same_twice.extend(["--passphrase-file", &pw, "--passphrase-file", &pw]);
    assert_one_error(
        work.run(&same_twice),
        2,
        "shares 1 and 2 have the same passphrase",
    );
    assert!(!work.path("keys").exists() && !work.path("root").exists());
}

#[test]
fn a_damaged_share_is_refused_before_any_passphrase_is_asked_and_a_misfit_share_is_named() {
    let work = Workdir::new();
    split_root(&work, "root27");
    let issue = [
        "issue",
        "--org",
        "acme",
        "--tier",
        "team",
        "--out",
        "x.license",
    ];
    // Truncated sealed value: refused when the set is read, with no passphrase file given
    // (a prompt would fail here with "no terminal").
    let share2 = work.path("root/root27.share-2-of-5.json");
    let original = fs::read_to_string(&share2).expect("share");
    let mut share: ShareFile = serde_json::from_str(&original).expect("json");
    share.sealed.truncate(share.sealed.len() - 8);
    fs::write(&share2, serde_json::to_string(&share).expect("json")).expect("write");
    let mut args: Vec<String> = issue.iter().map(|s| s.to_string()).collect();
    for i in [1, 2, 3] {
        args.extend(["--share".into(), format!("root/root27.share-{i}-of-5.json")]);
    }
    assert_one_error(
        work.run(args),
        2,
        "root27.share-2-of-5.json is not an MCPG key share",
    );

    // Four shares, one of them re-sealed with another value: the misfit is named.
    let mut misfit: ShareFile = serde_json::from_str(&original).expect("json");
    misfit.sealed = sealed::seal_local(
        &[3u8; 32],
        b"custodian 2 passphrase",
        Argon2Cost::new(8, 1).expect("cost"),
    )
    .expect("seal");
    fs::write(&share2, serde_json::to_string(&misfit).expect("json")).expect("write");
    assert_one_error(
        run_with(&work, &issue, share_args(&work, "root27", &[1, 2, 3, 4])),
        2,
        "root27.share-2-of-5.json does not fit the others",
    );
    assert!(!work.path("x.license").exists());
}
