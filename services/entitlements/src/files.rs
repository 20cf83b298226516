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

// The reader's own tests (size cap, directory, missing file, /dev/zero, FIFO, UTF-8) are
// in mcpg-runtime.
