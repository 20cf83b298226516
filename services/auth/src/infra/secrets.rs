//! Secrets at rest: the key-encryption key (KEK) that seals signing keys in the database,
//! the development root, and 0600 secret files.
//!
//! Signing keys are sealed with XChaCha20-Poly1305 (192-bit random nonces, so no nonce
//! bookkeeping across replicas) with the key id as associated data, so a sealed secret
//! cannot be swapped onto another key's row.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use mcpg_license_core::SigningKey;
use mcpg_license_core::sealed;
use secrecy::ExposeSecret;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::domain::settings::KekSource;
use crate::infra::files::{MAX_KEY_FILE, read_text};

const SEALED_PREFIX: &str = "xc20p1.";
const NONCE_BYTES: usize = 24;
/// File name of the generated KEK in the data directory.
pub(crate) const KEK_FILE: &str = "kek";
/// File name of the development root's secret key.
pub(crate) const DEV_ROOT_SECRET: &str = "dev-root.secret.paserk";
/// File name of the development root's public key (what gateways pin).
pub(crate) const DEV_ROOT_PUBLIC: &str = "dev-root.public.paserk";

/// A failure handling secrets.
#[derive(Debug, Error)]
pub(crate) enum SecretError {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The KEK is not 64 hex characters.
    #[error("the key-encryption key ({0}) must be 64 hex characters (32 bytes)")]
    BadKek(String),
    /// A key file does not hold a key.
    #[error("{path} does not hold a valid key: {message}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A sealed secret did not open: another KEK sealed it, or the row was tampered with.
    #[error(
        "cannot decrypt the {what} {kid} stored in the database: this replica's key-encryption key (--kek-file or MCPG_KEK, else <data-dir>/kek) is not the one of the replica that stored it (replicas sharing a database need the same key), or the row is corrupted"
    )]
    Unseal {
        /// What the secret is ("signing key", "development root").
        what: &'static str,
        /// Its key id.
        kid: String,
    },
    /// The system random source failed.
    #[error("random source failed")]
    Random,
}

/// The key-encryption key.
pub(crate) struct Kek {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

impl Kek {
    /// Loads the KEK from its source, generating `<data-dir>/kek` when that is the source
    /// and it does not exist yet.
    pub(crate) fn load(source: &KekSource, data_dir: &Path) -> Result<Self, SecretError> {
        let text: Zeroizing<String> = match source {
            KekSource::Inline(value) => Zeroizing::new(value.expose_secret().to_owned()),
            KekSource::File(path) => read_secret(path)?,
            KekSource::DataDir => {
                let path = data_dir.join(KEK_FILE);
                if !path.exists() {
                    let mut raw = Zeroizing::new([0u8; 32]);
                    getrandom::getrandom(raw.as_mut()).map_err(|_| SecretError::Random)?;
                    let encoded = Zeroizing::new(hex::encode(raw.as_ref()));
                    write_secret_file(&path, encoded.as_bytes())?;
                    tracing::warn!(
                        path = %path.display(),
                        "generated a key-encryption key; replicas sharing a database need the same key (MCPG_KEK or --kek-file)"
                    );
                }
                read_secret(&path)?
            }
        };
        let label = match source {
            KekSource::Inline(_) => "MCPG_KEK".to_owned(),
            KekSource::File(path) => path.display().to_string(),
            KekSource::DataDir => data_dir.join(KEK_FILE).display().to_string(),
        };
        let mut raw = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), raw.as_mut()).map_err(|_| SecretError::BadKek(label))?;
        let cipher = XChaCha20Poly1305::new(raw.as_ref().into());
        Ok(Self { cipher })
    }

    /// Seals `secret` for the key `kid`.
    pub(crate) fn seal(&self, kid: &str, secret: &[u8]) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::getrandom(&mut nonce).map_err(|_| SecretError::Random)?;
        let ciphertext = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Unseal {
                what: "secret",
                kid: kid.to_owned(),
            })?;
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)))
    }

    /// Opens a sealed secret of the key `kid`.
    pub(crate) fn open(&self, kid: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let fail = || SecretError::Unseal {
            what: "secret",
            kid: kid.to_owned(),
        };
        let raw = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
            .ok_or_else(fail)?;
        if raw.len() <= NONCE_BYTES {
            return Err(fail());
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| fail())?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: kid.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| fail())
    }

    /// Seals a signing key (its PASERK).
    pub(crate) fn seal_key(&self, key: &SigningKey) -> Result<String, SecretError> {
        self.seal(key.kid().as_str(), key.to_paserk().as_bytes())
    }

    /// Opens a sealed signing key and checks it is the key `kid` names.
    pub(crate) fn open_key(&self, kid: &str, sealed: &str) -> Result<SigningKey, SecretError> {
        self.open_labelled("signing key", kid, sealed)
    }

    /// Opens the sealed development root and checks it is the key `kid` names.
    pub(crate) fn open_root(&self, kid: &str, sealed: &str) -> Result<SigningKey, SecretError> {
        self.open_labelled("development root", kid, sealed)
    }

    fn open_labelled(
        &self,
        what: &'static str,
        kid: &str,
        sealed: &str,
    ) -> Result<SigningKey, SecretError> {
        let fail = || SecretError::Unseal {
            what,
            kid: kid.to_owned(),
        };
        let plain = self.open(kid, sealed).map_err(|_| fail())?;
        let text = std::str::from_utf8(&plain).map_err(|_| fail())?;
        let key = SigningKey::from_paserk(text).map_err(|_| fail())?;
        if key.kid().as_str() != kid {
            return Err(fail());
        }
        Ok(key)
    }
}

