//! Reading the gateway's own files (configuration, credential, roots, offline license,
//! revocation list, state) with a size cap and only when they are regular files: a path
//! that is a FIFO, a device (`/dev/zero`), a directory or a huge file is an error naming
//! the path, never a hang or an unbounded read.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

/// The cap of configuration, keys, credentials and licenses: all far smaller.
pub(crate) const MAX_SMALL_FILE: u64 = 64 * 1024;
/// The cap of a revocation list (the same as a fetched one).
pub(crate) const MAX_REVOCATION_LIST: u64 = 1024 * 1024;
/// The cap of a state file (a token and its certificates).
pub(crate) const MAX_STATE_FILE: u64 = 256 * 1024;

/// Reads at most `max` bytes of the regular file at `path` (symlinks followed). Missing
/// files keep `NotFound`; anything else that is not a regular file, or is larger than
/// `max`, is `InvalidData` with the reason.
pub(crate) fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    // Checked before opening, since opening a FIFO waits for a writer; checked again on the
    // open file in case the path was swapped in between.
    check_regular(&fs::metadata(path)?)?;
    let file = File::open(path)?;
    let meta = file.metadata()?;
    check_regular(&meta)?;
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        )
    };
    if meta.len() > max {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub(crate) fn read_text(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_bounded(path, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn check_regular(meta: &fs::Metadata) -> io::Result<()> {
    match meta.is_file() {
        true => Ok(()),
        false => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file (a directory, FIFO, socket or device)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_regular_files_are_read() {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path();
        let small = dir.join("small");
        fs::write(&small, b"hello").expect("write");
        assert_eq!(read_text(&small, 5).expect("read"), "hello");
        let error = read_text(&small, 4).expect_err("too large");
        assert!(error.to_string().contains("larger than 4 bytes"), "{error}");
        assert!(read_bounded(dir, 5).is_err(), "a directory");
        let missing = read_bounded(&dir.join("missing"), 5).expect_err("missing");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let zero = read_bounded(Path::new("/dev/zero"), 5).expect_err("a device");
        assert!(zero.to_string().contains("not a regular file"), "{zero}");
    }
}
