//! The offline usage ledger: one signed, hash-chained entry per UTC day in the state
//! directory (format in `mcpg_license_core::usage`).
//!
//! Files (all in the state directory):
//! - `usage-key.paserk`: the deployment's Ed25519 key (`k4.secret`), made on first start,
//!   mode 0600, created atomically (written whole to a temp file, then linked into place,
//!   which fails rather than replace a key another process made first);
//! - `usage-ledger.jsonl`: the closed days, one [`SignedEntry`] per line, only ever
//!   appended, each append fsynced before the day counts as recorded;
//! - `usage-current.json`: the open day (its counts so far), replaced atomically at every
//!   tick and at shutdown; never part of the chain;
//! - `usage-ledger.lock`: held (advisory lock) by the one process that records, so that a
//!   `status` next to `serve` never appends a day twice.
//!
//! A day is appended once it is over, at the first tick after midnight UTC (by the
//! gateway's never-backwards time), followed by an entry with `gateways_active` 0 for each
//! day the gateway did not run; so every day has an entry and a missing one means removed.
//! A crash after an append but before the open-day file moved on is harmless: an open day
//! not after the last entry is dropped at start. A crash mid-append leaves a torn last line,
//! cut off at start with a warning; its day is still in the open-day file and is appended
//! again. Any other line that does not verify stops the start with an error.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use mcpg_license_core::usage::{
    Day, DayEntry, ENTRY_VERSION, GENESIS_HASH, PluginCounts, SignedEntry,
};
use mcpg_license_core::{Catalog, PublicKey, SigningKey, UnixTime};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Taken;
use crate::files::read_bounded;

/// The deployment key file.
pub const KEY_FILE: &str = "usage-key.paserk";
/// The ledger file.
pub const LEDGER_FILE: &str = "usage-ledger.jsonl";
/// The open day's file.
pub const CURRENT_FILE: &str = "usage-current.json";
/// The lock file of the recording process.
pub const LOCK_FILE: &str = "usage-ledger.lock";
/// The largest ledger read (about 180 years of days with every plugin used).
const MAX_LEDGER_BYTES: u64 = 64 * 1024 * 1024;

/// A ledger failure.
#[derive(Debug, Error)]
pub enum LedgerError {
    /// Reading or writing failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A ledger line (not the torn last one) does not parse or does not verify.
    #[error(
        "usage ledger {path} line {line}: {message}; the ledger is not trustworthy, restore it from a backup"
    )]
    Corrupt {
        /// The ledger file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The deployment key file is not a key.
    #[error("deployment usage key {path}: {message}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LedgerError {
    let path = path.to_owned();
    move |source| LedgerError::Io {
        action,
        path,
        source,
    }
}

/// Who the entries are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The deployment id (the license's `bind`).
    pub deployment_id: String,
    /// The license's org.
    pub org: String,
    /// The license id.
    pub license_id: String,
}

/// Reads the deployment key, creating it when there is none (mode 0600, atomically).
pub fn load_or_create_key(dir: &Path) -> Result<SigningKey, LedgerError> {
    let path = dir.join(KEY_FILE);
    if let Some(key) = read_key(dir)? {
        return Ok(key);
    }
    let key = SigningKey::generate().map_err(|e| LedgerError::Key {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let temp = dir.join(format!(
        ".{KEY_FILE}.{}.{:016x}.tmp",
        std::process::id(),
        fastrand::u64(..)
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(io_error("creating", &temp))?;
        file.write_all(key.to_paserk().as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(io_error("writing", &temp))?;
        // A link fails when the name exists: a key made meanwhile by another process wins.
        match fs::hard_link(&temp, &path) {
            Ok(()) => sync_dir(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io_error("creating", &path)(e)),
        }
    })();
    let _ = fs::remove_file(&temp);
    written?;
    match read_key(dir)? {
        Some(key) => {
            tracing::info!(path = %path.display(), kid = %key.kid(), "made this deployment's usage signing key");
            Ok(key)
        }
        None => Err(LedgerError::Key {
            path,
            message: "vanished right after it was made".into(),
        }),
    }
}

/// Reads the deployment key, if there is one.
pub fn read_key(dir: &Path) -> Result<Option<SigningKey>, LedgerError> {
    let path = dir.join(KEY_FILE);
    let text = match read_bounded(&path, 4096) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("reading", &path)(e)),
    };
    let text = String::from_utf8(text).map_err(|_| LedgerError::Key {
        path: path.clone(),
        message: "not text".into(),
    })?;
    SigningKey::from_paserk(text.trim())
        .map(Some)
        .map_err(|e| LedgerError::Key {
            path,
            message: e.to_string(),
        })
}

fn sync_dir(dir: &Path) -> Result<(), LedgerError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("syncing directory", dir))
}

