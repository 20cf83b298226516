//! Files that are not small regular files (a symlink to `/dev/zero`, a FIFO, a directory, a
//! huge file) where the service expects its config, KEK, signing key, certificate or a
//! trusted root: start-up fails with an error naming the path, without hanging or reading
//! without bound.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use mcpg_auth::Application;
use mcpg_auth::{ExternalKey, KekSource, ServeArgs, Settings};
use mcpg_license_core::{Bounds, IssuerCertificate, SigningKey};

use crate::helpers::{now, test_settings};

/// Runs `f` on its own thread; fails the test when it takes longer than 10 s.
fn promptly<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("finished within 10 s, without reading forever")
}

/// Every kind of file that must be refused, made at a path.
/// Makes one kind of file at a path.
type Make = fn(&Path);

fn specials() -> [(&'static str, Make); 4] {
    [
        ("a symlink to /dev/zero", |p| {
            std::os::unix::fs::symlink("/dev/zero", p).expect("symlink")
        }),
        ("a FIFO", |p| {
            let status = Command::new("mkfifo").arg(p).status().expect("mkfifo");
            assert!(status.success());
        }),
        ("a directory", |p| std::fs::create_dir(p).expect("mkdir")),
        ("a 2 MiB file", |p| {
            std::fs::write(p, vec![b'#'; 2 * 1024 * 1024]).expect("write")
        }),
    ]
}

fn assert_names(error: &str, path: &Path, what: &str) {
    assert!(
        error.contains(&path.display().to_string()),
        "{what} at {}: {error}",
        path.display()
    );
    assert!(
        error.contains("not a regular file") || error.contains("larger than"),
        "{what}: {error}"
    );
}

#[test]
fn a_config_file_that_is_not_a_small_regular_file_is_refused_naming_it() {
    for (what, make) in specials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.toml");
        make(&path);
        let config = path.clone();
        let error = promptly(move || {
            Settings::resolve(ServeArgs {
                config: Some(config),
                ..ServeArgs::default()
            })
            .map(|_| ())
        })
        .expect_err(what);
        assert_names(&error.to_string(), &path, what);
    }
}

/// A valid external key, its certificate and root in `dir`: (key, certificate, root).
fn key_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let root = SigningKey::generate().expect("rng");
    let key = SigningKey::generate().expect("rng");
    let certificate = IssuerCertificate {
        cid: "cert-1".into(),
        issuer: "http://127.0.0.1:8421".into(),
        key: key.public_key().clone(),
        iat: now(),
        nbf: now() - 60,
        exp: now() + 30 * 86_400,
        bounds: Bounds::unbounded(),
    }
    .sign(&root)
    .expect("certificate");
    let paths = (
        dir.join("signing.paserk"),
        dir.join("signing.cert"),
        dir.join("root.public.paserk"),
    );
    std::fs::write(&paths.0, key.to_paserk().as_bytes()).expect("key");
    std::fs::write(&paths.1, certificate).expect("certificate");
    std::fs::write(&paths.2, root.public_key().to_paserk()).expect("root");
    paths
}

#[test]
fn key_files_that_are_not_small_regular_files_are_refused_naming_them() {
    for (what, make) in specials() {
        for target in ["kek", "signing key", "certificate", "trusted root"] {
            let data = tempfile::tempdir().expect("tempdir");
            let keys = tempfile::tempdir().expect("tempdir");
            let (key, certificate, root) = key_files(keys.path());
            let special = keys.path().join("special");
            make(&special);
            let mut settings = test_settings(data.path());
            let mut external = ExternalKey {
                signing_key: key,
                passphrase_file: None,
                certificates: vec![certificate],
            };
            settings.trusted_roots = vec![root];
            match target {
                "kek" => settings.kek = KekSource::File(special.clone()),
                "signing key" => external.signing_key = special.clone(),
                "certificate" => external.certificates = vec![special.clone()],
                _ => settings.trusted_roots = vec![special.clone()],
            }
            settings.external_key = Some(external);
            let error = promptly(move || {
                let runtime = tokio::runtime::Runtime::new().expect("runtime");
                runtime
                    .block_on(Application::build(settings))
                    .map(|_| ())
                    .map_err(|e| format!("{e:#}"))
            })
            .expect_err(target);
            assert_names(&error, &special, &format!("{target} as {what}"));
        }
    }
}
