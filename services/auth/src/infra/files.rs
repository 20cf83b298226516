//! Reading the service's own files (config, KEK, signing key and passphrase, certificates,
//! trusted roots) with a size cap and only when they are regular files: a path that is a
//! FIFO, a device (`/dev/zero`), a directory or a huge file is an error naming the path (the
//! callers add it), never a hang or an unbounded read.

pub(crate) use mcpg_runtime::files::read_text;

/// The cap of keys, passphrases, certificates and roots: all far smaller.
pub(crate) const MAX_KEY_FILE: u64 = 64 * 1024;
/// The cap of the configuration file.
pub(crate) const MAX_CONFIG_FILE: u64 = 1024 * 1024;
