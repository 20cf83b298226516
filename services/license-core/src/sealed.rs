//! Keys sealed under a passphrase: PASERK password-based key wrapping (PBKW) for version 4,
//! `k4.secret-pw` for signing keys and `k4.local-pw` for 32-byte secrets (the shares of a
//! split root).
//!
//! The construction is the PASERK one, so any PASERK implementation opens our files and we
//! open theirs: Argon2id stretches the passphrase into a pre-key (salt, memory, time and
//! parallelism are stored in the file); BLAKE2b derives an encryption key and a MAC key from
//! it; XChaCha20 encrypts the key; a keyed BLAKE2b tag covers the header, the Argon2
//! parameters, the nonce and the ciphertext. A wrong passphrase and an altered file fail the
//! same tag check, so the error never says which of the two it was.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use blake2::digest::consts::U32;
use blake2::digest::{Digest, Mac};
use blake2::{Blake2b, Blake2bMac};
use chacha20::XChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::keys::SigningKey;

/// Header of a sealed Ed25519 secret key.
pub const SECRET_PW_HEADER: &str = "k4.secret-pw.";
/// Header of a sealed 32-byte secret.
pub const LOCAL_PW_HEADER: &str = "k4.local-pw.";

const SALT: usize = 16;
const NONCE: usize = 24;
const TAG: usize = 32;
/// salt, memory (u64), time (u32), parallelism (u32), nonce
const PREFIX: usize = SALT + 8 + 4 + 4 + NONCE;

/// The Argon2id cost of a seal. Stored in the sealed file, so opening needs no setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Cost {
    /// Memory in bytes (a multiple of 1 KiB).
    pub memory_bytes: u64,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes. libsodium, and so most PASERK implementations, support only 1.
    pub parallelism: u32,
}

impl Argon2Cost {
    /// The default for keys at rest: 256 MiB, 3 passes (libsodium's "moderate", the
    /// second PASERK test vector), about a second on a laptop.
    pub const DEFAULT: Self = Self {
        memory_bytes: 256 * MIB,
        iterations: 3,
        parallelism: 1,
    };
    /// The least memory a seal may be made with: below it, guessing is cheap on a GPU.
    pub const MIN_MEMORY: u64 = 8 * MIB;
    /// The most memory a seal may use, made here or opened: a sealed file is input, and
    /// one that asks for a terabyte must be refused, not obeyed.
    pub const MAX_MEMORY: u64 = 1024 * MIB;
    /// The most passes a seal may use.
    pub const MAX_ITERATIONS: u32 = 16;

    /// A cost of `memory_mib` MiB and `iterations` passes, one lane.
    pub fn new(memory_mib: u64, iterations: u32) -> Result<Self, SealError> {
        let cost = Self {
            memory_bytes: memory_mib.saturating_mul(MIB),
            iterations,
            parallelism: 1,
        };
        cost.check(Self::MIN_MEMORY)?;
        Ok(cost)
    }

    fn check(&self, min_memory: u64) -> Result<(), SealError> {
        let fits = (min_memory..=Self::MAX_MEMORY).contains(&self.memory_bytes)
            && self.memory_bytes.is_multiple_of(1024)
            && (1..=Self::MAX_ITERATIONS).contains(&self.iterations)
            && (1..=16).contains(&self.parallelism);
        if fits {
            Ok(())
        } else {
            Err(SealError::Cost {
                memory_mib: self.memory_bytes / MIB,
                iterations: self.iterations,
                parallelism: self.parallelism,
            })
        }
    }
}

const MIB: u64 = 1024 * 1024;

/// Why a key could not be sealed or opened.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SealError {
    /// Not a sealed key of the expected kind, bad base64, or truncated.
    #[error("not a {expected} sealed key (wrong prefix, bad base64 or truncated)")]
    Malformed {
        /// The expected header, without its dot.
        expected: &'static str,
    },
    /// The passphrase is wrong or the sealed file was altered; deliberately not told apart.
    #[error("the passphrase is wrong or the sealed key was altered")]
    Unsealing,
    /// Argon2 parameters outside what we make or accept.
    #[error(
        "Argon2id cost out of bounds ({memory_mib} MiB, {iterations} passes, {parallelism} lanes; allowed 8-1024 MiB, 1-16 passes, 1-16 lanes)"
    )]
    Cost {
        /// Memory in MiB.
        memory_mib: u64,
        /// Passes.
        iterations: u32,
        /// Lanes.
        parallelism: u32,
    },
    /// An empty passphrase.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// The opened bytes are not a consistent Ed25519 key pair.
    #[error("the sealed key opens to an inconsistent key pair")]
    Inconsistent,
    /// The memory Argon2id needs could not be allocated.
    #[error("cannot allocate {memory_mib} MiB for Argon2id")]
    Memory {
        /// Memory in MiB.
        memory_mib: u64,
    },
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Checks, without a passphrase, that `text` is a well-formed `k4.secret-pw` whose cost is
/// within bounds, so that nobody types a passphrase for a file that cannot open.
pub fn check_sealed_secret(text: &str) -> Result<Argon2Cost, SealError> {
    parse(SECRET_PW_HEADER, text.trim(), 64).map(|sealed| sealed.cost)
}

