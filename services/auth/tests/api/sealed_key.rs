//! A `--signing-key` sealed under a passphrase (PASERK `k4.secret-pw`): opened at start with
//! the passphrase from a file or from systemd's credentials directory, never started without.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcpg_auth::Application;
use mcpg_auth::ExternalKey;
use mcpg_license_core::sealed::{Argon2Cost, seal_secret};
use mcpg_license_core::{Bounds, SigningKey};

use crate::byoc::{ISSUER, certify};
use crate::helpers::{Backend, now, spawn_app_with, test_settings};

const PASSPHRASE: &str = "the signing key's passphrase";

/// A root, a key sealed under [`PASSPHRASE`] and its certificate, as files in a directory.
struct SealedKey {
    key: SigningKey,
    dir: tempfile::TempDir,
}

impl SealedKey {
    fn new() -> Self {
        let root = SigningKey::generate().expect("rng");
        let key = SigningKey::generate().expect("rng");
        let (certificate, _) = certify(
            &root,
            &key,
            Bounds::unbounded(),
            now() - 60,
            now() + 30 * 86_400,
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let sealed = seal_secret(
            &key,
            PASSPHRASE.as_bytes(),
            Argon2Cost::new(8, 1).expect("cost"),
        )
        .expect("seal");
        std::fs::write(dir.path().join("signing.secret-pw.paserk"), sealed).expect("key");
        std::fs::write(dir.path().join("signing.cert"), certificate).expect("cert");
        std::fs::write(
            dir.path().join("root.public.paserk"),
            root.public_key().to_paserk(),
        )
        .expect("root");
        std::fs::write(dir.path().join("passphrase"), format!("{PASSPHRASE}\n")).expect("pw");
        std::fs::write(dir.path().join("wrong"), "not the passphrase\n").expect("pw");
        Self { key, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn external(&self, passphrase: Option<&str>) -> ExternalKey {
        ExternalKey {
            signing_key: self.path("signing.secret-pw.paserk"),
            passphrase_file: passphrase.map(|name| self.path(name)),
            certificates: vec![self.path("signing.cert")],
        }
    }
}

#[tokio::test]
async fn a_sealed_signing_key_signs_with_its_passphrase_file() {
    let sealed = SealedKey::new();
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.external_key = Some(sealed.external(Some("passphrase")));
        settings.trusted_roots = vec![sealed.path("root.public.paserk")];
    })
    .await;
    let credential = app.gateway("acme").await;
    let body = app.token_ok(&credential).await;
    assert_eq!(body["kid"], sealed.key.kid().as_str());
}

#[tokio::test]
async fn a_sealed_signing_key_without_its_passphrase_or_with_a_wrong_one_stops_the_start() {
    let sealed = SealedKey::new();
    for (passphrase, expected) in [
        (None, "give --signing-key-passphrase-file"),
        (
            Some("wrong"),
            "the passphrase is wrong or the sealed key was altered",
        ),
    ] {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut settings = test_settings(data_dir.path());
        settings.external_key = Some(sealed.external(passphrase));
        settings.trusted_roots = vec![sealed.path("root.public.paserk")];
        let error = match Application::build(settings).await {
            Ok(_) => panic!("the start must fail ({expected})"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains(expected), "{error}");
        assert!(!error.contains(PASSPHRASE), "no passphrase in: {error}");
    }
}

#[tokio::test]
async fn the_binary_reads_the_passphrase_from_the_systemd_credentials_directory() {
    let sealed = SealedKey::new();
    let credentials = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        sealed.path("passphrase"),
        credentials.path().join("signing-key-passphrase"),
    )
    .expect("credential");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpg-auth"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--ops-listen", "127.0.0.1:0"])
        .args(["--issuer", ISSUER])
        .arg("--data-dir")
        .arg(data_dir.path())
        .arg("--signing-key")
        .arg(sealed.path("signing.secret-pw.paserk"))
        .arg("--certificate")
        .arg(sealed.path("signing.cert"))
        .arg("--trusted-root")
        .arg(sealed.path("root.public.paserk"))
        .env("CREDENTIALS_DIRECTORY", credentials.path())
        .env("MCPG_LOG", "warn")
        .env_remove("MCPG_KEK")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let jwks = loop {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/.well-known/jwks.json"))
            .send()
            .await
            && response.status().is_success()
        {
            break response.text().await.expect("body");
        }
        if let Some(exit) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
                .expect("read");
            panic!("the binary exited ({exit}): {stderr}");
        }
        assert!(Instant::now() < deadline, "binary did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(jwks.contains(sealed.key.kid().as_str()), "{jwks}");
}
