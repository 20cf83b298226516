//! The state directory: the last good token with its certificate (per credential) and the
//! highest time ever seen, each written atomically.
//!
//! Nothing read from here is trusted: tokens are re-verified through the chain at start,
//! and an unreadable file is reported and ignored by the caller.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use mcpg_license_core::UnixTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

const FORMAT_VERSION: u32 = 1;
const TIME_FILE: &str = "max-seen-time.json";
const REVOCATIONS_FILE: &str = "revocation-list.paseto";

/// A state-directory failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not a state file of this version.
    #[error("{path} is not a valid state file: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// What is kept about one federation credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedFederation {
    /// File format version.
    pub version: u32,
    /// SHA-256 of the credential (hex): state of another credential is never used.
    pub credential_sha256: String,
    /// The last token that verified.
    pub token: Option<String>,
    /// The certificate that verified it.
    pub issuer_certificate: Option<String>,
    /// The service's explicit no, when it said one (then there is no token).
    pub revoked: Option<String>,
    /// When this was written (by the gateway's monotonic view of time).
    pub saved_at: UnixTime,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersistedTime {
    version: u32,
    max_seen_time: UnixTime,
}

/// SHA-256 of a credential, hex.
pub fn credential_fingerprint(credential: &str) -> String {
    hex::encode(Sha256::digest(credential.as_bytes()))
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// Opens `dir`, creating it (0700) when missing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StoreError::Io {
                action: "creating state directory",
                path: dir.to_owned(),
                source,
            })?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file of the credential with this fingerprint.
    pub fn federation_path(&self, fingerprint: &str) -> PathBuf {
        let short = fingerprint.get(..16).unwrap_or(fingerprint);
        self.dir.join(format!("federation-{short}.json"))
    }

    /// Reads the state of a credential; `Ok(None)` when there is none.
    pub fn load_federation(
        &self,
        fingerprint: &str,
    ) -> Result<Option<PersistedFederation>, StoreError> {
        let path = self.federation_path(fingerprint);
        let Some(state) = read_json::<PersistedFederation>(&path)? else {
            return Ok(None);
        };
        let corrupt = |message: &str| StoreError::Corrupt {
            path: path.clone(),
            message: message.to_owned(),
        };
        if state.version != FORMAT_VERSION {
            return Err(corrupt("unknown format version"));
        }
        if state.credential_sha256 != fingerprint {
            return Err(corrupt("written for another credential"));
        }
        Ok(Some(state))
    }

    /// Writes the state of a credential atomically.
    pub fn save_federation(&self, state: &PersistedFederation) -> Result<(), StoreError> {
        let path = self.federation_path(&state.credential_sha256);
        write_json(&self.dir, &path, state)
    }

    /// A new federation record (current format version).
    pub fn record(
        fingerprint: &str,
        token: Option<(&str, &str)>,
        revoked: Option<&str>,
        saved_at: UnixTime,
    ) -> PersistedFederation {
        PersistedFederation {
            version: FORMAT_VERSION,
            credential_sha256: fingerprint.to_owned(),
            token: token.map(|(t, _)| t.to_owned()),
            issuer_certificate: token.map(|(_, c)| c.to_owned()),
            revoked: revoked.map(str::to_owned),
            saved_at,
        }
    }

    /// The highest time persisted so far, if any.
    pub fn load_max_seen(&self) -> Result<Option<UnixTime>, StoreError> {
        let path = self.dir.join(TIME_FILE);
        match read_json::<PersistedTime>(&path)? {
            Some(t) if t.version == FORMAT_VERSION => Ok(Some(t.max_seen_time)),
            Some(_) => Err(StoreError::Corrupt {
                path,
                message: "unknown format version".into(),
            }),
            None => Ok(None),
        }
    }

    /// Persists the highest time seen.
    pub fn save_max_seen(&self, at: UnixTime) -> Result<(), StoreError> {
        let record = PersistedTime {
            version: FORMAT_VERSION,
            max_seen_time: at,
        };
        write_json(&self.dir, &self.dir.join(TIME_FILE), &record)
    }
}

impl StateStore {
    /// The revocation list kept from an earlier start, if any.
    pub fn load_revocations(&self) -> Result<Option<String>, StoreError> {
        let path = self.dir.join(REVOCATIONS_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text.trim().to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io {
                action: "reading",
                path,
                source,
            }),
        }
    }

    /// Keeps the revocation list in force.
    pub fn save_revocations(&self, list: &str) -> Result<(), StoreError> {
        write_bytes(&self.dir, &self.dir.join(REVOCATIONS_FILE), list.as_bytes())
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::Io {
                action: "reading",
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

/// Writes `value` to `path` so that readers see the old file or the new one, never a part:
/// a temp file in the same directory, fsync, rename, fsync of the directory.
fn write_json<T: Serialize>(dir: &Path, path: &Path, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Corrupt {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    write_bytes(dir, path, &bytes)
}

/// The atomic write behind every state file.
fn write_bytes(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let temp = dir.join(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        fastrand::u64(..)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(io("creating", &temp))?;
        file.write_all(bytes).map_err(io("writing", &temp))?;
        file.sync_all().map_err(io("syncing", &temp))?;
        fs::rename(&temp, path).map_err(io("renaming into", path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("syncing directory", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
