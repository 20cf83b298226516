//! Online tokens: compact JWS with `{alg: EdDSA, typ: mcpg-ent+jwt, kid}`.
//!
//! Signing uses the already-parsed dalek key and a header encoded once per key, so the
//! issuing hot path costs one Ed25519 signature plus the claims' JSON. Verification rejects
//! oversized input, other algorithms, other types and unknown key ids before it touches
//! a signature.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::claims::{ClaimsError, LicenseClaims, TimeFormat};
use crate::clock::UnixTime;
use crate::error::VerifyError;
use crate::keys::{PublicKey, SigningKey};

/// The JWT `typ` of entitlement tokens.
pub const JWT_TYPE: &str = "mcpg-ent+jwt";

/// The largest token accepted by any verifier, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Clock skew tolerated on `nbf` and `exp`, in seconds.
pub const LEEWAY: i64 = 60;

/// Signs online tokens with one key; cheap to clone behind an `Arc`.
#[derive(Debug)]
pub struct JwtSigner {
    key: SigningKey,
    header_b64: String,
}

impl JwtSigner {
    /// A signer for `key`, with its header encoded once.
    pub fn new(key: SigningKey) -> Self {
        let header =
            serde_json::json!({"alg": "EdDSA", "typ": JWT_TYPE, "kid": key.kid().as_str()});
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        Self { key, header_b64 }
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Validates `claims` and signs them.
    pub fn sign(&self, claims: &LicenseClaims) -> Result<String, ClaimsError> {
        claims.validate()?;
        let payload = claims.to_json(TimeFormat::Seconds);
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 90);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self.key.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// A JWT whose header passed the cheap checks and whose signature is not verified yet.
#[derive(Debug)]
pub struct UnverifiedJwt<'a> {
    kid: String,
    signing_input: &'a str,
    payload_b64: &'a str,
    signature: [u8; 64],
}

/// Splits `token` and checks size, `alg`, `typ` and the presence of `kid`.
pub fn parse_jwt(token: &str) -> Result<UnverifiedJwt<'_>, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Oversized {
            len: token.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    let malformed = |why: &str| VerifyError::Malformed(why.to_owned());
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a JWT has three dot-separated parts"));
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header_json)
        .map_err(|_| malformed("header is not a JSON object"))?;
    match header.alg.as_deref() {
        Some("EdDSA") => {}
        Some(other) => return Err(VerifyError::UnsupportedAlgorithm(other.to_owned())),
        None => return Err(malformed("header has no alg")),
    }
    match header.typ.as_deref() {
        Some(JWT_TYPE) => {}
        other => {
            return Err(VerifyError::WrongType {
                expected: JWT_TYPE,
                found: other.unwrap_or("none").to_owned(),
            });
        }
    }
    if header.crit.is_some() {
        return Err(malformed("critical header parameters are not supported"));
    }
    let kid = header.kid.ok_or_else(|| malformed("header has no kid"))?;
    let mut signature = [0u8; 64];
    match URL_SAFE_NO_PAD.decode_slice(signature_b64, &mut signature) {
        Ok(64) => {}
        _ => return Err(malformed("signature is not 64 bytes of base64url")),
    }
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    Ok(UnverifiedJwt {
        kid,
        signing_input,
        payload_b64,
        signature,
    })
}

impl UnverifiedJwt<'_> {
    /// The `kid` the header names (not yet trusted).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Verifies the signature with `key` and parses the claims. Times are not checked here:
    /// see [`check_times`].
    pub fn verify(&self, key: &PublicKey) -> Result<LicenseClaims, VerifyError> {
        if key.kid().as_str() != self.kid {
            return Err(VerifyError::UnknownKey(self.kid.clone()));
        }
        if !key.verify(self.signing_input.as_bytes(), &self.signature) {
            return Err(VerifyError::BadSignature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(self.payload_b64)
            .map_err(|_| VerifyError::Malformed("payload is not base64url".into()))?;
        Ok(LicenseClaims::from_json(&payload, TimeFormat::Seconds)?)
    }
}

/// Which end of a token's life a check enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Valid from `nbf` to `exp`, each with [`LEEWAY`].
    Strict,
    /// Valid from `nbf` (with leeway) until the signed grace bound `grc` (exactly, no
    /// leeway); tokens without `grc` end at `exp`. Used by gateways riding out an outage.
    UntilGrace,
}

/// Checks `nbf`/`exp` (or `grc`) against `now`.
pub fn check_times(
    claims: &LicenseClaims,
    now: UnixTime,
    validity: Validity,
) -> Result<(), VerifyError> {
    if now < claims.nbf - LEEWAY {
        return Err(VerifyError::NotYetValid { nbf: claims.nbf });
    }
    let expired = match validity {
        Validity::Strict => now >= claims.exp + LEEWAY,
        Validity::UntilGrace => now >= claims.grc.unwrap_or(claims.exp),
    };
    if expired {
        return Err(VerifyError::Expired { exp: claims.exp });
    }
    Ok(())
}

/// Public keys by key id, for verifying tokens from a JWKS.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, PublicKey>,
}

impl KeySet {
    /// A set of the given keys.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|k| (k.kid().as_str().to_owned(), k))
                .collect(),
        }
    }

    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&PublicKey> {
        self.keys.get(kid)
    }

    /// Verifies a JWT signed by one of these keys, with strict times and the expected issuer.
    pub fn verify_jwt(
        &self,
        token: &str,
        issuer: &str,
        now: UnixTime,
    ) -> Result<LicenseClaims, VerifyError> {
        let jwt = parse_jwt(token)?;
        let key = self
            .get(jwt.kid())
            .ok_or_else(|| VerifyError::UnknownKey(jwt.kid().to_owned()))?;
        let claims = jwt.verify(key)?;
        if claims.iss != issuer {
            return Err(VerifyError::WrongIssuer {
                expected: issuer.to_owned(),
                found: claims.iss,
            });
        }
        check_times(&claims, now, Validity::Strict)?;
        Ok(claims)
    }
}