/// Creates `path` with mode 0600 and writes `contents`; refuses to overwrite.
pub(crate) fn write_secret_file(path: &Path, contents: &[u8]) -> Result<(), SecretError> {
    let io = |source| SecretError::Io {
        action: "cannot write",
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

fn read_secret(path: &Path) -> Result<Zeroizing<String>, SecretError> {
    read_text(path, MAX_KEY_FILE)
        .map(Zeroizing::new)
        .map_err(|source| SecretError::Io {
            action: "cannot read",
            path: path.to_owned(),
            source,
        })
}

/// Reads a signing key file (PASERK or PEM).
pub(crate) fn read_signing_key(path: &Path) -> Result<SigningKey, SecretError> {
    parse_signing_key(path, &read_secret(path)?)
}

fn parse_signing_key(path: &Path, text: &str) -> Result<SigningKey, SecretError> {
    SigningKey::parse_any(text.trim()).map_err(|e| SecretError::BadKey {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The systemd credential (`LoadCredential=signing-key-passphrase:…`) read when a sealed
/// signing key is given without `--signing-key-passphrase-file`.
pub(crate) const PASSPHRASE_CREDENTIAL: &str = "signing-key-passphrase";

/// Reads `--signing-key`: plain, or sealed under a passphrase (PASERK `k4.secret-pw`) that
/// comes from `passphrase_file` or, under systemd, from the credentials directory.
pub(crate) fn read_external_signing_key(
    path: &Path,
    passphrase_file: Option<&Path>,
) -> Result<SigningKey, SecretError> {
    let text = read_secret(path)?;
    if !sealed::is_sealed_secret(&text) {
        if passphrase_file.is_some() {
            tracing::warn!(path = %path.display(), "the signing key is not sealed: its passphrase file is not used; seal it with `mcpg-license keygen --seal`");
        }
        return parse_signing_key(path, &text);
    }
    sealed::check_sealed_secret(&text).map_err(|e| SecretError::BadKey {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|dir| Path::new(&dir).join(PASSPHRASE_CREDENTIAL))
        .filter(|file| file.is_file());
    let Some(source) = passphrase_file.map(Path::to_owned).or(credential) else {
        return Err(SecretError::BadKey {
            path: path.to_owned(),
            message: format!(
                "the key is sealed (k4.secret-pw): give --signing-key-passphrase-file, or the systemd credential {PASSPHRASE_CREDENTIAL}"
            ),
        });
    };
    let phrase = read_secret(&source)?;
    let phrase = phrase
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&phrase);
    sealed::open_secret(&text, phrase.as_bytes()).map_err(|e| SecretError::BadKey {
        path: path.to_owned(),
        message: format!("{e} (passphrase from {})", source.display()),
    })
}

/// The development root a data directory holds from before roots lived in the database
/// (`dev-root.secret.paserk`), if any.
pub(crate) fn read_dev_root_file(data_dir: &Path) -> Result<Option<SigningKey>, SecretError> {
    let path = data_dir.join(DEV_ROOT_SECRET);
    if !path.exists() {
        return Ok(None);
    }
    read_signing_key(&path).map(Some)
}

/// Writes the development root's files into `data_dir`: the public key (what gateways
/// pin, rewritten when it differs) and, when the data dir holds none, the secret (0600:
/// the operator signs revocation lists with it). A secret file of another root is left
/// alone (the caller says so); returns whether the secret file holds `root`.
pub(crate) fn write_dev_root_files(
    data_dir: &Path,
    root: &SigningKey,
) -> Result<bool, SecretError> {
    let secret_path = data_dir.join(DEV_ROOT_SECRET);
    let public_path = data_dir.join(DEV_ROOT_PUBLIC);
    let secret_matches = match read_dev_root_file(data_dir)? {
        Some(existing) => existing.kid() == root.kid(),
        None => {
            write_secret_file(&secret_path, root.to_paserk().as_bytes())?;
            true
        }
    };
    let public = root.public_key().to_paserk();
    let current = read_text(&public_path, MAX_KEY_FILE).unwrap_or_default();
    if current.trim() != public {
        std::fs::write(&public_path, format!("{public}\n")).map_err(|source| SecretError::Io {
            action: "cannot write",
            path: public_path.clone(),
            source,
        })?;
    }
    Ok(secret_matches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn sealed_keys_open_only_for_their_own_kid_and_kek() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kek = Kek::load(&KekSource::DataDir, dir.path()).expect("generated");
        let mode = std::fs::metadata(dir.path().join(KEK_FILE))
            .expect("kek")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let key = SigningKey::generate().expect("rng");
        let sealed = kek.seal_key(&key).expect("seal");
        let opened = kek.open_key(key.kid().as_str(), &sealed).expect("open");
        assert_eq!(opened.public_key(), key.public_key());
        assert!(kek.open_key("k4.pid.other", &sealed).is_err());
        let other = tempfile::tempdir().expect("tempdir");
        let other_kek = Kek::load(&KekSource::DataDir, other.path()).expect("generated");
        assert!(other_kek.open_key(key.kid().as_str(), &sealed).is_err());
    }

    #[test]
    fn the_dev_root_files_are_written_once_with_a_private_secret_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read_dev_root_file(dir.path()).expect("none").is_none());
        let root = SigningKey::generate().expect("rng");
        assert!(write_dev_root_files(dir.path(), &root).expect("written"));
        let read = read_dev_root_file(dir.path()).expect("read").expect("some");
        assert_eq!(read.public_key(), root.public_key());
        let mode = std::fs::metadata(dir.path().join(DEV_ROOT_SECRET))
            .expect("secret")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = SigningKey::generate().expect("rng");
        assert!(!write_dev_root_files(dir.path(), &other).expect("public rewritten"));
        let public = std::fs::read_to_string(dir.path().join(DEV_ROOT_PUBLIC)).expect("public");
        assert_eq!(public.trim(), other.public_key().to_paserk());
    }

    #[test]
    fn a_sealed_root_opens_only_under_its_kek_and_names_itself_when_it_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kek = Kek::load(&KekSource::DataDir, dir.path()).expect("generated");
        let root = SigningKey::generate().expect("rng");
        let sealed = kek.seal_key(&root).expect("seal");
        assert!(kek.open_root(root.kid().as_str(), &sealed).is_ok());
        let other = tempfile::tempdir().expect("tempdir");
        let other_kek = Kek::load(&KekSource::DataDir, other.path()).expect("generated");
        let error = other_kek
            .open_root(root.kid().as_str(), &sealed)
            .expect_err("another KEK");
        assert!(error.to_string().contains("development root"), "{error}");
    }
}
