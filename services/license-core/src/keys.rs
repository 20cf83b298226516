//! Ed25519 keys: generation, PASERK (`k4.secret`, `k4.public`, `k4.pid`), PKCS#8/SPKI PEM,
//! OKP JWKs and JWKS documents.
//!
//! Key ids are the PASERK `k4.pid` of the public key (BLAKE2b-264 over `k4.pid.` and the
//! key's `k4.public` string): derived from the key, never chosen by hand, and the same id
//! names the key in JWT headers, PASETO footers, JWKS entries and certificates.
//! Keys are parsed once and kept parsed, so signing and verifying never re-parse.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use pasetors::keys::{AsymmetricPublicKey, AsymmetricSecretKey};
use pasetors::paserk::{FormatAsPaserk, Id};
use pasetors::version4::V4;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

/// A key id: the `k4.pid.…` PASERK of a public key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a key could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// A public key was given where a secret key is needed.
    #[error("this is a public key (k4.public); a secret key (k4.secret) is needed here")]
    PublicWhereSecretNeeded,
    /// A secret key was given where a public key is expected.
    #[error("this is a secret key (k4.secret); pass the public key (k4.public) instead")]
    SecretWherePublicNeeded,
    /// Not a PASERK of the expected type, or truncated.
    #[error("not a valid {expected} PASERK (wrong prefix, bad base64 or truncated)")]
    Paserk {
        /// `k4.secret` or `k4.public`.
        expected: &'static str,
    },
    /// The secret key's embedded public half does not match the secret.
    #[error("the secret key is corrupt: its public half does not match")]
    Inconsistent,
    /// Not a valid Ed25519 PEM document.
    #[error("not a valid Ed25519 {0} PEM document")]
    Pem(&'static str),
    /// Not a valid Ed25519 point.
    #[error("not a valid Ed25519 public key")]
    InvalidPoint,
    /// A JWK that is not an OKP/Ed25519 key or whose kid does not match the key.
    #[error("invalid JWK: {0}")]
    Jwk(&'static str),
    /// A passphrase-sealed key (`k4.secret-pw`) where a plain one was read.
    #[error("this key is sealed with a passphrase (k4.secret-pw); give its passphrase")]
    Sealed,
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// An Ed25519 public key with its derived key id.
#[derive(Clone)]
pub struct PublicKey {
    dalek: ed25519_dalek::VerifyingKey,
    paseto: AsymmetricPublicKey<V4>,
    kid: KeyId,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey").field("kid", &self.kid).finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.dalek == other.dalek
    }
}

impl Eq for PublicKey {}

/// The vendor roots compiled into this build (`keys/*.public.paserk`): what gateways and
/// BYOC issuers trust by default.
pub const VENDOR_ROOTS: &[&str] = &[include_str!("../../../keys/mcpg-root-2026.public.paserk")];

/// The compiled-in vendor roots, parsed.
pub fn vendor_roots() -> Result<Vec<PublicKey>, KeyError> {
    VENDOR_ROOTS
        .iter()
        .map(|text| PublicKey::from_paserk(text.trim()))
        .collect()
}

impl PublicKey {
    /// From the raw 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let dalek =
            ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPoint)?;
        if dalek.is_weak() {
            return Err(KeyError::InvalidPoint);
        }
        let paseto = AsymmetricPublicKey::<V4>::from(bytes).map_err(|_| KeyError::InvalidPoint)?;
        let mut kid = String::new();
        // Writing into a String cannot fail.
        let _ = Id::from(&paseto).fmt(&mut kid);
        let kid = KeyId(kid);
        Ok(Self { dalek, paseto, kid })
    }

    /// From a `k4.public.…` PASERK.
    pub fn from_paserk(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.starts_with("k4.secret.") {
            return Err(KeyError::SecretWherePublicNeeded);
        }
        let paseto = AsymmetricPublicKey::<V4>::try_from(text).map_err(|_| KeyError::Paserk {
            expected: "k4.public",
        })?;
        let bytes: [u8; 32] = paseto.as_bytes().try_into().map_err(|_| KeyError::Paserk {
            expected: "k4.public",
        })?;
        Self::from_bytes(&bytes)
    }

    /// From an SPKI PEM document (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let dalek = ed25519_dalek::VerifyingKey::from_public_key_pem(text.trim())
            .map_err(|_| KeyError::Pem("SPKI public key"))?;
        Self::from_bytes(dalek.as_bytes())
    }

    /// From a `k4.public` PASERK, a PEM document or an OKP JWK, whichever `text` is.
    pub fn parse_any(text: &str) -> Result<Self, KeyError> {
        let trimmed = text.trim();
        if trimmed.starts_with("-----BEGIN") {
            Self::from_pem(trimmed)
        } else if trimmed.starts_with('{') {
            let jwk: Jwk =
                serde_json::from_str(trimmed).map_err(|_| KeyError::Jwk("not a JWK object"))?;
            jwk.public_key()
        } else {
            Self::from_paserk(trimmed)
        }
    }

    /// The key id (`k4.pid.…`).
    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.dalek.as_bytes()
    }

    /// The `k4.public.…` PASERK.
    pub fn to_paserk(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.paseto.fmt(&mut out);
        out
    }

    /// SPKI PEM.
    pub fn to_pem(&self) -> String {
        self.dalek
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The OKP JWK for this key.
    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(self.as_bytes()),
            kid: Some(self.kid.0.clone()),
            alg: Some("EdDSA".into()),
            key_use: Some("sig".into()),
            mcpg_cert: None,
        }
    }

    /// Strict Ed25519 verification (rejects non-canonical and small-order signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.dalek.verify_strict(message, &signature).is_ok()
    }

    #[cfg(test)]
    pub(crate) fn paseto(&self) -> &AsymmetricPublicKey<V4> {
        &self.paseto
    }
}

