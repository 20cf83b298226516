//! `keygen` (a new key pair written as PASERK, JWK and optionally PEM files) and `jwks`
//! (a JWKS document for public keys).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use mcpg_license_core::{Jwks, SigningKey};

use crate::files::{self, FileError, PUBLIC_MODE};

pub(crate) const KEYGEN_EXAMPLES: &str = "\
Examples:
  # The vendor root, on the air-gapped signing machine (see keys/README.md)
  mcpg-license keygen --out /media/offline --name mcpg-root-2027

  # A BYOC issuer key for a customer, with PEM copies for tools that want PKCS#8
  mcpg-license keygen --out ./acme --name acme-issuer --pem

Writes NAME.secret.paserk (mode 0600), NAME.public.paserk and NAME.jwk.json (plus
NAME.secret.pem and NAME.public.pem with --pem) and prints the key id. Refuses to run
when any of these files exists. Commit or publish only the public files.";

pub(crate) const JWKS_EXAMPLES: &str = "\
Examples:
  mcpg-license jwks keys/mcpg-root-2026.public.paserk > jwks.json
  mcpg-license jwks ./acme/acme-issuer.jwk.json ./acme/acme-issuer.public.pem

Each file may hold a k4.public PASERK, an SPKI PEM public key or an OKP JWK.";

const KEYGEN_HINT: &str = "choose another --name or --out";

/// Arguments of `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Directory to write the key files to (created with mode 0700 if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Base name of the files: NAME.secret.paserk, NAME.public.paserk, NAME.jwk.json
    #[arg(long, value_name = "NAME", default_value = "mcpg", value_parser = parse_name)]
    pub name: String,
    /// Also write NAME.secret.pem (PKCS#8, mode 0600) and NAME.public.pem (SPKI)
    #[arg(long)]
    pub pem: bool,
}

/// Arguments of `jwks`.
#[derive(Debug, Args)]
pub struct JwksArgs {
    /// Public key files (k4.public PASERK, PEM or JWK)
    #[arg(value_name = "PUBLIC", required = true)]
    pub keys: Vec<PathBuf>,
}

/// The files `keygen` writes for one key.
#[derive(Debug, Clone)]
pub struct KeyFiles {
    /// `NAME.secret.paserk`.
    pub secret: PathBuf,
    /// `NAME.public.paserk`.
    pub public: PathBuf,
    /// `NAME.jwk.json`.
    pub jwk: PathBuf,
    /// `NAME.secret.pem` and `NAME.public.pem`, when asked for.
    pub pem: Option<(PathBuf, PathBuf)>,
}

impl KeyFiles {
    /// The paths for `name` in `dir`.
    pub fn new(dir: &Path, name: &str, pem: bool) -> Self {
        let file = |suffix: &str| dir.join(format!("{name}.{suffix}"));
        Self {
            secret: file("secret.paserk"),
            public: file("public.paserk"),
            jwk: file("jwk.json"),
            pem: pem.then(|| (file("secret.pem"), file("public.pem"))),
        }
    }

    fn all(&self) -> Vec<&Path> {
        let mut paths = vec![self.secret.as_path(), &self.public, &self.jwk];
        if let Some((secret, public)) = &self.pem {
            paths.extend([secret.as_path(), public.as_path()]);
        }
        paths
    }
}

/// Writes `key` to `files`: checks that none exists before writing any, and removes the
/// ones already written if a later write fails.
pub fn write_key_files(key: &SigningKey, files: &KeyFiles) -> Result<(), FileError> {
    files::ensure_absent(files.all(), KEYGEN_HINT)?;
    let public = key.public_key();
    let mut jwk = serde_json::to_string_pretty(&public.to_jwk()).unwrap_or_default();
    jwk.push('\n');
    let mut writes: Vec<(&Path, Vec<u8>, u32)> = vec![
        (&files.secret, line(&key.to_paserk()), files::SECRET_MODE),
        (&files.public, line(&public.to_paserk()), PUBLIC_MODE),
        (&files.jwk, jwk.into_bytes(), PUBLIC_MODE),
    ];
    if let Some((secret, public_pem)) = &files.pem {
        writes.push((secret, key.to_pem().as_bytes().to_vec(), files::SECRET_MODE));
        writes.push((public_pem, public.to_pem().into_bytes(), PUBLIC_MODE));
    }
    let mut done: Vec<&Path> = Vec::new();
    for (path, mut contents, mode) in writes {
        let result = files::write_new(path, &contents, mode, KEYGEN_HINT);
        // Secret bytes do not linger in freed memory longer than needed.
        contents.fill(0);
        if let Err(err) = result {
            for written in done {
                let _ = std::fs::remove_file(written);
            }
            return Err(err);
        }
        done.push(path);
    }
    Ok(())
}

fn line(text: &str) -> Vec<u8> {
    format!("{text}\n").into_bytes()
}

/// `keygen`.
pub fn keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let files = KeyFiles::new(&args.out, &args.name, args.pem);
    // Refuse before generating anything or creating the directory.
    files::ensure_absent(files.all(), KEYGEN_HINT)?;
    files::create_private_dir(&args.out)?;
    let key = SigningKey::generate().context("generating a key")?;
    write_key_files(&key, &files)?;
    let mut rows = vec![
        ("kid", key.kid().to_string()),
        (
            "secret",
            format!("{}  (mode 0600: keep it offline)", files.secret.display()),
        ),
        ("public", files.public.display().to_string()),
        ("jwk", files.jwk.display().to_string()),
    ];
    if let Some((secret, public)) = &files.pem {
        rows.push(("secret pem", secret.display().to_string()));
        rows.push(("public pem", public.display().to_string()));
    }
    print!("{}", crate::render::table(&rows));
    Ok(ExitCode::SUCCESS)
}

/// `jwks`.
pub fn jwks(args: &JwksArgs) -> anyhow::Result<ExitCode> {
    let mut jwks = Jwks::default();
    for path in &args.keys {
        let key = files::read_public_key(path)?;
        let jwk = key.to_jwk();
        if !jwks.keys.contains(&jwk) {
            jwks.keys.push(jwk);
        }
    }
    println!("{}", serde_json::to_string_pretty(&jwks)?);
    Ok(ExitCode::SUCCESS)
}

/// A key name must be a plain file name: no path separators, no leading dot.
fn parse_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{name:?} is not a plain file name (letters, digits, . - _, at most 64, not starting with . or -)"
        ))
    }
}
