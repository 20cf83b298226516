//! `-o, --output table|json` on every `mcpg-license` command that prints data: one JSON
//! document on stdout and nothing else there, before or after the subcommand; `--json`
//! still works as an alias on `verify` and `inspect`.

use serde_json::Value;

use crate::{Workdir, stderr, stdout};

fn json(assert: &assert_cmd::assert::Assert) -> Value {
    let text = stdout(assert);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not one JSON document ({e}): {text}"))
}

#[test]
fn every_command_that_prints_data_prints_json_with_output_json() {
    let work = Workdir::new();
    let keygen = work
        .run(["keygen", "--out", "keys", "--name", "root", "-o", "json"])
        .success();
    let made = json(&keygen);
    assert!(
        made["kid"]
            .as_str()
            .is_some_and(|k| k.starts_with("k4.pid."))
    );
    assert_eq!(made["custody"], "plain");
    assert!(
        made["public"]
            .as_str()
            .is_some_and(|p| p.ends_with("root.public.paserk"))
    );
    let root = work.path("keys/root.secret.paserk").display().to_string();
    let public = work.path("keys/root.public.paserk");

    let issued = json(
        &work
            .issue(
                work.path("keys/root.secret.paserk").as_path(),
                "a.license",
                &["-o", "json"],
            )
            .success(),
    );
    assert_eq!(issued["claims"]["org"], "acme");
    assert_eq!(issued["written_to"], "a.license");
    let lic = issued["license"].as_str().expect("license id").to_owned();

    for args in [
        vec!["-o", "json", "inspect", "a.license"],
        vec!["inspect", "a.license", "--output", "json"],
        vec!["inspect", "a.license", "--json"],
    ] {
        let inspected = json(&work.run(&args).success());
        assert_eq!(inspected["claims"]["lic"], lic.as_str(), "{args:?}");
        assert_eq!(inspected["verified"], false);
    }
    let table = stdout(&work.run(["inspect", "a.license"]).success());
    assert!(serde_json::from_str::<Value>(&table).is_err(), "{table}");

    let verdict = json(&work.verify("a.license", &public, &["-o", "json"]).success());
    assert_eq!(verdict["valid"], true);

    let revoked = json(
        &work
            .run([
                "revoke",
                "--key",
                &root,
                "--serial",
                "1",
                "--license",
                &lic,
                "--out",
                "rl-1",
                "-o",
                "json",
            ])
            .success(),
    );
    assert_eq!(revoked["serial"], 1);
    assert_eq!(revoked["licenses"], serde_json::json!([lic]));
}

#[test]
fn certify_prints_json_and_its_advice_on_stderr() {
    let work = Workdir::new();
    let root = work.keygen("root");
    let issuer = work.keygen("issuer");
    let out = work
        .run([
            "certify",
            "--key",
            &root.secret.display().to_string(),
            "--subject-key",
            &issuer.public.display().to_string(),
            "--issuer",
            "https://auth.acme.example",
            "--org",
            "acme",
            "--max-tier",
            "team",
            "--out",
            "issuer.cert",
            "-o",
            "json",
        ])
        .success();
    let document = json(&out);
    assert!(
        document["certificate"]["cid"]
            .as_str()
            .is_some_and(|c| c.starts_with("cert_")),
        "{document}"
    );
    assert_eq!(document["written_to"], "issuer.cert");
    assert!(
        stderr(&out).contains("note: the default 24h lifetime"),
        "{}",
        stderr(&out)
    );
}
