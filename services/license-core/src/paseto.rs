//! PASETO `v4.public` framing shared by offline licenses and issuer certificates: the
//! footer (`{"kid", "cert"?}`), size limits, and purpose-binding implicit assertions.

use pasetors::Public;
use pasetors::token::UntrustedToken;
use pasetors::version4::{PublicToken, V4};
use serde::{Deserialize, Serialize};

use crate::error::VerifyError;
use crate::jwt::MAX_TOKEN_BYTES;
use crate::keys::{PublicKey, SigningKey};

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

/// Signs `payload` as `v4.public` with `footer` and the purpose's implicit assertion.
pub(crate) fn sign(key: &SigningKey, payload: &[u8], cert: Option<&str>, purpose: &[u8]) -> String {
    let footer = Footer {
        kid: key.kid().to_string(),
        cert: cert.map(str::to_owned),
    };
    let footer = serde_json::to_vec(&footer).unwrap_or_default();
    // Signing fails only for an empty payload, and claims are never empty.
    PublicToken::sign(key.paseto(), payload, Some(&footer), Some(purpose)).unwrap_or_default()
}

/// A parsed but unverified PASETO.
pub(crate) struct Untrusted {
    token: UntrustedToken<Public, V4>,
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
    if !token.starts_with(PublicToken::HEADER) {
        let found = token.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
        return Err(VerifyError::WrongType {
            expected: "v4.public",
            found: if found.len() > 20 {
                "not a PASETO".into()
            } else {
                found
            },
        });
    }
    let parsed = UntrustedToken::<Public, V4>::try_from(token)
        .map_err(|_| VerifyError::Malformed("not a valid v4.public token".into()))?;
    let footer: Footer = serde_json::from_slice(parsed.untrusted_footer())
        .map_err(|_| VerifyError::Malformed("footer must be JSON with a kid".into()))?;
    Ok(Untrusted {
        token: parsed,
        footer,
    })
}

impl Untrusted {
    /// The payload, unverified: for `inspect` and for telling licenses from certificates.
    pub(crate) fn untrusted_payload(&self) -> &[u8] {
        self.token.untrusted_payload()
    }

    /// Verifies the signature with `key` under `purpose` and returns the payload.
    pub(crate) fn verify(&self, key: &PublicKey, purpose: &[u8]) -> Result<Vec<u8>, VerifyError> {
        if key.kid().as_str() != self.footer.kid {
            return Err(VerifyError::UnknownKey(self.footer.kid.clone()));
        }
        PublicToken::verify(key.paseto(), &self.token, None, Some(purpose))
            .map(|trusted| trusted.payload().as_bytes().to_vec())
            .map_err(|_| VerifyError::BadSignature)
    }
}
