//! The usage bundle (what `mcpg-entitlements usage export` writes) and its verification.
//!
//! ```json
//! {"format": "mcpg-usage-bundle-v1", "deployment_id": "dc1-cluster-7",
//!  "deployment_key": "<base64url of the raw Ed25519 public key>",
//!  "license": {"id": "lic_…", "org": "acme", "sha256": "<hex>", "token": "v4.public.…"},
//!  "exported_at": "2026-11-30T09:00:00Z", "entries": [SignedEntry, …]}
//! ```
//!
//! [`verify_bundle`] checks, in this order, and refuses with the first reason found
//! ([`ReceiptError::code`]): the shape (`malformed`), the deployment key against the one on
//! record (`wrong_deployment_key`), the license (`license_mismatch`: it must verify against
//! the trusted roots, be bound to the bundle's deployment, be the one the verifier holds,
//! and be the license of the last entry), then entry by entry: its hash (`edited`), its
//! signature (`bad_signature`), its order after the previous entry (`reordered`), that no
//! day or seq is skipped (`removed_day`) and that it names the previous entry's hash
//! (`edited`); finally the continuation of the chain on record: entries all at or before
//! the last imported one (`replayed`), not continuing it (`gap`), or rewriting the
//! already-imported entry they overlap (`edited`).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Day, SignedEntry, decode_key, encode_key, license_digest};
use crate::chain::Unverified;
use crate::chain::{TrustStore, decode_unverified};
use crate::claims::LicenseClaims;

/// The bundle's `format`.
pub const BUNDLE_FORMAT: &str = "mcpg-usage-bundle-v1";
/// The largest bundle [`verify_bundle`] reads (about 100 years of days with every plugin).
pub const MAX_BUNDLE_BYTES: usize = 64 * 1024 * 1024;

/// Which license the entries were recorded under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseBinding {
    /// The license id (`lic`).
    pub id: String,
    /// The license's org.
    pub org: String,
    /// SHA-256 (hex) of the license text ([`license_digest`]).
    pub sha256: String,
    /// The offline license itself (PASETO `v4.public`).
    pub token: String,
}

/// A usage bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// The deployment (the license's `bind`).
    pub deployment_id: String,
    /// The deployment's public key, base64url of the raw 32 bytes.
    pub deployment_key: String,
    /// The license in force.
    pub license: LicenseBinding,
    /// When the bundle was written (RFC 3339; not signed, informational).
    pub exported_at: String,
    /// The day entries, in ledger order.
    pub entries: Vec<SignedEntry>,
}

/// What a verifier keeps per deployment between imports: the key it first saw and the
/// head of the imported chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// The deployment's public key, base64url of the raw 32 bytes.
    pub deployment_key: String,
    /// `seq` of the last imported entry.
    pub last_seq: u64,
    /// `hash` of the last imported entry (hex).
    pub last_hash: String,
}

/// The trusted inputs a bundle's license is checked with.
#[derive(Debug, Clone, Copy)]
pub struct LicenseCheck<'a> {
    /// The roots (and revocation list) licenses must verify against.
    pub trust: &'a TrustStore,
    /// The license the verifier holds for this deployment (its text), if any: the bundle
    /// must name exactly this one.
    pub license: Option<&'a str>,
    /// The deployment the verifier expects the bundle from, if it knows.
    pub deployment_id: Option<&'a str>,
}

/// A bundle that verified.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    /// The deployment.
    pub deployment_id: String,
    /// Its public key, base64url.
    pub deployment_key: String,
    /// The license's org.
    pub org: String,
    /// The bundle's license, verified.
    pub license: LicenseClaims,
    /// SHA-256 (hex) of the license text.
    pub license_sha256: String,
    /// The entries not imported before (all of them without a [`ChainState`]), in order.
    pub entries: Vec<SignedEntry>,
    /// How many leading entries were already imported (they matched the chain on record).
    pub already_imported: usize,
    /// Whether the bundle starts at the deployment's first entry (`seq` 1).
    pub from_genesis: bool,
    /// The chain head after importing `entries`.
    pub chain: ChainState,
}