/// [`check_sealed_secret`] for a `k4.local-pw`.
pub fn check_sealed_local(text: &str) -> Result<Argon2Cost, SealError> {
    parse(LOCAL_PW_HEADER, text.trim(), 32).map(|sealed| sealed.cost)
}

/// Whether `text` is a sealed signing key (`k4.secret-pw.…`).
pub fn is_sealed_secret(text: &str) -> bool {
    text.trim_start().starts_with(SECRET_PW_HEADER)
}

/// Seals `key` under `passphrase` as a `k4.secret-pw` PASERK.
pub fn seal_secret(
    key: &SigningKey,
    passphrase: &[u8],
    cost: Argon2Cost,
) -> Result<String, SealError> {
    wrap(SECRET_PW_HEADER, &key.keypair_bytes()[..], passphrase, cost)
}

/// Opens a `k4.secret-pw` PASERK with `passphrase`.
pub fn open_secret(text: &str, passphrase: &[u8]) -> Result<SigningKey, SealError> {
    let plain = unwrap(SECRET_PW_HEADER, text.trim(), passphrase, 64)?;
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&plain[..32]);
    let key = SigningKey::from_seed(&seed);
    if key.public_key().as_bytes()[..] != plain[32..] {
        return Err(SealError::Inconsistent);
    }
    Ok(key)
}

/// Seals 32 secret bytes under `passphrase` as a `k4.local-pw` PASERK.
pub fn seal_local(
    secret: &[u8; 32],
    passphrase: &[u8],
    cost: Argon2Cost,
) -> Result<String, SealError> {
    wrap(LOCAL_PW_HEADER, secret, passphrase, cost)
}

/// Opens a `k4.local-pw` PASERK with `passphrase`.
pub fn open_local(text: &str, passphrase: &[u8]) -> Result<Zeroizing<[u8; 32]>, SealError> {
    let plain = unwrap(LOCAL_PW_HEADER, text.trim(), passphrase, 32)?;
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&plain);
    Ok(out)
}

fn wrap(
    header: &str,
    plaintext: &[u8],
    passphrase: &[u8],
    cost: Argon2Cost,
) -> Result<String, SealError> {
    if passphrase.is_empty() {
        return Err(SealError::EmptyPassphrase);
    }
    cost.check(Argon2Cost::MIN_MEMORY)?;
    let mut salt = [0u8; SALT];
    let mut nonce = [0u8; NONCE];
    getrandom::getrandom(&mut salt).map_err(|_| SealError::Random)?;
    getrandom::getrandom(&mut nonce).map_err(|_| SealError::Random)?;
    let keys = derive(passphrase, &salt, cost)?;
    let mut body = Vec::with_capacity(PREFIX + plaintext.len() + TAG);
    body.extend_from_slice(&salt);
    body.extend_from_slice(&cost.memory_bytes.to_be_bytes());
    body.extend_from_slice(&cost.iterations.to_be_bytes());
    body.extend_from_slice(&cost.parallelism.to_be_bytes());
    body.extend_from_slice(&nonce);
    let start = body.len();
    body.extend_from_slice(plaintext);
    XChaCha20::new(keys.encryption.as_ref().into(), (&nonce).into())
        .apply_keystream(&mut body[start..]);
    let tag = keys.mac(header, &body).finalize().into_bytes();
    body.extend_from_slice(&tag);
    Ok(format!("{header}{}", URL_SAFE_NO_PAD.encode(&body)))
}

/// A sealed key's fields, checked for shape and cost but not opened.
struct Parsed {
    body: Vec<u8>,
    cost: Argon2Cost,
}

