//! The state directory: the last good token with its certificate (per credential) and the
//! highest time ever seen, each written atomically.
//!
//! Nothing read from here is trusted: tokens are re-verified through the chain at start,
//! and an unreadable file is reported and ignored by the caller.
//!
//! A federation state file is bound to its credential by a MAC (keyed BLAKE2b-256, the key
//! a domain-separated SHA-256 of the credential): another gateway's file copied in and
//! relabelled, or an edited one, does not verify without this gateway's credential and is
//! ignored. Files of the previous format (version 1, no MAC) are ignored the same way: they
//! cannot be told apart from a forgery, so the gateway federates again rather than trust one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use blake2::Blake2bMac;
use blake2::digest::Mac;
use blake2::digest::consts::U32;
use mcpg_license_core::UnixTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::files::{MAX_REVOCATION_LIST, MAX_STATE_FILE, read_bounded, read_text};

/// Format of the federation state files (2: bound to the credential by `mac`).
const FORMAT_VERSION: u32 = 2;
/// Format of the highest-time file.
const TIME_FORMAT_VERSION: u32 = 1;
/// Domain separation of the state MAC key from every other use of the credential.
const MAC_KEY_CONTEXT: &[u8] = b"mcpg-entitlements state MAC key v1\0";
/// The first bytes of every MAC input.
const MAC_INPUT_CONTEXT: &[u8] = b"mcpg-entitlements federation state v2\0";
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
    /// When that no was first heard (absent in files written before this field existed,
    /// and when there is no `revoked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<UnixTime>,
    /// When this was written (by the gateway's monotonic view of time).
    pub saved_at: UnixTime,
    /// This gateway's id: the `sub` of the first token the federation issued for the
    /// credential. Every later token, fresh or persisted, must carry it.
    pub gateway_id: Option<String>,
    /// Keyed BLAKE2b-256 (hex) of every field above under the [`StateKey`].
    pub mac: String,
}

/// The key that binds state files to one credential.
pub struct StateKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(…)")
    }
}

impl StateKey {
    /// The key of `credential`: SHA-256 of a context string and the credential, so it is
    /// neither the stored fingerprint nor usable for anything else.
    pub fn derive(credential: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(MAC_KEY_CONTEXT);
        hash.update(credential.as_bytes());
        Self(Zeroizing::new(hash.finalize().into()))
    }

    fn mac(&self, state: &PersistedFederation) -> Blake2bMac<U32> {
        // A 32-byte key is always a valid BLAKE2b key.
        let mut mac = <Blake2bMac<U32> as Mac>::new_from_slice(self.0.as_ref())
            .unwrap_or_else(|_| unreachable!("32-byte BLAKE2b key"));
        // Every field length-prefixed and every option tagged: no two records share an input.
        let mut field = |bytes: Option<&[u8]>| match bytes {
            None => Mac::update(&mut mac, &[0]),
            Some(bytes) => {
                Mac::update(&mut mac, &[1]);
                Mac::update(&mut mac, &(bytes.len() as u64).to_be_bytes());
                Mac::update(&mut mac, bytes);
            }
        };
        field(Some(MAC_INPUT_CONTEXT));
        field(Some(&state.version.to_be_bytes()));
        field(Some(state.credential_sha256.as_bytes()));
        field(state.token.as_deref().map(str::as_bytes));
        field(state.issuer_certificate.as_deref().map(str::as_bytes));
        field(state.revoked.as_deref().map(str::as_bytes));
        field(Some(&state.saved_at.to_be_bytes()));
        field(state.gateway_id.as_deref().map(str::as_bytes));
        // Only when present, so files written before the field existed still verify.
        if let Some(at) = state.decided_at {
            field(Some(b"decided_at"));
            field(Some(&at.to_be_bytes()));
        }
        mac
    }

    fn seal(&self, state: &mut PersistedFederation) {
        state.mac = hex::encode(self.mac(state).finalize().into_bytes());
    }

    fn verifies(&self, state: &PersistedFederation) -> bool {
        hex::decode(&state.mac).is_ok_and(|tag| self.mac(state).verify_slice(&tag).is_ok())
    }
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