/// Why a bundle was refused. [`ReceiptError::code`] is stable.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ReceiptError {
    /// Not a bundle of this format, or a field out of bounds.
    #[error("malformed usage bundle: {0}")]
    Malformed(String),
    /// An entry's signature does not verify with the bundle's deployment key.
    #[error("entry seq {seq} ({day}): the signature does not verify with the deployment key")]
    BadSignature {
        /// The entry.
        seq: u64,
        /// Its day.
        day: String,
    },
    /// The bundle is signed by another key than the deployment's key on record.
    #[error(
        "signed by deployment key {found}, but deployment {deployment_id} is on record with key {expected}"
    )]
    WrongDeploymentKey {
        /// The deployment.
        deployment_id: String,
        /// The key on record.
        expected: String,
        /// The bundle's key.
        found: String,
    },
    /// The first new entry does not continue the chain on record.
    #[error(
        "gap: the last imported entry is seq {last_seq}; the bundle continues with seq {first_seq} {why}"
    )]
    Gap {
        /// The chain on record's last seq.
        last_seq: u64,
        /// The bundle's first seq.
        first_seq: u64,
        /// What does not line up.
        why: &'static str,
    },
    /// An entry's content does not match its hash, or the chain inside the bundle (or with
    /// an imported entry) does not link.
    #[error("entry seq {seq} ({day}) was edited: {why}")]
    Edited {
        /// The entry.
        seq: u64,
        /// Its day.
        day: String,
        /// Which hash does not match.
        why: &'static str,
    },
    /// A day (or seq) is missing between two entries.
    #[error("a day was removed: entry seq {seq} ({day}) follows seq {prev_seq} ({prev_day})")]
    RemovedDay {
        /// The earlier entry's seq.
        prev_seq: u64,
        /// Its day.
        prev_day: String,
        /// The later entry's seq.
        seq: u64,
        /// Its day.
        day: String,
    },
    /// Every entry is at or before the last one imported.
    #[error(
        "replayed: every entry (up to seq {last_in_bundle}) was imported before (last imported seq {last_seq})"
    )]
    Replayed {
        /// The bundle's last seq.
        last_in_bundle: u64,
        /// The chain on record's last seq.
        last_seq: u64,
    },
    /// Entries not in strictly increasing day and seq order.
    #[error("reordered: entry seq {seq} ({day}) comes after seq {prev_seq} ({prev_day})")]
    Reordered {
        /// The earlier entry's seq.
        prev_seq: u64,
        /// Its day.
        prev_day: String,
        /// The later entry's seq.
        seq: u64,
        /// Its day.
        day: String,
    },
    /// The bundle's license is not the expected one, does not verify, or is bound elsewhere.
    #[error("license mismatch: {0}")]
    LicenseMismatch(String),
}

impl ReceiptError {
    /// The stable code of the reason.
    pub fn code(&self) -> &'static str {
        match self {
            ReceiptError::Malformed(_) => "malformed",
            ReceiptError::BadSignature { .. } => "bad_signature",
            ReceiptError::WrongDeploymentKey { .. } => "wrong_deployment_key",
            ReceiptError::Gap { .. } => "gap",
            ReceiptError::Edited { .. } => "edited",
            ReceiptError::RemovedDay { .. } => "removed_day",
            ReceiptError::Replayed { .. } => "replayed",
            ReceiptError::Reordered { .. } => "reordered",
            ReceiptError::LicenseMismatch(_) => "license_mismatch",
        }
    }
}

