//! Reading the service's own files (config, KEK, signing key and passphrase, certificates,
//! trusted roots) with a size cap and only when they are regular files: a path that is a
//! FIFO, a device (`/dev/zero`), a directory or a huge file is an error naming the path (the
//! callers add it), never a hang or an unbounded read.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

/// The cap of keys, passphrases, certificates and roots: all far smaller.
pub(crate) const MAX_KEY_FILE: u64 = 64 * 1024;
/// The cap of the configuration file.
pub(crate) const MAX_CONFIG_FILE: u64 = 1024 * 1024;

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
    // Sized once, so that a secret is not left behind in a reallocated buffer.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0) + 1);
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