fn parse(header: &'static str, text: &str, plain_len: usize) -> Result<Parsed, SealError> {
    let malformed = || SealError::Malformed {
        expected: header.trim_end_matches('.'),
    };
    let encoded = text.strip_prefix(header).ok_or_else(malformed)?;
    let body = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| malformed())?;
    if body.len() != PREFIX + plain_len + TAG {
        return Err(malformed());
    }
    let mut memory = [0u8; 8];
    let mut iterations = [0u8; 4];
    let mut parallelism = [0u8; 4];
    memory.copy_from_slice(&body[SALT..SALT + 8]);
    iterations.copy_from_slice(&body[SALT + 8..SALT + 12]);
    parallelism.copy_from_slice(&body[SALT + 12..SALT + 16]);
    let cost = Argon2Cost {
        memory_bytes: u64::from_be_bytes(memory),
        iterations: u32::from_be_bytes(iterations),
        parallelism: u32::from_be_bytes(parallelism),
    };
    // Files made elsewhere may use less memory than we seal with, never absurd amounts.
    cost.check(MIB)?;
    Ok(Parsed { body, cost })
}

fn unwrap(
    header: &'static str,
    text: &str,
    passphrase: &[u8],
    plain_len: usize,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if passphrase.is_empty() {
        return Err(SealError::EmptyPassphrase);
    }
    // The length was checked by `parse`, so these slices are in bounds.
    let Parsed { body, cost } = parse(header, text, plain_len)?;
    let salt = &body[..SALT];
    let mut nonce = [0u8; NONCE];
    nonce.copy_from_slice(&body[SALT + 16..PREFIX]);
    let (authenticated, tag) = body.split_at(PREFIX + plain_len);
    let keys = derive(passphrase, salt, cost)?;
    keys.mac(header, authenticated)
        .verify_slice(tag)
        .map_err(|_| SealError::Unsealing)?;
    let mut plain = Zeroizing::new(authenticated[PREFIX..].to_vec());
    XChaCha20::new(keys.encryption.as_ref().into(), (&nonce).into()).apply_keystream(&mut plain);
    Ok(plain)
}

struct Derived {
    encryption: Zeroizing<[u8; 32]>,
    authentication: Zeroizing<[u8; 32]>,
}

impl Derived {
    fn mac(&self, header: &str, body: &[u8]) -> Blake2bMac<U32> {
        // A 32-byte key is always a valid BLAKE2b key.
        let mut mac = <Blake2bMac<U32> as Mac>::new_from_slice(self.authentication.as_ref())
            .unwrap_or_else(|_| unreachable!("32-byte BLAKE2b key"));
        Mac::update(&mut mac, header.as_bytes());
        Mac::update(&mut mac, body);
        mac
    }
}

