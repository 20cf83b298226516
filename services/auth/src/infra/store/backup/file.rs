//! Files of backups and restores: telling the two formats apart, and writing a file whole or
//! not at all (a private temporary file next to the destination, fsynced, renamed, and the
//! directory fsynced).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::BackupError;

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What a backup file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An SQLite database (an SQLite backup).
    Sqlite,
    /// JSON lines (a PostgreSQL backup).
    JsonLines,
}

/// Tells an SQLite backup from a PostgreSQL one by its first bytes.
pub(super) fn sniff(path: &Path) -> Result<Kind, BackupError> {
    let mut file = File::open(path).map_err(BackupError::io("read", path))?;
    if !file
        .metadata()
        .map_err(BackupError::io("read", path))?
        .is_file()
    {
        return Err(BackupError::not_a_backup(path, "it is not a regular file"));
    }
    let mut start = [0u8; 16];
    let mut read = 0;
    while read < start.len() {
        match file.read(&mut start[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BackupError::io("read", path)(e)),
        }
    }
    if read == start.len() && &start == SQLITE_MAGIC {
        Ok(Kind::Sqlite)
    } else if start[..read].starts_with(b"{\"header\"") {
        Ok(Kind::JsonLines)
    } else if read == 0 {
        Err(BackupError::not_a_backup(path, "the file is empty"))
    } else {
        Err(BackupError::not_a_backup(
            path,
            "it is neither an SQLite database nor an mcpg-auth PostgreSQL backup",
        ))
    }
}

/// A private (0600) temporary file next to its destination, moved there by
/// [`Staged::commit`] and removed if dropped before.
pub(super) struct Staged {
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Staged {
    /// Creates the temporary file for `dest` (empty, 0600).
    pub(super) fn create(dest: &Path) -> Result<(Self, File), BackupError> {
        let name = dest
            .file_name()
            .ok_or_else(|| BackupError::Refused(format!("{} names no file", dest.display())))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tmp-{}", std::process::id()));
        let temp = dest.with_file_name(temp_name);
        let _ = std::fs::remove_file(&temp);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(BackupError::io("create", &temp))?;
        let staged = Self {
            temp,
            dest: dest.to_owned(),
            committed: false,
        };
        Ok((staged, file))
    }

    /// The temporary file's path.
    pub(super) fn path(&self) -> &Path {
        &self.temp
    }

    /// Flushes the temporary file to disk and renames it over the destination.
    pub(super) fn commit(mut self) -> Result<u64, BackupError> {
        let file = File::open(&self.temp).map_err(BackupError::io("open", &self.temp))?;
        file.sync_all()
            .map_err(BackupError::io("sync", &self.temp))?;
        let bytes = file
            .metadata()
            .map_err(BackupError::io("read", &self.temp))?
            .len();
        std::fs::rename(&self.temp, &self.dest).map_err(BackupError::io("rename", &self.dest))?;
        self.committed = true;
        sync_dir(&self.dest);
        Ok(bytes)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            // SQLite may have opened it (to check it) and left a journal beside it.
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut path = self.temp.as_os_str().to_owned();
                path.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(path));
            }
        }
    }
}

/// Makes a rename in `path`'s directory durable (best effort: some file systems refuse).
pub(super) fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
}