/// The ledger's entries, every one verified: hash, signature with `key`, seq from 1
/// without gaps, each naming its predecessor's hash, days strictly increasing. A last line
/// without its newline, or one that is not JSON, is a torn append: left out with a warning,
/// and cut off the file when `repair` is set.
pub fn read_entries(
    dir: &Path,
    key: &PublicKey,
    repair: bool,
) -> Result<Vec<SignedEntry>, LedgerError> {
    let path = dir.join(LEDGER_FILE);
    let bytes = match read_bounded(&path, MAX_LEDGER_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("reading", &path)(e)),
    };
    let mut lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
    let torn = match lines.last() {
        Some(last) if !last.ends_with(b"\n") => true,
        Some(last) => serde_json::from_slice::<serde_json::Value>(last).is_err(),
        None => false,
    };
    if torn {
        let cut = lines.pop().map_or(0, <[u8]>::len);
        let keep = (bytes.len() - cut) as u64;
        tracing::warn!(path = %path.display(), bytes = cut, "the last line of the usage ledger is torn (a crash during an append); it is left out and its day is appended again from the open-day file");
        if repair {
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(keep).and_then(|()| f.sync_all()))
                .map_err(io_error("cutting the torn line off", &path))?;
        }
    }
    let mut entries: Vec<SignedEntry> = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let corrupt = |message: String| LedgerError::Corrupt {
            path: path.clone(),
            line: index + 1,
            message,
        };
        let signed: SignedEntry = serde_json::from_slice(line)
            .map_err(|e| corrupt(format!("not a ledger entry: {e}")))?;
        signed
            .entry
            .validate()
            .map_err(|e| corrupt(e.to_string()))?;
        if !signed.hash_matches() {
            return Err(corrupt(
                "its content does not match its hash (edited)".into(),
            ));
        }
        if !signed.signature_verifies(key) {
            return Err(corrupt(
                "its signature does not verify with this deployment's key".into(),
            ));
        }
        let expected_prev = entries.last().map_or(GENESIS_HASH, |p| p.hash.as_str());
        if signed.entry.seq != index as u64 + 1 || signed.entry.prev_hash != expected_prev {
            return Err(corrupt(format!(
                "seq {} does not follow the previous line",
                signed.entry.seq
            )));
        }
        if let Some(prev) = entries.last()
            && Day::parse(&signed.entry.day) <= Day::parse(&prev.entry.day)
        {
            return Err(corrupt(format!(
                "day {} is not after {}",
                signed.entry.day, prev.entry.day
            )));
        }
        entries.push(signed);
    }
    Ok(entries)
}

/// The open day as kept in `usage-current.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenDay {
    version: u32,
    day: String,
    /// Whether the gateway ran that day.
    active: bool,
    plugins: BTreeMap<String, PluginCounts>,
}

/// The recording side of the ledger (one process at a time).
pub(crate) struct Ledger {
    dir: PathBuf,
    key: SigningKey,
    identity: Identity,
    /// seq, hash and day of the last entry.
    last: Option<(u64, String, Day)>,
    open_day: Day,
    open_active: bool,
    open_plugins: BTreeMap<String, PluginCounts>,
    taken: Taken,
    /// Held while the ledger is open: the advisory lock of [`LOCK_FILE`].
    _lock: File,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("dir", &self.dir)
            .field("open_day", &self.open_day)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// Opens the ledger for recording at `now`: takes the lock (`Ok(None)` when another
    /// process records), reads and verifies the entries, restores the open day and appends
    /// the days that ended while the gateway was not running.
    pub(crate) fn open(
        dir: &Path,
        identity: Identity,
        now: UnixTime,
    ) -> Result<Option<Self>, LedgerError> {
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_error("opening", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(io_error("locking", &lock_path)(e)),
        }
        let key = load_or_create_key(dir)?;
        let entries = read_entries(dir, key.public_key(), true)?;
        let last = entries
            .last()
            .and_then(|e| Day::parse(&e.entry.day).map(|day| (e.entry.seq, e.hash.clone(), day)));
        let today = Day::of(now);
        let after_last = last.as_ref().map(|(_, _, d)| d.next());
        let restored = read_open_day(dir).filter(|open| {
            let day = Day::parse(&open.day);
            // A day at or before the last entry was appended already.
            day.is_some() && after_last.is_none_or(|first| day >= Some(first))
        });
        let (open_day, open_active, open_plugins) = match restored {
            Some(open) => (
                Day::parse(&open.day).unwrap_or(today),
                open.active,
                open.plugins,
            ),
            None => (
                after_last.map_or(today, |d| d.max(today)),
                true,
                BTreeMap::new(),
            ),
        };
        let mut ledger = Ledger {
            dir: dir.to_owned(),
            key,
            identity,
            last,
            open_day,
            open_active,
            open_plugins,
            taken: Taken::default(),
            _lock: lock,
        };
        ledger.roll(now)?;
        Ok(Some(ledger))
    }

