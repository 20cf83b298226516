//! `mcpg-license` in a working directory of its own: keys generated at test time, offline
//! licenses and issuer certificates; and a service started with a key certified by such a
//! root instead of its development root.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;

use super::bins::Bin;
use super::process;
use super::service::Service;

/// The issuer URL the scenarios' certificates name and their services announce.
pub const ISSUER: &str = "http://127.0.0.1:8421";

/// A directory in which `mcpg-license` runs (a vendor's or a customer's key ceremony).
pub struct Signer {
    dir: TempDir,
}

/// The files of one generated key.
pub struct Keys {
    /// `keys/NAME.secret.paserk`.
    pub secret: PathBuf,
    /// `keys/NAME.public.paserk`.
    pub public: PathBuf,
}

impl Signer {
    /// A fresh directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `mcpg-license ARGS…`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut command = process::command(Bin::License);
        command.current_dir(self.dir.path()).args(args);
        process::run(command)
    }

    /// `mcpg-license ARGS…`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        process::success(&self.run(args), &format!("mcpg-license {}", args.join(" ")))
    }

    /// `keygen --out keys --name NAME`.
    pub fn keygen(&self, name: &str) -> Keys {
        self.ok(&["keygen", "--out", "keys", "--name", name]);
        Keys {
            secret: self.path(&format!("keys/{name}.secret.paserk")),
            public: self.path(&format!("keys/{name}.public.paserk")),
        }
    }

    /// `certify --key ROOT --subject-key SUBJECT --issuer ISSUER EXTRA… --out OUT`; returns
    /// the certificate's path.
    pub fn certify(&self, root: &Keys, subject: &Keys, out: &str, extra: &[&str]) -> PathBuf {
        let root = root.secret.display().to_string();
        let subject = subject.public.display().to_string();
        let mut args = vec![
            "certify",
            "--key",
            &root,
            "--subject-key",
            &subject,
            "--issuer",
            ISSUER,
            "--out",
            out,
        ];
        args.extend(extra);
        self.ok(&args);
        self.path(out)
    }

    /// The certificate id (`cid`) of a certificate, read with `inspect --json`.
    pub fn certificate_id(&self, certificate: &str) -> String {
        let out = self.ok(&["inspect", certificate, "--json"]);
        let inspected: Value = serde_json::from_str(&out).expect("inspect --json prints JSON");
        inspected
            .pointer("/claims/cid")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("a certificate id in {inspected}"))
            .to_owned()
    }
}

/// A service signing with `key` under `certificate` from `root` (`--signing-key`,
/// `--certificate`, `--trusted-root`, as docs/OPERATIONS.md's BYOC section runs it), with
/// `extra` flags.
pub fn certified_service(root: &Keys, key: &Keys, certificate: &Path, extra: &[&str]) -> Service {
    let (key, certificate, root) = (
        key.secret.display().to_string(),
        certificate.display().to_string(),
        root.public.display().to_string(),
    );
    let mut args = vec![
        "--issuer",
        ISSUER,
        "--signing-key",
        &key,
        "--certificate",
        &certificate,
        "--trusted-root",
        &root,
    ];
    args.extend(extra);
    Service::start(&args)
}

/// A vendor root made in `signer` and a service whose key it certified with
/// `--max-token-lifetime LIFETIME` (default grace bound, 7 days): the service's tokens
/// expire, and gateways refresh, within seconds, so outages and revocations show without
/// waiting 8 hours. Returns the service and the root gateways pin.
pub fn short_token_service(signer: &Signer, lifetime: &str, extra: &[&str]) -> (Service, Keys) {
    let root = signer.keygen("vendor-root");
    let issuer = signer.keygen("issuer");
    let certificate = signer.certify(
        &root,
        &issuer,
        "issuer.cert",
        &["--max-token-lifetime", lifetime, "--valid-for", "30d"],
    );
    let service = certified_service(&root, &issuer, &certificate, extra);
    (service, root)
}
