//! Secret credentials: gateway credentials (`mcpg_gw_…`) and API tokens (`mcpg_pat_…`).
//!
//! A credential is a prefix, then lowercase base32 of 32 random bytes followed by the first
//! 4 bytes of their SHA-256. The checksum lets the server refuse typos and garbage without a
//! database lookup. Only the SHA-256 of the whole credential is stored; the first characters
//! are kept for display so an operator can tell credentials apart.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

const BODY_BYTES: usize = 32;
const CHECKSUM_BYTES: usize = 4;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Each byte's value in [`ALPHABET`], or `INVALID`.
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};
const INVALID: u8 = 0xff;
/// Characters of a credential shown for display (prefix plus a few of the body).
const DISPLAY_CHARS: usize = 6;

/// What a credential is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A gateway instance's credential for the federation token endpoint.
    Gateway,
    /// A personal/API token for the management API.
    ApiToken,
}

impl CredentialKind {
    /// The textual prefix of credentials of this kind.
    pub(crate) const fn prefix(self) -> &'static str {
        match self {
            CredentialKind::Gateway => "mcpg_gw_",
            CredentialKind::ApiToken => "mcpg_pat_",
        }
    }
}

/// Why a presented credential was refused before any lookup.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CredentialError {
    /// Wrong prefix for the endpoint.
    #[error("credential does not have the expected prefix")]
    Prefix,
    /// Wrong length or characters outside the alphabet.
    #[error("credential is malformed")]
    Malformed,
    /// The checksum does not match: a typo or a forged value.
    #[error("credential checksum does not match")]
    Checksum,
    /// The system random source failed.
    #[error("random source failed")]
    Random,
}

/// SHA-256 of a credential, the only form that is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CredentialHash([u8; 32]);

impl CredentialHash {
    /// Lowercase hex, as stored in the database.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// The hash stored as hex, `None` if it is not 64 hex digits.
    pub(crate) fn from_hex(stored: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(stored, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// Constant-time comparison with another hash.
    pub(crate) fn matches(&self, other: &CredentialHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Constant-time comparison with a stored hex hash.
    pub(crate) fn matches_hex(&self, stored: &str) -> bool {
        Self::from_hex(stored).is_some_and(|stored| self.matches(&stored))
    }
}

impl fmt::Debug for CredentialHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CredentialHash({}…)", &self.to_hex()[..8])
    }
}

/// A credential that passed the format and checksum checks.
pub struct Credential {
    secret: SecretString,
    hash: CredentialHash,
    display_prefix: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({}…)", self.display_prefix)
    }
}

impl Credential {
    /// A fresh credential of `kind`.
    pub fn generate(kind: CredentialKind) -> Result<Self, CredentialError> {
        let mut body = [0u8; BODY_BYTES];
        getrandom::getrandom(&mut body).map_err(|_| CredentialError::Random)?;
        let mut raw = body.to_vec();
        raw.extend_from_slice(&checksum(&body));
        let text = format!("{}{}", kind.prefix(), base32(&raw));
        Self::parse(kind, &text)
    }

    /// Checks prefix, length, alphabet and checksum; no database is touched.
    pub(crate) fn parse(kind: CredentialKind, text: &str) -> Result<Self, CredentialError> {
        let encoded = text
            .strip_prefix(kind.prefix())
            .ok_or(CredentialError::Prefix)?;
        let raw = unbase32(encoded).ok_or(CredentialError::Malformed)?;
        if raw.len() != BODY_BYTES + CHECKSUM_BYTES {
            return Err(CredentialError::Malformed);
        }
        let (body, sum) = raw.split_at(BODY_BYTES);
        if !bool::from(checksum(body).ct_eq(sum)) {
            return Err(CredentialError::Checksum);
        }
        let hash = CredentialHash(Sha256::digest(text.as_bytes()).into());
        let display_prefix = text[..kind.prefix().len() + DISPLAY_CHARS].to_owned();
        Ok(Self {
            secret: SecretString::from(text.to_owned()),
            hash,
            display_prefix,
        })
    }

    /// The SHA-256 of the credential.
    pub fn hash(&self) -> CredentialHash {
        self.hash
    }

    /// The first characters, safe to show and store.
    pub(crate) fn display_prefix(&self) -> &str {
        &self.display_prefix
    }

    /// The full secret text, to show once to its owner.
    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_BYTES] {
    let digest = Sha256::digest(body);
    [digest[0], digest[1], digest[2], digest[3]]
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = DECODE[usize::from(c)];
        if value == INVALID {
            return None;
        }
        let value = u32::from(value);
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    // Only the canonical encoding: the bits left over must be zero padding, or one
    // credential would have several spellings (the last character's padding bits).
    (buffer == 0 && bits < 5).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_parse_back_and_hash_stably() {
        let credential = Credential::generate(CredentialKind::Gateway).expect("random");
        assert!(credential.expose().starts_with("mcpg_gw_"));
        let again = Credential::parse(CredentialKind::Gateway, credential.expose()).expect("valid");
        assert_eq!(again.hash(), credential.hash());
        assert!(credential.hash().matches_hex(&credential.hash().to_hex()));
        assert_eq!(
            credential.display_prefix().len(),
            "mcpg_gw_".len() + DISPLAY_CHARS
        );
    }

    #[test]
    fn any_single_changed_character_is_refused() {
        // Every position and every other alphabet letter, including the last character
        // (whose low bits are padding): the encoding is canonical and checksummed.
        for _ in 0..20 {
            let credential = Credential::generate(CredentialKind::ApiToken).expect("random");
            let text = credential.expose();
            let start = CredentialKind::ApiToken.prefix().len();
            for at in start..text.len() {
                for &letter in ALPHABET {
                    if text.as_bytes()[at] == letter {
                        continue;
                    }
                    let mut changed = text.as_bytes().to_vec();
                    changed[at] = letter;
                    let changed = String::from_utf8(changed).expect("ascii");
                    assert!(
                        Credential::parse(CredentialKind::ApiToken, &changed).is_err(),
                        "{changed} accepted"
                    );
                }
            }
        }
    }

    #[test]
    fn a_token_made_by_the_documented_recipe_parses_and_hashes_as_in_tenants_yaml() {
        // README "Tenants as code": body = bytes 0..32, RFC 4648 base32 of body + the first
        // 4 bytes of its SHA-256, lowercase without padding; key_hash = SHA-256 of the text.
        let token = "mcpg_pat_aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypwgdonfe";
        let credential = Credential::parse(CredentialKind::ApiToken, token).expect("valid");
        assert_eq!(
            credential.hash().to_hex(),
            "c7e363f00a244e402a32454b6c0098174b8e7adf98da2da335cb8be0cfa78267"
        );
    }

    #[test]
    fn wrong_prefixes_and_garbage_are_refused() {
        let gw = Credential::generate(CredentialKind::Gateway).expect("random");
        assert_eq!(
            Credential::parse(CredentialKind::ApiToken, gw.expose()).err(),
            Some(CredentialError::Prefix)
        );
        assert_eq!(
            Credential::parse(CredentialKind::Gateway, "mcpg_gw_!!!").err(),
            Some(CredentialError::Malformed)
        );
        assert_eq!(
            Credential::parse(CredentialKind::Gateway, "mcpg_gw_abc").err(),
            Some(CredentialError::Malformed)
        );
    }
}