    /// The deployment's public key.
    pub(crate) fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// The open day.
    pub(crate) fn open_day(&self) -> Day {
        self.open_day
    }

    /// The last entry's seq and day.
    pub(crate) fn last(&self) -> Option<(u64, Day)> {
        self.last.as_ref().map(|(seq, _, day)| (*seq, *day))
    }

    /// Adds what `totals` (the gateway's check counters) holds beyond what was taken to the
    /// open day.
    pub(crate) fn record(&mut self, catalog: &Catalog, totals: &[PluginCounts]) {
        let (named, used) = super::named(catalog, &self.taken.pending(totals));
        for (name, counts) in named {
            self.open_plugins.entry(name).or_default().add(counts);
        }
        self.taken.take(&used);
        self.open_active = true;
    }

    /// Appends every day that ended before `now`'s day (the open one, then one inactive
    /// entry per day without the gateway) and opens `now`'s day. Never goes back: a `now`
    /// before the open day keeps the open day.
    pub(crate) fn roll(&mut self, now: UnixTime) -> Result<(), LedgerError> {
        let today = Day::of(now).max(self.open_day);
        // Days between the last entry and the open day (the gateway was not running).
        while let Some(next) = self.last.as_ref().map(|(_, _, d)| d.next())
            && next < self.open_day
        {
            self.append(next, false, BTreeMap::new())?;
        }
        if self.open_day < today {
            let plugins = std::mem::take(&mut self.open_plugins);
            if let Err(e) = self.append(self.open_day, self.open_active, plugins.clone()) {
                self.open_plugins = plugins;
                return Err(e);
            }
            while let Some(next) = self.last.as_ref().map(|(_, _, d)| d.next())
                && next < today
            {
                self.append(next, false, BTreeMap::new())?;
            }
            self.open_day = today;
            self.open_active = true;
        }
        self.save_open_day()
    }

    /// Writes the open day (atomically): at every tick and at shutdown.
    pub(crate) fn save_open_day(&self) -> Result<(), LedgerError> {
        let open = OpenDay {
            version: 1,
            day: self.open_day.to_string(),
            active: self.open_active,
            plugins: self.open_plugins.clone(),
        };
        let path = self.dir.join(CURRENT_FILE);
        let bytes = serde_json::to_vec_pretty(&open).unwrap_or_default();
        crate::store::write_bytes(&self.dir, &path, &bytes).map_err(|e| LedgerError::Io {
            action: "writing",
            path,
            source: io::Error::other(e.to_string()),
        })
    }

    /// Appends `day` (the next in the chain) and fsyncs it. On a failed write the file is
    /// cut back to where it was, so a later append does not follow a partial line.
    fn append(
        &mut self,
        day: Day,
        active: bool,
        plugins: BTreeMap<String, PluginCounts>,
    ) -> Result<(), LedgerError> {
        let (seq, prev_hash) = match &self.last {
            Some((seq, hash, _)) => (seq + 1, hash.clone()),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let signed = DayEntry {
            v: ENTRY_VERSION,
            seq,
            day: day.to_string(),
            deployment_id: self.identity.deployment_id.clone(),
            org: self.identity.org.clone(),
            license_id: self.identity.license_id.clone(),
            gateways_active: u32::from(active),
            tokens: 0,
            peak_gateways: u32::from(active),
            plugins,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            prev_hash,
        }
        .sign(&self.key);
        let path = self.dir.join(LEDGER_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .open(&path)
            .map_err(io_error("opening", &path))?;
        let before = file
            .metadata()
            .map_err(io_error("reading the size of", &path))?
            .len();
        let mut line = signed.to_line();
        line.push('\n');
        if let Err(e) = file
            .write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
        {
            let _ = file.set_len(before).and_then(|()| file.sync_all());
            return Err(io_error("appending to", &path)(e));
        }
        if before == 0 {
            sync_dir(&self.dir)?;
        }
        tracing::info!(day = %day, seq, active, "usage day recorded in the ledger");
        self.last = Some((seq, signed.hash, day));
        Ok(())
    }
}

fn read_open_day(dir: &Path) -> Option<OpenDay> {
    let path = dir.join(CURRENT_FILE);
    let bytes = match read_bounded(&path, 1024 * 1024) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the open usage day; starting a new one");
            return None;
        }
    };
    match serde_json::from_slice::<OpenDay>(&bytes) {
        Ok(open) if open.version == 1 => Some(open),
        Ok(_) | Err(_) => {
            tracing::warn!(path = %path.display(), "the open usage day file is not valid; starting a new one");
            None
        }
    }
}
