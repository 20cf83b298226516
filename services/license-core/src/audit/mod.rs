//! The per-org tamper-evident audit chain: the entry, its canonical form and hash, the
//! verification of a sequence of stored rows, and signed checkpoints of a chain's head.
//!
//! `hash(n) = SHA-256("mcpg-audit-v1\0" ‖ hash(n-1) ‖ canonical(entry n))`, with
//! `hash(0)` = 32 zero bytes and `canonical` the RFC 8785 form of the entry's eight members
//! (`org_id`, `seq`, `time`, `actor`, `action`, `target`, `request_id`, `details_sha256`).
//! The details themselves are kept beside the entry; only their SHA-256 is chained, so a
//! row's details can be checked against the chain. Pure: the service, `mcpg-ctl` and any
//! offline verifier share this code.

pub mod canonical;
pub mod checkpoint;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use checkpoint::{Checkpoint, CheckpointError};

/// Domain separation prefix of every chain hash.
pub const HASH_DOMAIN: &[u8] = b"mcpg-audit-v1\0";
/// The `prev_hash` of an org's first entry.
pub const GENESIS: [u8; 32] = [0; 32];
/// The chain of service-wide events that belong to no org (signing key rotation, global
/// admin tokens, the bootstrap token).
pub const SYSTEM_CHAIN: &str = "_system";

/// One audit entry: what is chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The org whose chain this is ([`SYSTEM_CHAIN`] for service-wide events).
    pub org_id: String,
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When (RFC 3339 UTC).
    pub time: String,
    /// Who: a principal identity such as `token:<id>`, `user:<id>`, `system`.
    pub actor: String,
    /// What, e.g. `workspace.create`.
    pub action: String,
    /// On what, e.g. a path `acme/platform/prod`.
    pub target: String,
    /// The request's `x-request-id` (empty for background work).
    pub request_id: String,
    /// SHA-256 (hex) of the details text.
    pub details_sha256: String,
}

impl AuditEntry {
    /// The RFC 8785 canonical JSON of the entry.
    pub fn canonical(&self) -> String {
        use canonical::Value::{Int, Str};
        canonical::object(&[
            ("org_id", Str(&self.org_id)),
            ("seq", Int(self.seq)),
            ("time", Str(&self.time)),
            ("actor", Str(&self.actor)),
            ("action", Str(&self.action)),
            ("target", Str(&self.target)),
            ("request_id", Str(&self.request_id)),
            ("details_sha256", Str(&self.details_sha256)),
        ])
    }

    /// The entry's chain hash after `prev`.
    pub fn chain_hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(HASH_DOMAIN);
        hasher.update(prev);
        hasher.update(self.canonical().as_bytes());
        hasher.finalize().into()
    }
}

/// SHA-256 (hex) of a details text.
pub fn details_digest(details: &str) -> String {
    hex_lower(&Sha256::digest(details.as_bytes()))
}

/// A stored (or exported) entry: the entry, its details, and the hashes linking it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The chained entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The details (JSON text) whose SHA-256 the entry carries.
    pub details: String,
    /// The previous entry's hash (hex).
    pub prev_hash: String,
    /// This entry's hash (hex).
    pub hash: String,
}

impl AuditRecord {
    /// Builds the record that follows `prev` (its hash) for `entry` and `details`.
    pub fn link(entry: AuditEntry, details: String, prev: &[u8; 32]) -> Self {
        let hash = entry.chain_hash(prev);
        Self {
            entry,
            details,
            prev_hash: hex_lower(prev),
            hash: hex_lower(&hash),
        }
    }
}

/// The outcome of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether every entry verified.
    pub ok: bool,
    /// How many entries verified before the first bad one (all of them when `ok`).
    pub checked: i64,
    /// The first position that does not verify: a changed, missing, reordered or foreign
    /// entry.
    pub first_bad_seq: Option<i64>,
    /// The last verified position (0 for an empty chain).
    pub head_seq: i64,
    /// Its hash (hex; the genesis hash for an empty chain).
    pub head_hash: String,
}

/// Verifies `records`, in the order given, as the chain of `org_id` from its start.
pub fn verify_chain<'a>(
    org_id: &str,
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> VerifyReport {
    let mut verifier = ChainVerifier::new(org_id);
    for record in records {
        if !verifier.push(record) {
            break;
        }
    }
    verifier.finish()
}

/// Incremental chain verification, for streams too long to hold in memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    org_id: String,
    head: [u8; 32],
    head_seq: i64,
    first_bad_seq: Option<i64>,
}

