//! File handling shared by the CLIs: reading keys, tokens and certificates with the path
//! in every error, and writing new files — secrets with mode 0600 — without clobbering.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use mcpg_license_core::{KeyError, PublicKey, SigningKey};
use thiserror::Error;

/// The largest file read: keys, licenses and certificates are all far smaller, and a cap
/// keeps a mistaken path (a disk image, `/dev/zero`) from being read into memory.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Mode of secret key files.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of public files (public keys, JWKs, licenses, certificates).
pub const PUBLIC_MODE: u32 = 0o644;

/// Why a file could not be read or written.
#[derive(Debug, Error)]
pub enum FileError {
    /// The file could not be opened or read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The path is a directory, FIFO, socket or device.
    #[error("{} is not a regular file (a directory, FIFO, socket or device)", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{} is larger than {MAX_FILE_BYTES} bytes: not a key, license or certificate", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not UTF-8 text or is empty.
    #[error("{} is empty or not text", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// The file does not hold a key of the expected kind.
    #[error("{}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why the key was refused.
        source: KeyError,
    },
    /// The target exists and overwriting was not asked for.
    #[error("{} already exists; refusing to overwrite it ({hint})", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
        /// What to do instead.
        hint: &'static str,
    },
    /// The file could not be created or written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Reads a small UTF-8 text file.
pub fn read_text(path: &Path) -> Result<String, FileError> {
    let read_err = |source| FileError::Read {
        path: path.to_owned(),
        source,
    };
    // Only regular files: opening a FIFO waits for a writer, and a device never ends. Checked
    // before opening and again on the open file, in case the path was swapped in between.
    let not_regular = || FileError::NotRegular {
        path: path.to_owned(),
    };
    if !fs::metadata(path).map_err(read_err)?.is_file() {
        return Err(not_regular());
    }
    let file = File::open(path).map_err(read_err)?;
    if !file.metadata().map_err(read_err)?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::TooLarge {
            path: path.to_owned(),
        });
    }
    match String::from_utf8(bytes) {
        Ok(text) if !text.trim().is_empty() => Ok(text),
        _ => Err(FileError::NotText {
            path: path.to_owned(),
        }),
    }
}

/// Reads a token (license, certificate, JWT): the file's text without surrounding
/// whitespace.
pub fn read_token(path: &Path) -> Result<String, FileError> {
    Ok(read_text(path)?.trim().to_owned())
}

/// Reads a secret key (`k4.secret` PASERK or PKCS#8 PEM).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, FileError> {
    let text = read_text(path)?;
    SigningKey::parse_any(&text).map_err(|source| FileError::Key {
        path: path.to_owned(),
        source,
    })
}

/// Reads a public key (`k4.public` PASERK, SPKI PEM or OKP JWK).
pub fn read_public_key(path: &Path) -> Result<PublicKey, FileError> {
    let text = read_text(path)?;
    PublicKey::parse_any(&text).map_err(|source| FileError::Key {
        path: path.to_owned(),
        source,
    })
}

/// The file's permission bits when group or others may access it (a secret key should
/// be 0600), `None` when it is private or cannot be inspected.
pub fn loose_permissions(path: &Path) -> Option<u32> {
    let mode = fs::metadata(path).ok()?.mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Fails with [`FileError::Exists`] for the first of `paths` that exists, so that a
/// command writing several files can refuse before writing any of them.
pub fn ensure_absent<'a>(
    paths: impl IntoIterator<Item = &'a Path>,
    hint: &'static str,
) -> Result<(), FileError> {
    for path in paths {
        // symlink_metadata: a dangling symlink also counts as "exists".
        if fs::symlink_metadata(path).is_ok() {
            return Err(FileError::Exists {
                path: path.to_owned(),
                hint,
            });
        }
    }
    Ok(())
}

/// Creates `dir` (and its parents) with mode 0700 when it does not exist.
pub fn create_private_dir(dir: &Path) -> Result<(), FileError> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| FileError::Write {
            path: dir.to_owned(),
            source,
        })
}

/// Creates a new file with `mode` and writes `contents`; fails if the file exists
/// (`create_new`, so there is no window where another file could be clobbered).
pub fn write_new(
    path: &Path,
    contents: &[u8],
    mode: u32,
    hint: &'static str,
) -> Result<(), FileError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => FileError::Exists {
                path: path.to_owned(),
                hint,
            },
            _ => FileError::Write {
                path: path.to_owned(),
                source,
            },
        })?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(source) = written {
        // Leave no truncated key or license behind.
        let _ = fs::remove_file(path);
        return Err(FileError::Write {
            path: path.to_owned(),
            source,
        });
    }
    Ok(())
}

/// Writes a secret (mode 0600, never overwriting).
pub fn write_secret(path: &Path, contents: &[u8], hint: &'static str) -> Result<(), FileError> {
    write_new(path, contents, SECRET_MODE, hint)
}

/// What to do when an output file exists.
const FORCE_HINT: &str = "pass --force to replace it";

/// Refuses early — before keys are read or anything is signed — when an output file
/// exists and `--force` was not given.
pub fn check_output(path: &Path, force: bool) -> Result<(), FileError> {
    if force {
        return Ok(());
    }
    ensure_absent([path], FORCE_HINT)
}

/// Writes a token (license, certificate) as one line, readable by all (it is public).
pub fn write_token(path: &Path, token: &str, force: bool) -> Result<(), FileError> {
    write_output(path, format!("{token}\n").as_bytes(), PUBLIC_MODE, force)
}

/// Writes `contents` to `path` with `mode`: a new file, or — when `overwrite` — an
/// atomic replacement (temporary file in the same directory, then rename), so readers
/// never see a half-written license.
pub fn write_output(
    path: &Path,
    contents: &[u8],
    mode: u32,
    overwrite: bool,
) -> Result<(), FileError> {
    if !overwrite {
        return write_new(path, contents, mode, FORCE_HINT);
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(name);
    let _ = fs::remove_file(&tmp);
    write_new(&tmp, contents, mode, FORCE_HINT)?;
    fs::rename(&tmp, path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        FileError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn secrets_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.secret.paserk");
        write_secret(&path, b"one", "hint").expect("first write");
        let mode = fs::metadata(&path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            write_secret(&path, b"two", "hint"),
            Err(FileError::Exists { .. })
        ));
        assert_eq!(fs::read(&path).expect("readable"), b"one");
    }

    #[test]
    fn forced_output_replaces_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.license");
        write_output(&path, b"old", PUBLIC_MODE, false).expect("first write");
        assert!(write_output(&path, b"new", PUBLIC_MODE, false).is_err());
        write_output(&path, b"new", PUBLIC_MODE, true).expect("forced write");
        assert_eq!(fs::read(&path).expect("readable"), b"new");
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 1);
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_without_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        for path in [Path::new("/dev/zero"), fifo.as_path(), dir.path()] {
            assert!(
                matches!(read_text(path), Err(FileError::NotRegular { .. })),
                "{} refused",
                path.display()
            );
        }
    }

    #[test]
    fn oversized_and_binary_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big");
        fs::write(&big, vec![b'a'; MAX_FILE_BYTES as usize + 1]).expect("write");
        assert!(matches!(read_text(&big), Err(FileError::TooLarge { .. })));
        let binary = dir.path().join("bin");
        fs::write(&binary, [0xff, 0xfe, 0x00]).expect("write");
        assert!(matches!(read_text(&binary), Err(FileError::NotText { .. })));
    }
}
