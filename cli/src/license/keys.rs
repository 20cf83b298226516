//! `keygen` (a new key pair: the public half as PASERK and JWK, the secret plain, sealed
//! under a passphrase, or split into sealed shares) and `jwks` (a JWKS document).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use mcpg_license_core::sealed;
use mcpg_license_core::{Jwks, SigningKey};

use mcpg_runtime::output::Output;

use super::custody::{CostArgs, Passphrases};
use super::shares::{ShareError, split};
use crate::files::{self, FileError, PUBLIC_MODE};
use zeroize::Zeroizing;

pub(crate) const KEYGEN_EXAMPLES: &str = "\
Examples:
  # The vendor root, on the air-gapped signing machine, split 3-of-5 among custodians
  # (each types their own passphrase; the whole secret is never written)
  mcpg-license keygen --out /media/offline --name mcpg-root-2027 --shares 5 --threshold 3

  # A root or issuer key sealed under a passphrase (asked twice at the terminal)
  mcpg-license keygen --out /media/offline --name acme-root --seal

  # A BYOC issuer key for a customer's mcpg-auth, with PEM copies for tools that want PKCS#8
  mcpg-license keygen --out ./acme --name acme-issuer --pem

Writes NAME.public.paserk and NAME.jwk.json, and the secret as one of:
  NAME.secret.paserk (mode 0600)            plain (the default; plus .pem files with --pem)
  NAME.secret-pw.paserk (mode 0600)         --seal: a PASERK k4.secret-pw, Argon2id
  NAME.share-I-of-N.json (mode 0600 each)   --shares N --threshold K: Shamir shares, each
                                            sealed (k4.local-pw) under its own passphrase
Passphrases come from the terminal, or from --passphrase-file (one for all, or one per
share) in scripts; never from the command line or the environment. Refuses to run when any
of the files exists. Commit or publish only the public files.";

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
    #[arg(long, conflicts_with_all = ["seal", "shares"])]
    pub pem: bool,
    /// Seal the secret under a passphrase (NAME.secret-pw.paserk, PASERK k4.secret-pw)
    #[arg(long, conflicts_with = "shares")]
    pub seal: bool,
    /// Split the secret into N shares (NAME.share-I-of-N.json), each sealed under its own
    /// passphrase; the whole secret is never written
    #[arg(long, value_name = "N", requires = "threshold")]
    pub shares: Option<u8>,
    /// How many of the --shares rebuild the key
    #[arg(long, value_name = "K", requires = "shares")]
    pub threshold: Option<u8>,
    /// File holding the new passphrase (--seal), or one per share in order (each custodian
    /// chooses their own). Without it the terminal asks, twice each
    #[arg(long = "passphrase-file", value_name = "FILE")]
    pub passphrase_files: Vec<PathBuf>,
    /// Argon2id cost of the seals.
    #[command(flatten)]
    pub cost: CostArgs,
}

/// Arguments of `jwks`.
#[derive(Debug, Args)]
pub struct JwksArgs {
    /// Public key files (k4.public PASERK, PEM or JWK)
    #[arg(value_name = "PUBLIC", required = true)]
    pub keys: Vec<PathBuf>,
}

/// How the secret half is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Custody {
    /// `NAME.secret.paserk`, optionally with PEM copies.
    Plain {
        /// Also PEM files.
        pem: bool,
    },
    /// `NAME.secret-pw.paserk`.
    Sealed,
    /// `NAME.share-I-of-N.json`, any `threshold` of which rebuild the key.
    Shares {
        /// k.
        threshold: u8,
        /// n.
        shares: u8,
    },
}

/// The files `keygen` writes for one key.
#[derive(Debug, Clone)]
pub struct KeyFiles {
    /// The secret's file(s): one plain or sealed file, or one file per share.
    pub secrets: Vec<PathBuf>,
    /// `NAME.public.paserk`.
    pub public: PathBuf,
    /// `NAME.jwk.json`.
    pub jwk: PathBuf,
    /// `NAME.secret.pem` and `NAME.public.pem`, when asked for.
    pub pem: Option<(PathBuf, PathBuf)>,
}

impl KeyFiles {
    /// The paths for `name` in `dir`.
    pub fn new(dir: &Path, name: &str, custody: Custody) -> Self {
        let file = |suffix: &str| dir.join(format!("{name}.{suffix}"));
        let secrets = match custody {
            Custody::Plain { .. } => vec![file("secret.paserk")],
            Custody::Sealed => vec![file("secret-pw.paserk")],
            Custody::Shares { shares, .. } => (1..=shares)
                .map(|i| file(&format!("share-{i}-of-{shares}.json")))
                .collect(),
        };
        Self {
            secrets,
            public: file("public.paserk"),
            jwk: file("jwk.json"),
            pem: matches!(custody, Custody::Plain { pem: true })
                .then(|| (file("secret.pem"), file("public.pem"))),
        }
    }

    fn all(&self) -> Vec<&Path> {
        let mut paths: Vec<&Path> = self.secrets.iter().map(PathBuf::as_path).collect();
        paths.extend([self.public.as_path(), &self.jwk]);
        if let Some((secret, public)) = &self.pem {
            paths.extend([secret.as_path(), public.as_path()]);
        }
        paths
    }
}

/// Writes `files` (path, contents, mode): checks that none exists before writing any, and
/// removes the ones already written if a later write fails.
fn write_all(mut writes: Vec<(PathBuf, Vec<u8>, u32)>) -> Result<(), FileError> {
    files::ensure_absent(writes.iter().map(|(p, _, _)| p.as_path()), KEYGEN_HINT)?;
    let mut done: Vec<PathBuf> = Vec::new();
    let mut result = Ok(());
    for (path, contents, mode) in &mut writes {
        if result.is_ok() {
            result = files::write_new(path, contents, *mode, KEYGEN_HINT);
            if result.is_ok() {
                done.push(path.clone());
            }
        }
        // Secret bytes do not linger in freed memory longer than needed.
        contents.fill(0);
    }
    if result.is_err() {
        for written in done {
            let _ = std::fs::remove_file(written);
        }
    }
    result
}