    /// Reads the state of a credential; `Ok(None)` when there is none. A file that is not
    /// of this format, not for this credential or whose MAC does not verify under `key` is
    /// an error (the caller ignores it with a warning).
    pub fn load_federation(
        &self,
        fingerprint: &str,
        key: &StateKey,
    ) -> Result<Option<PersistedFederation>, StoreError> {
        let path = self.federation_path(fingerprint);
        let Some(value) = read_json::<serde_json::Value>(&path)? else {
            return Ok(None);
        };
        let corrupt = |message: &str| StoreError::Corrupt {
            path: path.clone(),
            message: message.to_owned(),
        };
        match value.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(1) => {
                return Err(corrupt(
                    "written by an earlier version without a MAC; federating again",
                ));
            }
            _ => return Err(corrupt("unknown format version")),
        }
        let state: PersistedFederation =
            serde_json::from_value(value).map_err(|e| corrupt(&e.to_string()))?;
        if state.credential_sha256 != fingerprint {
            return Err(corrupt("written for another credential"));
        }
        if !key.verifies(&state) {
            return Err(corrupt(
                "its MAC does not verify under this gateway's credential (copied or edited)",
            ));
        }
        Ok(Some(state))
    }

    /// Writes the state of a credential atomically.
    pub fn save_federation(&self, state: &PersistedFederation) -> Result<(), StoreError> {
        let path = self.federation_path(&state.credential_sha256);
        write_json(&self.dir, &path, state)
    }

    /// A new federation record (current format version), sealed under `key`; `revoked` is
    /// the service's no with the time it was first heard.
    pub fn record(
        key: &StateKey,
        fingerprint: &str,
        gateway_id: Option<&str>,
        token: Option<(&str, &str)>,
        revoked: Option<(&str, UnixTime)>,
        saved_at: UnixTime,
    ) -> PersistedFederation {
        let mut state = PersistedFederation {
            version: FORMAT_VERSION,
            credential_sha256: fingerprint.to_owned(),
            token: token.map(|(t, _)| t.to_owned()),
            issuer_certificate: token.map(|(_, c)| c.to_owned()),
            revoked: revoked.map(|(code, _)| code.to_owned()),
            decided_at: revoked.map(|(_, at)| at),
            saved_at,
            gateway_id: gateway_id.map(str::to_owned),
            mac: String::new(),
        };
        key.seal(&mut state);
        state
    }

    /// The highest time persisted so far, if any.
    pub fn load_max_seen(&self) -> Result<Option<UnixTime>, StoreError> {
        let path = self.dir.join(TIME_FILE);
        match read_json::<PersistedTime>(&path)? {
            Some(t) if t.version == TIME_FORMAT_VERSION => Ok(Some(t.max_seen_time)),
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
            version: TIME_FORMAT_VERSION,
            max_seen_time: at,
        };
        write_json(&self.dir, &self.dir.join(TIME_FILE), &record)
    }
}

impl StateStore {
    /// The revocation list kept from an earlier start, if any.
    pub fn load_revocations(&self) -> Result<Option<String>, StoreError> {
        let path = self.dir.join(REVOCATIONS_FILE);
        match read_text(&path, MAX_REVOCATION_LIST) {
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
    let bytes = match read_bounded(path, MAX_STATE_FILE) {
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

/// Writes `bytes` to `path` (in `dir`) atomically, mode 0600: what `usage export` writes
/// its bundle with.
pub fn write_file(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_bytes(dir, path, bytes)
}

/// The atomic write behind every state file.
pub(crate) fn write_bytes(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_before_decided_at_existed_still_loads_and_a_new_one_keeps_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = StateStore::open(dir.path()).expect("open");
        let key = StateKey::derive("mcpg_gw_test");
        let fingerprint = credential_fingerprint("mcpg_gw_test");
        // As the previous release wrote it: no `decided_at` in the file or under the MAC.
        let mut old = StateStore::record(&key, &fingerprint, None, None, None, 1_000);
        old.revoked = Some("license_revoked".into());
        key.seal(&mut old);
        store.save_federation(&old).expect("save");
        let text = fs::read_to_string(store.federation_path(&fingerprint)).expect("read");
        assert!(!text.contains("decided_at"), "{text}");
        let loaded = store.load_federation(&fingerprint, &key).expect("loads");
        assert_eq!(loaded.and_then(|r| r.decided_at), None);

        let new = StateStore::record(
            &key,
            &fingerprint,
            None,
            None,
            Some(("license_revoked", 900)),
            1_000,
        );
        store.save_federation(&new).expect("save");
        let loaded = store.load_federation(&fingerprint, &key).expect("loads");
        assert_eq!(loaded.and_then(|r| r.decided_at), Some(900));

        // The time is under the MAC: editing it breaks the file.
        let path = store.federation_path(&fingerprint);
        let text = fs::read_to_string(&path).expect("read");
        fs::write(&path, text.replace("900", "901")).expect("edit");
        assert!(store.load_federation(&fingerprint, &key).is_err());
    }
}