fn derive(passphrase: &[u8], salt: &[u8], cost: Argon2Cost) -> Result<Derived, SealError> {
    let bad_cost = || SealError::Cost {
        memory_mib: cost.memory_bytes / MIB,
        iterations: cost.iterations,
        parallelism: cost.parallelism,
    };
    let memory_kib = u32::try_from(cost.memory_bytes / 1024).map_err(|_| bad_cost())?;
    let params = argon2::Params::new(memory_kib, cost.iterations, cost.parallelism, Some(32))
        .map_err(|_| bad_cost())?;
    // The work memory is reserved fallibly (a failed allocation is an error, not an abort)
    // and wiped after use: it holds values derived from the passphrase.
    let mut blocks: Vec<argon2::Block> = Vec::new();
    blocks
        .try_reserve_exact(params.block_count())
        .map_err(|_| SealError::Memory {
            memory_mib: cost.memory_bytes / MIB,
        })?;
    blocks.resize(params.block_count(), argon2::Block::default());
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut pre_key = Zeroizing::new([0u8; 32]);
    let hashed =
        argon.hash_password_into_with_memory(passphrase, salt, pre_key.as_mut(), &mut blocks);
    for block in &mut blocks {
        zeroize::Zeroize::zeroize(block);
    }
    hashed.map_err(|_| bad_cost())?;
    let split = |domain: u8| {
        let mut hash = Blake2b::<U32>::new();
        Digest::update(&mut hash, [domain]);
        Digest::update(&mut hash, pre_key.as_ref());
        Zeroizing::new(<[u8; 32]>::from(hash.finalize()))
    };
    Ok(Derived {
        encryption: split(0xFF),
        authentication: split(0xFE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Argon2Cost = Argon2Cost {
        memory_bytes: 8 * MIB,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn the_paserk_test_vector_opens() {
        // paseto-standard/test-vectors PASERK/k4.secret-pw.json, "k4.secret-pw-1".
        let paserk = "k4.secret-pw.Stkwnh1lHUA7p3t2GDRxdQAAAAAEAAAAAAAAAgAAAAEUtfYRjsLAnE5hGX0Ni8H_W2XdVz5laZ9MdByIYgnDQnXEEx7NyXzBHhKdNVa12XhSLNTNMLuSo5kDMsJUHlEMt8yIE-F7GMDvBXTFvNFniK1Ao0TreYqIYTSKfIvfcZhwiWuHqFGddVhOvTrNt8zi53IeF-g089U";
        let key = open_secret(paserk, b"correct horse battery staple").expect("opens");
        let expected = "707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f1ce56a48c82ff99162a14bc544612674e5d61fb9317e65d4055780fdbcb4dc35";
        assert_eq!(hex(&key.keypair_bytes()[..]), expected);
        assert_eq!(
            open_secret(paserk, b"correct horse battery stapler").err(),
            Some(SealError::Unsealing)
        );
    }

    #[test]
    fn a_sealed_key_round_trips_and_refuses_a_wrong_passphrase_or_an_altered_byte() {
        let key = SigningKey::generate().expect("rng");
        let sealed = seal_secret(&key, b"a long enough passphrase", CHEAP).expect("seals");
        assert!(sealed.starts_with(SECRET_PW_HEADER));
        assert!(is_sealed_secret(&sealed));
        let opened = open_secret(&sealed, b"a long enough passphrase").expect("opens");
        assert_eq!(opened.public_key(), key.public_key());
        assert_eq!(
            open_secret(&sealed, b"another passphrase").err(),
            Some(SealError::Unsealing)
        );
        // Flip one character of the ciphertext: the same error as a wrong passphrase.
        let mut altered = sealed.clone().into_bytes();
        let at = altered.len() - 50;
        altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("ascii");
        assert_eq!(
            open_secret(&altered, b"a long enough passphrase").err(),
            Some(SealError::Unsealing)
        );
    }

    #[test]
    fn truncated_foreign_and_absurd_files_are_refused_without_work() {
        let key = SigningKey::generate().expect("rng");
        let sealed = seal_secret(&key, b"pw", CHEAP).expect("seals");
        let truncated = &sealed[..sealed.len() - 4];
        assert!(matches!(
            open_secret(truncated, b"pw"),
            Err(SealError::Malformed { .. })
        ));
        assert!(matches!(
            open_local(&sealed, b"pw"),
            Err(SealError::Malformed { .. })
        ));
        // A file that asks for 2^40 bytes of memory is refused before Argon2 runs.
        let mut body = URL_SAFE_NO_PAD
            .decode(&sealed[SECRET_PW_HEADER.len()..])
            .expect("b64");
        body[SALT..SALT + 8].copy_from_slice(&(1u64 << 40).to_be_bytes());
        let absurd = format!("{SECRET_PW_HEADER}{}", URL_SAFE_NO_PAD.encode(&body));
        assert!(matches!(
            open_secret(&absurd, b"pw"),
            Err(SealError::Cost { .. })
        ));
        assert_eq!(
            seal_secret(&key, b"", CHEAP).err(),
            Some(SealError::EmptyPassphrase)
        );
        assert!(Argon2Cost::new(1, 1).is_err());
        assert!(Argon2Cost::new(2048, 1).is_err());
        // The shape and cost are checked without a passphrase.
        assert_eq!(check_sealed_secret(&sealed), Ok(CHEAP));
        assert!(matches!(
            check_sealed_secret(&absurd),
            Err(SealError::Cost { .. })
        ));
        assert!(matches!(
            check_sealed_secret(truncated),
            Err(SealError::Malformed { .. })
        ));
    }

    #[test]
    fn local_secrets_round_trip() {
        let secret = [7u8; 32];
        let sealed = seal_local(&secret, b"share passphrase", CHEAP).expect("seals");
        assert!(sealed.starts_with(LOCAL_PW_HEADER));
        assert_eq!(
            *open_local(&sealed, b"share passphrase").expect("opens"),
            secret
        );
        assert_eq!(
            open_local(&sealed, b"wrong").err(),
            Some(SealError::Unsealing)
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
