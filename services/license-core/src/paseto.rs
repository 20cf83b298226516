//! PASETO `v4.public` framing shared by offline licenses and issuer certificates: the
//! footer (`{"kid", "cert"?}`), size limits, and purpose-binding implicit assertions.
//!
//! v4.public is Ed25519 over PAE(`v4.public.`, message, footer, implicit assertion). We
//! sign and verify with the already-parsed dalek keys (strict verification) rather than
//! through pasetors, which re-derives its key on every call and costs about twice as much;
//! tests check every token against pasetors and rusty_paseto, two independent
//! implementations.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::VerifyError;
use crate::jwt::MAX_TOKEN_BYTES;
use crate::keys::{PublicKey, SigningKey};

/// The header of every token we make.
pub const HEADER: &str = "v4.public.";
/// Implicit assertion of offline licenses.
pub const LICENSE_PURPOSE: &[u8] = b"mcpg-offline-license-v1";
/// Implicit assertion of issuer certificates.
pub const CERTIFICATE_PURPOSE: &[u8] = b"mcpg-issuer-cert-v1";

/// The footer of every MCPG PASETO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Footer {
    /// Key id of the signing key.
    pub kid: String,
    /// The issuer certificate of the signing key, when it is not a root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
}

/// Pre-Authentication Encoding (PASETO spec, section "PAE").
fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let total: usize = 8 + pieces.iter().map(|p| 8 + p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(pieces.len() as u64).to_le_bytes());
    for piece in pieces {
        // The spec clears the top bit of each length; lengths here are far below 2^63.
        out.extend_from_slice(&((piece.len() as u64) & (u64::MAX >> 1)).to_le_bytes());
        out.extend_from_slice(piece);
    }
    out
}

/// Signs `payload` as `v4.public` with a footer naming the key (and its certificate) and
/// the purpose's implicit assertion.
pub(crate) fn sign(key: &SigningKey, payload: &[u8], cert: Option<&str>, purpose: &[u8]) -> String {
    let footer = Footer {
        kid: key.kid().to_string(),
        cert: cert.map(str::to_owned),
    };
    let footer = serde_json::to_vec(&footer).unwrap_or_default();
    let signature = key.sign(&pae(&[HEADER.as_bytes(), payload, &footer, purpose]));
    let mut body = Vec::with_capacity(payload.len() + 64);
    body.extend_from_slice(payload);
    body.extend_from_slice(&signature);
    let mut token = String::from(HEADER);
    URL_SAFE_NO_PAD.encode_string(&body, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&footer, &mut token);
    token
}

/// A parsed but unverified PASETO.
pub(crate) struct Untrusted {
    payload: Vec<u8>,
    signature: [u8; 64],
    footer_raw: Vec<u8>,
    pub(crate) footer: Footer,
}

/// Checks size and framing and decodes the footer, without verifying anything.
pub(crate) fn parse(token: &str) -> Result<Untrusted, VerifyError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Oversized {
            len: token.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    let Some(rest) = token.strip_prefix(HEADER) else {
        let found: String = token.split('.').take(2).collect::<Vec<_>>().join(".");
        return Err(VerifyError::WrongType {
            expected: "v4.public",
            found: if found.len() > 20 || found.is_empty() {
                "not a PASETO".into()
            } else {
                found
            },
        });
    };
    let malformed = |why: &str| VerifyError::Malformed(why.to_owned());
    let mut parts = rest.split('.');
    let (Some(body_b64), footer_b64, None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed(
            "a v4.public token has three or four dot-separated parts",
        ));
    };
    let mut body = URL_SAFE_NO_PAD
        .decode(body_b64)
        .map_err(|_| malformed("body is not base64url"))?;
    if body.len() <= 64 {
        return Err(malformed("body is shorter than a signature"));
    }
    let signature: [u8; 64] = body[body.len() - 64..]
        .try_into()
        .map_err(|_| malformed("signature is not 64 bytes"))?;
    body.truncate(body.len() - 64);
    let footer_raw = URL_SAFE_NO_PAD
        .decode(footer_b64.unwrap_or(""))
        .map_err(|_| malformed("footer is not base64url"))?;
    let footer: Footer = serde_json::from_slice(&footer_raw)
        .map_err(|_| malformed("footer must be JSON with a kid"))?;
    Ok(Untrusted {
        payload: body,
        signature,
        footer_raw,
        footer,
    })
}

impl Untrusted {
    /// The payload, unverified: for `inspect` and for telling licenses from certificates.
    pub(crate) fn untrusted_payload(&self) -> &[u8] {
        &self.payload
    }

    /// Verifies the signature with `key` under `purpose` and returns the payload.
    pub(crate) fn verify(&self, key: &PublicKey, purpose: &[u8]) -> Result<&[u8], VerifyError> {
        if key.kid().as_str() != self.footer.kid {
            return Err(VerifyError::UnknownKey(self.footer.kid.clone()));
        }
        let message = pae(&[HEADER.as_bytes(), &self.payload, &self.footer_raw, purpose]);
        if key.verify(&message, &self.signature) {
            Ok(&self.payload)
        } else {
            Err(VerifyError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pasetors::Public;
    use pasetors::token::UntrustedToken;
    use pasetors::version4::{PublicToken, V4};

    #[test]
    fn pae_matches_the_specification_examples() {
        assert_eq!(pae(&[]), b"\x00\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(
            pae(&[b""]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(
            pae(&[b"test"]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00test"
        );
    }

    #[test]
    fn our_tokens_verify_with_pasetors_and_theirs_with_us() {
        let key = SigningKey::generate().expect("rng");
        let token = sign(&key, br#"{"a":1}"#, None, LICENSE_PURPOSE);
        let untrusted = UntrustedToken::<Public, V4>::try_from(token.as_str()).expect("parses");
        assert!(
            PublicToken::verify(
                key.public_key().paseto(),
                &untrusted,
                None,
                Some(LICENSE_PURPOSE)
            )
            .is_ok()
        );
        assert!(
            PublicToken::verify(key.public_key().paseto(), &untrusted, None, Some(b"other"))
                .is_err()
        );

        let footer = format!(r#"{{"kid":"{}"}}"#, key.kid());
        let theirs = PublicToken::sign(
            key.paseto(),
            br#"{"b":2}"#,
            Some(footer.as_bytes()),
            Some(CERTIFICATE_PURPOSE),
        )
        .expect("pasetors signs");
        let parsed = parse(&theirs).expect("parses");
        assert_eq!(
            parsed.verify(key.public_key(), CERTIFICATE_PURPOSE),
            Ok(&br#"{"b":2}"#[..])
        );
        assert_eq!(
            parsed.verify(key.public_key(), LICENSE_PURPOSE),
            Err(VerifyError::BadSignature)
        );
    }
}