impl Bundle {
    /// The bundle as pretty JSON (what the export writes).
    pub fn to_json(&self) -> String {
        // Plain strings, integers and maps: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// Verifies a bundle: see the module documentation for the checks and their order.
/// `expected` is the chain on record for the deployment (none before its first import).
pub fn verify_bundle(
    bytes: &[u8],
    expected: Option<&ChainState>,
    check: &LicenseCheck<'_>,
) -> Result<VerifiedBundle, ReceiptError> {
    let malformed = |m: String| ReceiptError::Malformed(m);
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(malformed(format!("larger than {MAX_BUNDLE_BYTES} bytes")));
    }
    let bundle: Bundle =
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("not a usage bundle: {e}")))?;
    if bundle.format != BUNDLE_FORMAT {
        return Err(malformed(format!(
            "format {:?} is not {BUNDLE_FORMAT}",
            bundle.format
        )));
    }
    let key = decode_key(&bundle.deployment_key)
        .ok_or_else(|| malformed("deployment_key is not a base64url Ed25519 public key".into()))?;
    let key_text = encode_key(&key);
    if let Some(chain) = expected
        && decode_key(&chain.deployment_key).as_ref() != Some(&key)
    {
        return Err(ReceiptError::WrongDeploymentKey {
            deployment_id: bundle.deployment_id.clone(),
            expected: chain.deployment_key.clone(),
            found: key_text,
        });
    }
    let Some(last) = bundle.entries.last() else {
        return Err(malformed("the bundle holds no day entries".into()));
    };
    for signed in &bundle.entries {
        signed
            .entry
            .validate()
            .map_err(|e| malformed(format!("entry seq {}: {e}", signed.entry.seq)))?;
    }
    let license = check_license(&bundle, check, &last.entry.license_id)?;
    for signed in &bundle.entries {
        let entry = &signed.entry;
        if entry.deployment_id != bundle.deployment_id || entry.org != bundle.license.org {
            return Err(ReceiptError::LicenseMismatch(format!(
                "entry seq {} is for {}/{}, the bundle for {}/{}",
                entry.seq, entry.org, entry.deployment_id, bundle.license.org, bundle.deployment_id
            )));
        }
    }
    check_chain(&bundle.entries, &key)?;
    let first = &bundle.entries[0].entry;
    let already_imported = match expected {
        None => 0,
        Some(chain) => continuation(&bundle.entries, chain)?,
    };
    let head = &bundle.entries[bundle.entries.len() - 1];
    Ok(VerifiedBundle {
        deployment_id: bundle.deployment_id.clone(),
        deployment_key: key_text.clone(),
        org: bundle.license.org.clone(),
        license,
        license_sha256: bundle.license.sha256.clone(),
        from_genesis: first.seq == 1,
        already_imported,
        chain: ChainState {
            deployment_key: key_text,
            last_seq: head.entry.seq,
            last_hash: head.hash.clone(),
        },
        entries: bundle.entries[already_imported..].to_vec(),
    })
}

/// The license checks; returns the verified claims.
fn check_license(
    bundle: &Bundle,
    check: &LicenseCheck<'_>,
    last_license_id: &str,
) -> Result<LicenseClaims, ReceiptError> {
    let mismatch = |m: String| ReceiptError::LicenseMismatch(m);
    let binding = &bundle.license;
    if let Some(expected) = check.deployment_id
        && expected != bundle.deployment_id
    {
        return Err(mismatch(format!(
            "the bundle is from deployment {}, expected deployment {expected}",
            bundle.deployment_id
        )));
    }
    if license_digest(&binding.token) != binding.sha256 {
        return Err(mismatch(
            "the bundle's license text does not match its sha256".into(),
        ));
    }
    if let Some(held) = check.license
        && license_digest(held) != binding.sha256
    {
        return Err(mismatch(format!(
            "the bundle names license {} (sha256 {}), not the license given (sha256 {})",
            binding.id,
            binding.sha256,
            license_digest(held)
        )));
    }
    let claims = match decode_unverified(&binding.token) {
        Ok(Unverified::OfflineLicense { claims, .. }) => claims,
        _ => {
            return Err(mismatch(
                "the bundle's license is not an offline license".into(),
            ));
        }
    };
    // Whether the license was validly signed when issued: a bundle of an expired license
    // must still verify (that is what a renewal is for).
    let at = claims.nbf.max(claims.iat);
    let verified = check
        .trust
        .verify_offline_license(&binding.token, at, Some(&bundle.deployment_id))
        .map_err(|e| {
            mismatch(format!(
                "the bundle's license does not verify ({}): {e}",
                e.code()
            ))
        })?;
    let claims = verified.claims;
    if claims.bind.as_deref() != Some(bundle.deployment_id.as_str()) {
        return Err(mismatch(format!(
            "license {} is not bound to deployment {}",
            claims.lic, bundle.deployment_id
        )));
    }
    if claims.lic != binding.id || claims.org != binding.org {
        return Err(mismatch(format!(
            "the bundle says license {} of {}, the license is {} of {}",
            binding.id, binding.org, claims.lic, claims.org
        )));
    }
    if last_license_id != claims.lic {
        return Err(mismatch(format!(
            "the last entry was recorded under license {last_license_id}, the bundle names {}",
            claims.lic
        )));
    }
    Ok(claims)
}