/// An Ed25519 signing key. Its secret never appears in `Debug` output.
pub struct SigningKey {
    dalek: ed25519_dalek::SigningKey,
    paseto: AsymmetricSecretKey<V4>,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

impl Clone for SigningKey {
    fn clone(&self) -> Self {
        Self::from_seed(&self.dalek.to_bytes())
    }
}

impl SigningKey {
    /// A new key from the operating system's random generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(seed.as_mut()).map_err(|_| KeyError::Random)?;
        Ok(Self::from_seed(&seed))
    }

    /// The key for a 32-byte seed (RFC 8032 secret key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let dalek = ed25519_dalek::SigningKey::from_bytes(seed);
        let keypair = Zeroizing::new(dalek.to_keypair_bytes());
        let public_bytes = dalek.verifying_key().to_bytes();
        // A dalek key always yields a valid 64-byte keypair and a valid public point.
        let paseto = AsymmetricSecretKey::<V4>::from(keypair.as_ref())
            .expect("64-byte keypair is a valid v4 secret key");
        let public = PublicKey::from_bytes(&public_bytes)
            .expect("public half of a signing key is a valid point");
        Self {
            dalek,
            paseto,
            public,
        }
    }

    /// From a `k4.secret.…` PASERK; checks that its public half matches.
    pub fn from_paserk(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.starts_with("k4.public.") {
            return Err(KeyError::PublicWhereSecretNeeded);
        }
        let paseto = AsymmetricSecretKey::<V4>::try_from(text).map_err(|_| KeyError::Paserk {
            expected: "k4.secret",
        })?;
        let bytes = paseto.as_bytes();
        let seed: [u8; 32] = bytes[..32].try_into().map_err(|_| KeyError::Paserk {
            expected: "k4.secret",
        })?;
        let seed = Zeroizing::new(seed);
        let key = Self::from_seed(&seed);
        if key.public.as_bytes()[..] != bytes[32..] {
            return Err(KeyError::Inconsistent);
        }
        Ok(key)
    }

    /// From a PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.contains("PUBLIC KEY") {
            return Err(KeyError::PublicWhereSecretNeeded);
        }
        let dalek = ed25519_dalek::SigningKey::from_pkcs8_pem(text)
            .map_err(|_| KeyError::Pem("PKCS#8 private key"))?;
        Ok(Self::from_seed(&dalek.to_bytes()))
    }

    /// The 32-byte seed (RFC 8032 secret key), for splitting a root into shares.
    pub fn seed_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.dalek.to_bytes())
    }

    /// Seed and public key, 64 bytes: what a `k4.secret` PASERK holds.
    pub fn keypair_bytes(&self) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(self.dalek.to_keypair_bytes())
    }

    /// From a `k4.secret` PASERK or a PKCS#8 PEM document, whichever `text` is.
    pub fn parse_any(text: &str) -> Result<Self, KeyError> {
        if crate::sealed::is_sealed_secret(text) {
            return Err(KeyError::Sealed);
        }
        if text.trim_start().starts_with("-----BEGIN") {
            Self::from_pem(text)
        } else {
            Self::from_paserk(text)
        }
    }

    /// The `k4.secret.…` PASERK. Write it only to files of mode 0600.
    pub fn to_paserk(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        let _ = self.paseto.fmt(&mut *out);
        out
    }

    /// PKCS#8 v2 PEM. Write it only to files of mode 0600.
    pub fn to_pem(&self) -> Zeroizing<String> {
        self.dalek
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap_or_else(|_| Zeroizing::new(String::new()))
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key id of the public half.
    pub fn kid(&self) -> &KeyId {
        &self.public.kid
    }

    /// A raw Ed25519 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.dalek.sign(message).to_bytes()
    }

    #[cfg(test)]
    pub(crate) fn paseto(&self) -> &AsymmetricSecretKey<V4> {
        &self.paseto
    }
}

