//! `mcpg-ctl keys certificate add|remove`: a root rollover from the operator's side, with
//! certificates made by `mcpg-license certify`.

use super::{Server, assert_one_error, stdout};
use crate::support::Signer;
use crate::support::license::{ISSUER, Keys};

/// `certify` the issuer key with `root`, unbounded, into `out`; returns the certificate id.
fn certify(work: &Signer, root: &Keys, subject: &Keys, out: &str) -> String {
    work.certify(root, subject, out, &["--valid-for", "90d"]);
    work.certificate_id(out)
}

#[test]
fn a_new_roots_certificate_is_added_to_the_key_and_the_old_one_removed() {
    let work = Signer::new();
    let old_root = work.keygen("root-2026");
    let new_root = work.keygen("root-2027");
    let issuer = work.keygen("issuer");
    let old_cid = certify(&work, &old_root, &issuer, "old.cert");
    let new_cid = certify(&work, &new_root, &issuer, "new.cert");
    let (key, old_cert) = (
        issuer.secret.display().to_string(),
        work.path("old.cert").display().to_string(),
    );
    let (old_public, new_public) = (
        old_root.public.display().to_string(),
        new_root.public.display().to_string(),
    );
    let server = Server::start_with(&[
        "--issuer",
        ISSUER,
        "--signing-key",
        &key,
        "--certificate",
        &old_cert,
        "--trusted-root",
        &old_public,
        "--trusted-root",
        &new_public,
    ]);
    let keys = server.json(["keys", "list"]);
    let kid = keys[0]["kid"].as_str().expect("kid").to_owned();
    let new_file = work.path("new.cert").display().to_string();

    let added = server.json(["keys", "certificate", "add", &kid, "--file", &new_file]);
    assert_eq!(added["cid"], new_cid.as_str());
    assert_eq!(added["primary"], false);
    let certificates = server.json(["keys", "list"])[0]["certificates"].clone();
    assert_eq!(certificates[0]["cid"], old_cid.as_str());
    assert_eq!(certificates[1]["cid"], new_cid.as_str());
    // The same certificate twice is a refusal (exit 1), a missing file a usage error.
    assert_one_error(
        server.ctl(["keys", "certificate", "add", &kid, "--file", &new_file]),
        1,
        "conflict",
    );
    assert_one_error(
        server.ctl(["keys", "certificate", "add", &kid, "--file", "no-such.cert"]),
        2,
        "no-such.cert",
    );

    let removed = stdout(
        &server
            .ctl(["keys", "certificate", "remove", &kid, &old_cid])
            .success(),
    );
    assert!(removed.contains(&old_cid), "{removed}");
    let certificates = server.json(["keys", "list"])[0]["certificates"].clone();
    assert_eq!(certificates.as_array().map(Vec::len), Some(1));
    assert_eq!(certificates[0]["cid"], new_cid.as_str());
    assert_eq!(certificates[0]["primary"], true);
    // The last certificate stays.
    assert_one_error(
        server.ctl(["keys", "certificate", "remove", &kid, &new_cid]),
        1,
        "conflict",
    );
}
