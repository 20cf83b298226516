//! Reading a service's own files (configuration, keys, credentials, licenses, state) with a
//! size cap and only when they are regular files: a path that is a FIFO, a device
//! (`/dev/zero`), a directory or a huge file is an error, never a hang or an unbounded
//! read. The errors do not name the path: callers add it, with what the file was for.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

/// Reads at most `max` bytes of the regular file at `path` (symlinks followed). Missing
/// files keep `NotFound`; anything else that is not a regular file, or is larger than
/// `max`, is `InvalidData` with the reason.
///
/// The buffer is sized once from the file's length, so a secret read through it is not
/// left behind in a reallocated (and unzeroed) buffer.
pub fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
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
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0) + 1);
    // One byte past the cap tells a file that grew after the check from one that did not.
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_text(path: &Path, max: u64) -> io::Result<String> {
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
        let directory = read_bounded(dir, 5).expect_err("a directory");
        assert!(
            directory.to_string().contains("not a regular file"),
            "{directory}"
        );
        let missing = read_bounded(&dir.join("missing"), 5).expect_err("missing");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let zero = read_bounded(Path::new("/dev/zero"), 5).expect_err("a device");
        assert!(zero.to_string().contains("not a regular file"), "{zero}");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let temp = tempfile::tempdir().expect("temp dir");
        let fifo = temp.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo failed");
        // Opening the FIFO would block this test forever; the check refuses it first.
        let error = read_text(&fifo, 64).expect_err("a FIFO");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }

    #[test]
    fn text_must_be_utf8() {
        let temp = tempfile::tempdir().expect("temp dir");
        let binary = temp.path().join("binary");
        fs::write(&binary, [0xff, 0xfe]).expect("write");
        assert_eq!(read_bounded(&binary, 2).expect("bytes"), vec![0xff, 0xfe]);
        let error = read_text(&binary, 2).expect_err("not text");
        assert!(error.to_string().contains("not UTF-8"), "{error}");
    }
}