impl ChainVerifier {
    /// A verifier of `org_id`'s chain from its start.
    pub fn new(org_id: &str) -> Self {
        Self {
            org_id: org_id.to_owned(),
            head: GENESIS,
            head_seq: 0,
            first_bad_seq: None,
        }
    }

    /// A verifier of `org_id`'s chain that continues after a head already trusted (a
    /// verified checkpoint's seq and hash).
    pub fn resume(org_id: &str, seq: i64, hash: [u8; 32]) -> Self {
        Self {
            org_id: org_id.to_owned(),
            head: hash,
            head_seq: seq,
            first_bad_seq: None,
        }
    }

    /// Checks the next record; returns whether the chain is still intact.
    pub fn push(&mut self, record: &AuditRecord) -> bool {
        if self.first_bad_seq.is_some() {
            return false;
        }
        let expected = self.head_seq + 1;
        let entry = &record.entry;
        let hash = entry.chain_hash(&self.head);
        let intact = entry.org_id == self.org_id
            && entry.seq == expected
            && record.prev_hash == hex_lower(&self.head)
            && details_digest(&record.details) == entry.details_sha256
            && record.hash == hex_lower(&hash);
        if intact {
            self.head = hash;
            self.head_seq = expected;
        } else {
            self.first_bad_seq = Some(expected);
        }
        intact
    }

    /// The last verified position and its hash.
    pub fn head(&self) -> (i64, [u8; 32]) {
        (self.head_seq, self.head)
    }

    /// The report.
    pub fn finish(self) -> VerifyReport {
        VerifyReport {
            ok: self.first_bad_seq.is_none(),
            checked: self.head_seq,
            first_bad_seq: self.first_bad_seq,
            head_seq: self.head_seq,
            head_hash: hex_lower(&self.head),
        }
    }
}

/// Lower-case hex.
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// Parses 64 hex digits.
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(org: &str, n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let details = format!("{{\"n\":{seq}}}");
                let entry = AuditEntry {
                    org_id: org.into(),
                    seq,
                    time: "2026-11-23T10:00:00Z".into(),
                    actor: "token:t1".into(),
                    action: "workspace.create".into(),
                    target: format!("acme/ws{seq}"),
                    request_id: format!("req-{seq}"),
                    details_sha256: details_digest(&details),
                };
                let record = AuditRecord::link(entry, details, &prev);
                prev = parse_hash(&record.hash).expect("hex");
                record
            })
            .collect()
    }

    #[test]
    fn the_hash_is_sha256_of_domain_prev_and_canonical_entry() {
        let records = chain("org1", 1);
        let entry = &records[0].entry;
        let mut hasher = Sha256::new();
        hasher.update(b"mcpg-audit-v1\0");
        hasher.update([0u8; 32]);
        hasher.update(entry.canonical().as_bytes());
        assert_eq!(records[0].hash, hex_lower(&hasher.finalize()));
        assert!(
            entry
                .canonical()
                .starts_with("{\"action\":\"workspace.create\",\"actor\"")
        );
    }

    #[test]
    fn an_intact_chain_verifies_and_reports_its_head() {
        let records = chain("org1", 5);
        let report = verify_chain("org1", &records);
        assert!(report.ok);
        assert_eq!(report.checked, 5);
        assert_eq!(report.head_seq, 5);
        assert_eq!(report.head_hash, records[4].hash);
        assert_eq!(report.first_bad_seq, None);
        let empty = verify_chain("org1", &[]);
        assert!(empty.ok && empty.head_seq == 0 && empty.head_hash == hex_lower(&GENESIS));
    }

    #[test]
    fn tampering_is_found_at_the_first_bad_position() {
        let records = chain("org1", 6);
        let bad_at = |records: &[AuditRecord]| verify_chain("org1", records).first_bad_seq;
        let mut changed = records.clone();
        changed[2].entry.actor = "token:evil".into();
        assert_eq!(bad_at(&changed), Some(3));
        let mut details = records.clone();
        details[3].details = "{\"n\":99}".into();
        assert_eq!(bad_at(&details), Some(4));
        let mut deleted = records.clone();
        deleted.remove(1);
        assert_eq!(bad_at(&deleted), Some(2));
        let mut swapped = records.clone();
        swapped.swap(3, 4);
        assert_eq!(bad_at(&swapped), Some(4));
        let mut spliced = records.clone();
        spliced[4] = chain("org2", 6)[4].clone();
        assert_eq!(bad_at(&spliced), Some(5));
        assert_eq!(verify_chain("org2", &records).first_bad_seq, Some(1));
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let bytes: [u8; 32] = core::array::from_fn(|i| (i * 9) as u8);
        assert_eq!(parse_hash(&hex_lower(&bytes)), Some(bytes));
        assert_eq!(parse_hash("zz"), None);
    }
}
