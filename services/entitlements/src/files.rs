//! The size caps of the gateway's own files (configuration, credential, roots, offline
//! license, revocation list, state). They are read with `mcpg-runtime`'s capped,
//! regular-file-only reader: a path that is a FIFO, a device (`/dev/zero`), a directory or
//! a huge file is an error naming the path (the callers add it), never a hang or an
//! unbounded read.

pub(crate) use mcpg_runtime::files::{read_bounded, read_text};

/// The cap of configuration, keys, credentials and licenses: all far smaller.
pub(crate) const MAX_SMALL_FILE: u64 = 64 * 1024;
/// The cap of a revocation list (the same as a fetched one).
pub(crate) const MAX_REVOCATION_LIST: u64 = 1024 * 1024;
/// The cap of a state file (a token and its certificates).
pub(crate) const MAX_STATE_FILE: u64 = 256 * 1024;

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io;
    use std::path::Path;

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
