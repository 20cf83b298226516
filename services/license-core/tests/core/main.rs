//! Integration tests of mcpg-license-core: codecs, the trust chain, interoperability with
//! independent JOSE and PASETO implementations, and the published test vectors.

mod chain;
mod fixtures;
mod interop;
mod jwt;
mod offline;
mod usage_vector;
mod vectors;