/// An OKP (Ed25519) JSON Web Key, optionally carrying the key's issuer certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// The key id (`k4.pid.…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `EdDSA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `sig`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// The issuer certificate (PASETO) that a root signed for this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcpg_cert: Option<String>,
}

impl Jwk {
    /// The key this JWK describes; its `kid`, when present, must be the derived one.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err(KeyError::Jwk("only OKP keys on Ed25519 are accepted"));
        }
        if self.alg.as_deref().is_some_and(|alg| alg != "EdDSA") {
            return Err(KeyError::Jwk("alg must be EdDSA"));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(&self.x)
            .map_err(|_| KeyError::Jwk("x is not base64url"))?;
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Jwk("x must be 32 bytes"))?;
        let key = PublicKey::from_bytes(&bytes)?;
        if self
            .kid
            .as_deref()
            .is_some_and(|kid| kid != key.kid.as_str())
        {
            return Err(KeyError::Jwk("kid does not match the key"));
        }
        Ok(key)
    }
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paserk_round_trips() {
        let key = SigningKey::generate().expect("rng");
        let back = SigningKey::from_paserk(&key.to_paserk()).expect("parses");
        assert_eq!(back.public_key(), key.public_key());
        let public = PublicKey::from_paserk(&key.public_key().to_paserk()).expect("parses");
        assert_eq!(&public, key.public_key());
        assert!(key.kid().as_str().starts_with("k4.pid."));
        assert!(key.to_paserk().starts_with("k4.secret."));
    }

    #[test]
    fn pem_round_trips() {
        let key = SigningKey::generate().expect("rng");
        let back = SigningKey::from_pem(&key.to_pem()).expect("parses");
        assert_eq!(back.kid(), key.kid());
        let public = PublicKey::from_pem(&key.public_key().to_pem()).expect("parses");
        assert_eq!(public.kid(), key.kid());
        assert_eq!(PublicKey::parse_any(&key.public_key().to_pem()), Ok(public));
    }

    #[test]
    fn jwk_round_trips_and_checks_kid() {
        let key = SigningKey::generate().expect("rng");
        let jwk = key.public_key().to_jwk();
        assert_eq!(jwk.public_key().as_ref(), Ok(key.public_key()));
        let other = SigningKey::generate().expect("rng");
        let lying = Jwk {
            kid: Some(other.kid().to_string()),
            ..jwk.clone()
        };
        assert_eq!(
            lying.public_key(),
            Err(KeyError::Jwk("kid does not match the key"))
        );
        let rsa = Jwk {
            kty: "RSA".into(),
            ..jwk
        };
        assert!(rsa.public_key().is_err());
    }

    #[test]
    fn wrong_or_truncated_keys_are_clear_errors() {
        let key = SigningKey::generate().expect("rng");
        let public = key.public_key().to_paserk();
        assert_eq!(
            SigningKey::from_paserk(&public).err(),
            Some(KeyError::PublicWhereSecretNeeded)
        );
        assert_eq!(
            PublicKey::from_paserk(&key.to_paserk()).err(),
            Some(KeyError::SecretWherePublicNeeded)
        );
        let secret = key.to_paserk();
        let truncated = &secret[..secret.len() - 5];
        assert!(matches!(
            SigningKey::from_paserk(truncated),
            Err(KeyError::Paserk { .. })
        ));
        assert!(matches!(
            PublicKey::from_paserk(&public[..public.len() - 3]),
            Err(KeyError::Paserk { .. })
        ));
        assert!(
            SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_err()
        );
        assert!(PublicKey::parse_any("garbage").is_err());
    }

    #[test]
    fn secret_key_with_foreign_public_half_is_inconsistent() {
        let a = SigningKey::generate().expect("rng");
        let b = SigningKey::generate().expect("rng");
        let mut raw = a.paseto().as_bytes().to_vec();
        raw[32..].copy_from_slice(b.public_key().as_bytes());
        let forged = format!("k4.secret.{}", URL_SAFE_NO_PAD.encode(&raw));
        // pasetors already refuses the pair; our own check stands behind it.
        assert!(SigningKey::from_paserk(&forged).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = SigningKey::generate().expect("rng");
        let shown = format!("{key:?}");
        let secret = key.to_paserk();
        assert!(!shown.contains(&secret["k4.secret.".len()..][..20]));
    }
}
