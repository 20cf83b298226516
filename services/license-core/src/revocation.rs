//! Revocation lists: a root's signed statement that certificates and offline licenses are
//! revoked before their expiry.
//!
//! A list is a PASETO `v4.public` signed by a root with the implicit assertion
//! `mcpg-revocation-list-v1`. Lists carry an increasing serial and each one replaces the
//! previous: a verifier keeps the highest serial it has seen and ignores older lists, so an
//! attacker cannot roll a gateway back to a list that predates a revocation.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::claims::ClaimsError;
use crate::clock::{UnixTime, parse_rfc3339, to_rfc3339};
use crate::error::VerifyError;
use crate::keys::SigningKey;
use crate::paseto;

/// Implicit assertion of revocation lists.
pub const REVOCATION_PURPOSE: &[u8] = b"mcpg-revocation-list-v1";
/// The `typ` claim of a revocation list.
pub const REVOCATION_TYPE: &str = "mcpg-revocation-list";

/// A verified (or about to be signed) revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationList {
    /// Increasing serial; a list replaces every list with a lower serial.
    pub serial: u64,
    /// When it was signed.
    pub iat: UnixTime,
    /// Revoked certificate ids (`cert_…`).
    pub certificates: HashSet<String>,
    /// Revoked offline license ids (`lic_…`).
    pub licenses: HashSet<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    typ: String,
    serial: u64,
    iat: String,
    certificates: Vec<String>,
    licenses: Vec<String>,
}

impl RevocationList {
    /// Signs the list with a root key.
    pub fn sign(&self, root: &SigningKey) -> Result<String, ClaimsError> {
        let mut certificates: Vec<String> = self.certificates.iter().cloned().collect();
        let mut licenses: Vec<String> = self.licenses.iter().cloned().collect();
        certificates.sort();
        licenses.sort();
        let wire = Wire {
            typ: REVOCATION_TYPE.into(),
            serial: self.serial,
            iat: to_rfc3339(self.iat),
            certificates,
            licenses,
        };
        let payload = serde_json::to_vec(&wire).map_err(|e| ClaimsError::Shape(e.to_string()))?;
        Ok(paseto::sign(root, &payload, None, REVOCATION_PURPOSE))
    }

    pub(crate) fn from_payload(payload: &[u8]) -> Result<Self, VerifyError> {
        let bad = |why: String| VerifyError::Malformed(format!("revocation list: {why}"));
        let wire: Wire = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
        if wire.typ != REVOCATION_TYPE {
            return Err(VerifyError::WrongType {
                expected: REVOCATION_TYPE,
                found: wire.typ,
            });
        }
        Ok(Self {
            serial: wire.serial,
            iat: parse_rfc3339(&wire.iat).ok_or_else(|| bad("iat is not RFC 3339".into()))?,
            certificates: wire.certificates.into_iter().collect(),
            licenses: wire.licenses.into_iter().collect(),
        })
    }

    /// Whether the list names certificate `cid`.
    pub fn revokes_certificate(&self, cid: &str) -> bool {
        self.certificates.contains(cid)
    }

    /// Whether the list names offline license `lic`.
    pub fn revokes_license(&self, lic: &str) -> bool {
        self.licenses.contains(lic)
    }
}