/// Hashes, signatures, order and links inside the bundle, in three passes so that a
/// reordering is named as one rather than as the removed day it also looks like.
fn check_chain(entries: &[SignedEntry], key: &crate::keys::PublicKey) -> Result<(), ReceiptError> {
    let mut days = Vec::with_capacity(entries.len());
    for signed in entries {
        let entry = &signed.entry;
        // validate() checked the day already.
        let day = Day::parse(&entry.day)
            .ok_or_else(|| ReceiptError::Malformed(format!("entry seq {}: bad day", entry.seq)))?;
        days.push(day);
        if !signed.hash_matches() {
            return Err(ReceiptError::Edited {
                seq: entry.seq,
                day: entry.day.clone(),
                why: "its content does not match its hash",
            });
        }
        if !signed.signature_verifies(key) {
            return Err(ReceiptError::BadSignature {
                seq: entry.seq,
                day: entry.day.clone(),
            });
        }
    }
    let pairs = || entries.windows(2).zip(days.windows(2));
    for (pair, day) in pairs() {
        let (p, e) = (&pair[0].entry, &pair[1].entry);
        if e.seq <= p.seq || day[1] <= day[0] {
            return Err(ReceiptError::Reordered {
                prev_seq: p.seq,
                prev_day: p.day.clone(),
                seq: e.seq,
                day: e.day.clone(),
            });
        }
    }
    for (pair, day) in pairs() {
        let (p, e) = (&pair[0].entry, &pair[1].entry);
        if e.seq != p.seq + 1 || day[1] != day[0].next() {
            return Err(ReceiptError::RemovedDay {
                prev_seq: p.seq,
                prev_day: p.day.clone(),
                seq: e.seq,
                day: e.day.clone(),
            });
        }
        if e.prev_hash != pair[0].hash {
            return Err(ReceiptError::Edited {
                seq: e.seq,
                day: e.day.clone(),
                why: "it does not name the previous entry's hash",
            });
        }
    }
    Ok(())
}

/// How the bundle continues `chain`: how many of its leading entries were imported before.
fn continuation(entries: &[SignedEntry], chain: &ChainState) -> Result<usize, ReceiptError> {
    let first = &entries[0].entry;
    let last = &entries[entries.len() - 1].entry;
    if last.seq <= chain.last_seq {
        return Err(ReceiptError::Replayed {
            last_in_bundle: last.seq,
            last_seq: chain.last_seq,
        });
    }
    if first.seq > chain.last_seq.saturating_add(1) {
        return Err(ReceiptError::Gap {
            last_seq: chain.last_seq,
            first_seq: first.seq,
            why: "(entries in between are missing)",
        });
    }
    if first.seq == chain.last_seq + 1 {
        if first.prev_hash != chain.last_hash {
            return Err(ReceiptError::Gap {
                last_seq: chain.last_seq,
                first_seq: first.seq,
                why: "whose prev_hash is not the last imported entry's hash",
            });
        }
        return Ok(0);
    }
    // The bundle overlaps what was imported: the overlapping entry must be the same one.
    let index = usize::try_from(chain.last_seq - first.seq).unwrap_or(usize::MAX);
    let Some(overlap) = entries.get(index) else {
        return Err(ReceiptError::Malformed(
            "seq numbering is inconsistent".into(),
        ));
    };
    if overlap.hash != chain.last_hash {
        return Err(ReceiptError::Edited {
            seq: overlap.entry.seq,
            day: overlap.entry.day.clone(),
            why: "it differs from the entry imported before under the same seq",
        });
    }
    Ok(index + 1)
}
