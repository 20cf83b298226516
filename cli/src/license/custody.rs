//! How a signing command gets its key: a plain secret file, a passphrase-sealed one
//! (`k4.secret-pw`), or k-of-n shares rebuilt in memory. Passphrases come from the terminal
//! or from files named on the command line; never from argv or the environment, where
//! other users (`ps`, `/proc/*/environ`) and shell histories would see them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use mcpg_license_core::SigningKey;
use mcpg_license_core::sealed::{self, Argon2Cost};
use zeroize::Zeroizing;

use super::shares::ShareSet;
use super::warn_if_exposed;
use crate::files;

/// The shortest passphrase a new seal accepts.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Where a signing command's key comes from.
#[derive(Debug, Clone, Args)]
pub struct SignerArgs {
    /// Secret key that signs: k4.secret PASERK, sealed k4.secret-pw PASERK, or PKCS#8 PEM
    #[arg(
        long,
        value_name = "SECRET",
        required_unless_present = "shares",
        conflicts_with = "shares"
    )]
    pub key: Option<PathBuf>,
    /// A custodian's share of a split root (repeat: at least the threshold of shares)
    #[arg(long = "share", value_name = "SHARE")]
    pub shares: Vec<PathBuf>,
    /// File holding the passphrase of a sealed --key, or one per --share in the same order.
    /// Without it the terminal asks
    #[arg(long = "passphrase-file", value_name = "FILE")]
    pub passphrase_files: Vec<PathBuf>,
}

impl SignerArgs {
    /// The signing key, opened or rebuilt in memory.
    pub fn load(&self) -> anyhow::Result<SigningKey> {
        if let Some(path) = &self.key {
            let files = Passphrases::new(&self.passphrase_files, 1)?;
            let mut asked = false;
            let key = load_key_file(path, || {
                asked = true;
                files.get(0, &path.display().to_string())
            })?;
            if !asked && !self.passphrase_files.is_empty() {
                eprintln!(
                    "warning: {} is not sealed; --passphrase-file was not used (seal it: keygen --seal)",
                    path.display()
                );
            }
            return Ok(key);
        }
        let set = ShareSet::read(&self.shares)?;
        let files = Passphrases::new(&self.passphrase_files, self.shares.len())?;
        let total = set.shares.len();
        set.rebuild(|position, path| {
            let index = set.shares[position].1.index;
            files.get(
                position,
                &format!(
                    "share {index} ({}), {} of {total} given",
                    path.display(),
                    position + 1
                ),
            )
        })
    }
}

/// Reads a signing key file, plain or sealed; `passphrase` is asked only for a sealed one.
pub fn load_key_file(
    path: &Path,
    passphrase: impl FnOnce() -> anyhow::Result<Zeroizing<Vec<u8>>>,
) -> anyhow::Result<SigningKey> {
    let text = Zeroizing::new(files::read_text(path)?);
    warn_if_exposed(path);
    if sealed::is_sealed_secret(&text) {
        // A damaged file is refused before anyone types a passphrase for it.
        sealed::check_sealed_secret(&text)
            .with_context(|| format!("{} is not a usable sealed key", path.display()))?;
        let phrase = passphrase()?;
        return sealed::open_secret(&text, &phrase)
            .with_context(|| format!("{} does not open", path.display()));
    }
    SigningKey::parse_any(&text).map_err(|source| {
        files::FileError::Key {
            path: path.to_owned(),
            source,
        }
        .into()
    })
}

/// The passphrase files given for `count` secrets: none (ask at the terminal) or one each.
/// Each share has its own custodian and so its own passphrase: one passphrase for all the
/// shares would make a 3-of-5 split "any three files and one passphrase".
pub struct Passphrases<'a> {
    files: &'a [PathBuf],
}

impl<'a> Passphrases<'a> {
    /// Checks that `files` fits `count` secrets.
    pub fn new(files: &'a [PathBuf], count: usize) -> anyhow::Result<Self> {
        if !files.is_empty() && files.len() != count {
            bail!(
                "{} --passphrase-file given for {count} secret(s): give one per secret, in order, or none to be asked at the terminal",
                files.len()
            );
        }
        Ok(Self { files })
    }

    /// The passphrase of secret `position`, described to the user as `what`.
    pub fn get(&self, position: usize, what: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        match self.files.get(position) {
            Some(file) => read_passphrase_file(file),
            None => prompt(&format!("Passphrase for {what}: ")),
        }
    }

    /// A new passphrase for secret `position` (checked for length; asked twice at a
    /// terminal).
    pub fn new_passphrase(
        &self,
        position: usize,
        what: &str,
    ) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let phrase = match self.files {
            [] => {
                let first = prompt(&format!("New passphrase for {what}: "))?;
                let again = prompt(&format!("Repeat the passphrase for {what}: "))?;
                if first != again {
                    bail!("the two passphrases for {what} differ");
                }
                first
            }
            _ => self.get(position, what)?,
        };
        let chars = String::from_utf8_lossy(&phrase).chars().count();
        if chars < MIN_PASSPHRASE_CHARS {
            bail!(
                "the passphrase for {what} has {chars} characters; a seal needs at least {MIN_PASSPHRASE_CHARS}"
            );
        }
        Ok(phrase)
    }
}

/// Reads a passphrase file: its bytes without one trailing newline; refuses an empty one.
pub fn read_passphrase_file(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let text = Zeroizing::new(files::read_text(path).map_err(|e| match e {
        files::FileError::NotText { path } => {
            anyhow::anyhow!("passphrase file {} is empty or not text", path.display())
        }
        other => other.into(),
    })?);
    if let Some(mode) = files::loose_permissions(path) {
        eprintln!(
            "warning: passphrase file {} has mode {mode:04o}; run `chmod 600` on it",
            path.display()
        );
    }
    let line = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if line.is_empty() {
        bail!("passphrase file {} is empty", path.display());
    }
    Ok(Zeroizing::new(line.as_bytes().to_vec()))
}

fn prompt(question: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    // rpassword prompts on and reads from /dev/tty, so piped stdin is never taken for one.
    let answer = rpassword::prompt_password(question).map_err(|_| {
        anyhow::anyhow!(
            "no terminal to ask for a passphrase ({}): give --passphrase-file FILE",
            question.trim_end_matches([':', ' '])
        )
    })?;
    let answer = Zeroizing::new(answer.into_bytes());
    if answer.is_empty() {
        bail!("no passphrase given");
    }
    Ok(answer)
}

/// The Argon2id cost flags of commands that seal.
#[derive(Debug, Clone, Args)]
pub struct CostArgs {
    /// Argon2id memory per seal, in MiB, 8 to 1024 [default: 256]
    #[arg(long, value_name = "MIB")]
    pub argon2_memory: Option<u64>,
    /// Argon2id passes per seal, 1 to 16 [default: 3]
    #[arg(long, value_name = "N")]
    pub argon2_passes: Option<u32>,
}

impl CostArgs {
    /// Whether either flag was given.
    pub fn given(&self) -> bool {
        self.argon2_memory.is_some() || self.argon2_passes.is_some()
    }

    /// The cost, checked.
    pub fn cost(&self) -> anyhow::Result<Argon2Cost> {
        let default = Argon2Cost::DEFAULT;
        Ok(Argon2Cost::new(
            self.argon2_memory
                .unwrap_or(default.memory_bytes / (1024 * 1024)),
            self.argon2_passes.unwrap_or(default.iterations),
        )?)
    }
}