fn line(text: &str) -> Vec<u8> {
    format!("{text}\n").into_bytes()
}

impl KeygenArgs {
    fn custody(&self) -> Custody {
        match (self.shares, self.threshold) {
            (Some(shares), Some(threshold)) => Custody::Shares { threshold, shares },
            _ if self.seal => Custody::Sealed,
            _ => Custody::Plain { pem: self.pem },
        }
    }
}

/// `keygen`.
pub fn keygen(args: &KeygenArgs, output: Output) -> anyhow::Result<ExitCode> {
    let custody = args.custody();
    let files = KeyFiles::new(&args.out, &args.name, custody);
    // Refuse before generating anything, asking for a passphrase or creating the directory.
    files::ensure_absent(files.all(), KEYGEN_HINT)?;
    if matches!(custody, Custody::Plain { .. })
        && (!args.passphrase_files.is_empty() || args.cost.given())
    {
        bail!(
            "--passphrase-file and --argon2-* seal a key: add --seal (or --shares N --threshold K), or leave them out for a plain key"
        );
    }
    let cost = args.cost.cost()?;
    let secret_count = files.secrets.len();
    let passphrases = Passphrases::new(&args.passphrase_files, secret_count)?;
    if let Custody::Shares { threshold, shares } = custody
        && (threshold < 2 || threshold > shares)
    {
        return Err(ShareError::Counts { threshold, shares }.into());
    }
    let key = SigningKey::generate().context("generating a key")?;
    let public = key.public_key();
    let mut jwk = serde_json::to_string_pretty(&public.to_jwk()).unwrap_or_default();
    jwk.push('\n');
    let mut writes: Vec<(PathBuf, Vec<u8>, u32)> = Vec::new();
    match custody {
        Custody::Plain { .. } => {
            writes.push((
                files.secrets[0].clone(),
                line(&key.to_paserk()),
                files::SECRET_MODE,
            ));
            if let Some((secret, public_pem)) = &files.pem {
                writes.push((
                    secret.clone(),
                    key.to_pem().as_bytes().to_vec(),
                    files::SECRET_MODE,
                ));
                writes.push((
                    public_pem.clone(),
                    public.to_pem().into_bytes(),
                    PUBLIC_MODE,
                ));
            }
        }
        Custody::Sealed => {
            let phrase =
                passphrases.new_passphrase(0, &format!("{}", files.secrets[0].display()))?;
            let sealed = sealed::seal_secret(&key, &phrase, cost)?;
            writes.push((files.secrets[0].clone(), line(&sealed), files::SECRET_MODE));
        }
        Custody::Shares { threshold, shares } => {
            let mut chosen: Vec<Zeroizing<Vec<u8>>> = Vec::new();
            let made = split(&key, threshold, shares, cost, |index| {
                let phrase = passphrases.new_passphrase(
                    usize::from(index) - 1,
                    &format!("share {index} of {shares}"),
                )?;
                if let Some(same) = chosen.iter().position(|earlier| *earlier == phrase) {
                    bail!(
                        "shares {} and {index} have the same passphrase: each custodian chooses their own",
                        same + 1
                    );
                }
                chosen.push(phrase.clone());
                Ok(phrase)
            })?;
            for (share, path) in made.iter().zip(&files.secrets) {
                let mut text = serde_json::to_string_pretty(share)?;
                text.push('\n');
                writes.push((path.clone(), text.into_bytes(), files::SECRET_MODE));
            }
        }
    }
    writes.push((files.public.clone(), line(&public.to_paserk()), PUBLIC_MODE));
    writes.push((files.jwk.clone(), jwk.into_bytes(), PUBLIC_MODE));
    files::create_private_dir(&args.out)?;
    write_all(writes)?;
    if output.is_json() {
        let path = |p: &PathBuf| p.display().to_string();
        let custody_name = match custody {
            Custody::Plain { .. } => "plain",
            Custody::Sealed => "sealed",
            Custody::Shares { .. } => "shares",
        };
        let document = serde_json::json!({
            "kid": key.kid().to_string(),
            "custody": custody_name,
            "secret_files": files.secrets.iter().map(path).collect::<Vec<_>>(),
            "public": path(&files.public),
            "jwk": path(&files.jwk),
            "pem": files.pem.as_ref().map(|(secret, public)| serde_json::json!({
                "secret": path(secret),
                "public": path(public),
            })),
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![("kid", key.kid().to_string())];
    match custody {
        Custody::Plain { .. } => rows.push((
            "secret",
            format!(
                "{}  (mode 0600: keep it offline)",
                files.secrets[0].display()
            ),
        )),
        Custody::Sealed => rows.push((
            "sealed secret",
            format!(
                "{}  (k4.secret-pw, Argon2id {} MiB x {})",
                files.secrets[0].display(),
                cost.memory_bytes / (1024 * 1024),
                cost.iterations
            ),
        )),
        Custody::Shares { threshold, shares } => {
            rows.push((
                "shares",
                format!("{shares}, any {threshold} rebuild the key (hand one to each custodian)"),
            ));
            for path in &files.secrets {
                rows.push(("share", path.display().to_string()));
            }
        }
    }
    rows.push(("public", files.public.display().to_string()));
    rows.push(("jwk", files.jwk.display().to_string()));
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
