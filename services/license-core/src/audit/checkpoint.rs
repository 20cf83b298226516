//! Signed checkpoints of an audit chain's head, in the signed-note format (C2SP
//! `signed-note`, `tlog-checkpoint` layout):
//!
//! ```text
//! mcpg-audit/<org id>
//! <seq>
//! <base64 head hash>
//! time <RFC 3339 UTC>
//!
//! — <key name> <base64(key hash ‖ Ed25519 signature)>
//! ```
//!
//! The signature covers the body (every line up to and including the one before the blank
//! line, each with its newline). The key name is the signing key's `k4.pid` id; the key hash
//! is the first 4 bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)` (0x01: Ed25519).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{AuditRecord, hex_lower, verify_chain};
use crate::keys::{PublicKey, SigningKey};

/// The prefix of a checkpoint's origin line; the org id follows.
pub const ORIGIN_PREFIX: &str = "mcpg-audit/";

/// The head of one org's chain at a point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// `mcpg-audit/<org id>`.
    pub origin: String,
    /// The head's position.
    pub seq: i64,
    /// The head's hash.
    pub head_hash: [u8; 32],
    /// When it was signed (RFC 3339 UTC).
    pub time: String,
}

/// Why a checkpoint or an export does not verify.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CheckpointError {
    /// Not a signed note of the expected shape.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// No signature by the trusted key.
    #[error("the checkpoint carries no signature by key {0}")]
    NoSignature(String),
    /// A signature by the trusted key that does not verify.
    #[error("the checkpoint's signature does not verify")]
    BadSignature,
    /// The checkpoint is of another org's chain.
    #[error("the checkpoint is of {found}, the export of {expected}")]
    WrongOrigin {
        /// The export's origin.
        expected: String,
        /// The checkpoint's.
        found: String,
    },
    /// The export's chain is broken.
    #[error("the export's chain is broken at seq {0}")]
    BrokenChain(i64),
    /// The export ends before the checkpoint.
    #[error("the export ends at seq {head} before the checkpoint's seq {seq}")]
    TooShort {
        /// The export's last entry.
        head: i64,
        /// The checkpoint's head.
        seq: i64,
    },
    /// The export's entry at the checkpoint's seq has another hash: history was rewritten.
    #[error("the export's hash at seq {0} differs from the checkpoint's")]
    Diverged(i64),
}

impl Checkpoint {
    /// The origin line of `org_id`'s chain.
    pub fn origin_for(org_id: &str) -> String {
        format!("{ORIGIN_PREFIX}{org_id}")
    }

    /// The org id named by the origin.
    pub fn org_id(&self) -> Option<&str> {
        self.origin.strip_prefix(ORIGIN_PREFIX)
    }

    /// The signed body.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\ntime {}\n",
            self.origin,
            self.seq,
            STANDARD.encode(self.head_hash),
            self.time
        )
    }

    /// The signed note, signed by `key`.
    pub fn sign(&self, key: &SigningKey) -> String {
        let body = self.body();
        let name = key.kid().as_str();
        let mut blob = key_hash(name, key.public_key()).to_vec();
        blob.extend_from_slice(&key.sign(body.as_bytes()));
        format!("{body}\n\u{2014} {name} {}\n", STANDARD.encode(blob))
    }

    /// Parses `note` and verifies its signature by `key`.
    pub fn verify(note: &str, key: &PublicKey) -> Result<Self, CheckpointError> {
        let split = note.find("\n\n").ok_or(CheckpointError::Malformed(
            "no blank line before the signatures",
        ))?;
        let (body, signatures) = (&note[..=split], &note[split + 2..]);
        let checkpoint = Self::parse_body(body)?;
        let name = key.kid().as_str();
        let expected_hash = key_hash(name, key);
        let mut found = false;
        for line in signatures.lines().filter(|line| !line.is_empty()) {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or(CheckpointError::Malformed(
                    "a signature line lacks the em dash",
                ))?;
            let (line_name, blob) = rest.split_once(' ').ok_or(CheckpointError::Malformed(
                "a signature line lacks its signature",
            ))?;
            if line_name != name {
                continue;
            }
            let blob = STANDARD
                .decode(blob)
                .map_err(|_| CheckpointError::Malformed("a signature is not base64"))?;
            if blob.len() != 68 || blob[..4] != expected_hash {
                continue;
            }
            found = true;
            let mut signature = [0u8; 64];
            signature.copy_from_slice(&blob[4..]);
            if key.verify(body.as_bytes(), &signature) {
                return Ok(checkpoint);
            }
        }
        if found {
            Err(CheckpointError::BadSignature)
        } else {
            Err(CheckpointError::NoSignature(name.to_owned()))
        }
    }

    fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let mut lines = body.lines();
        let origin = lines
            .next()
            .filter(|line| line.starts_with(ORIGIN_PREFIX))
            .ok_or(CheckpointError::Malformed(
                "the origin is not mcpg-audit/<org>",
            ))?;
        let seq = lines
            .next()
            .and_then(|line| {
                line.parse::<i64>()
                    .ok()
                    .filter(|seq| seq.to_string() == line)
            })
            .filter(|seq| *seq >= 0)
            .ok_or(CheckpointError::Malformed("the seq line is not a number"))?;
        let head_hash: [u8; 32] = lines
            .next()
            .and_then(|line| STANDARD.decode(line).ok())
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(CheckpointError::Malformed(
                "the hash line is not a base64 SHA-256",
            ))?;
        let time = lines
            .next()
            .and_then(|line| line.strip_prefix("time "))
            .ok_or(CheckpointError::Malformed("the time line is missing"))?;
        Ok(Self {
            origin: origin.to_owned(),
            seq,
            head_hash,
            time: time.to_owned(),
        })
    }

    /// Checks an export of the chain against this (already verified) checkpoint: the
    /// export is of the checkpoint's org, its chain verifies, and its entry at the
    /// checkpoint's seq has the checkpoint's hash. Returns the export's head seq.
    pub fn check_export(
        &self,
        org_id: &str,
        records: &[AuditRecord],
    ) -> Result<i64, CheckpointError> {
        let expected = Self::origin_for(org_id);
        if self.origin != expected {
            return Err(CheckpointError::WrongOrigin {
                expected,
                found: self.origin.clone(),
            });
        }
        let report = verify_chain(org_id, records);
        if let Some(bad) = report.first_bad_seq {
            return Err(CheckpointError::BrokenChain(bad));
        }
        if report.head_seq < self.seq {
            return Err(CheckpointError::TooShort {
                head: report.head_seq,
                seq: self.seq,
            });
        }
        let at = usize::try_from(self.seq).unwrap_or(usize::MAX);
        let hash = match at.checked_sub(1).and_then(|index| records.get(index)) {
            Some(record) => record.hash.clone(),
            None => hex_lower(&super::GENESIS),
        };
        if hash != hex_lower(&self.head_hash) {
            return Err(CheckpointError::Diverged(self.seq));
        }
        Ok(report.head_seq)
    }
}

fn key_hash(name: &str, key: &PublicKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n\x01");
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, GENESIS, details_digest, parse_hash};

    fn records(org: &str, n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let entry = AuditEntry {
                    org_id: org.into(),
                    seq,
                    time: "2026-11-23T10:00:00Z".into(),
                    actor: "system".into(),
                    action: "token.issued".into(),
                    target: org.into(),
                    request_id: String::new(),
                    details_sha256: details_digest("{}"),
                };
                let record = AuditRecord::link(entry, "{}".into(), &prev);
                prev = parse_hash(&record.hash).expect("hex");
                record
            })
            .collect()
    }

    fn checkpoint_of(org: &str, records: &[AuditRecord], seq: i64) -> Checkpoint {
        let index = usize::try_from(seq - 1).expect("seq >= 1");
        Checkpoint {
            origin: Checkpoint::origin_for(org),
            seq,
            head_hash: parse_hash(&records[index].hash).expect("hex"),
            time: "2026-11-23T11:00:00Z".into(),
        }
    }

    #[test]
    fn a_signed_checkpoint_verifies_with_its_key_only() {
        let key = SigningKey::generate().expect("key");
        let other = SigningKey::generate().expect("key");
        let chain = records("org1", 3);
        let checkpoint = checkpoint_of("org1", &chain, 3);
        let note = checkpoint.sign(&key);
        assert!(note.starts_with("mcpg-audit/org1\n3\n"));
        assert!(note.contains(&format!("\n\n\u{2014} {} ", key.kid())));
        assert_eq!(
            Checkpoint::verify(&note, key.public_key()),
            Ok(checkpoint.clone())
        );
        assert_eq!(
            Checkpoint::verify(&note, other.public_key()),
            Err(CheckpointError::NoSignature(other.kid().to_string()))
        );
        let forged = note.replacen("\n3\n", "\n2\n", 1);
        assert_eq!(
            Checkpoint::verify(&forged, key.public_key()),
            Err(CheckpointError::BadSignature)
        );
        assert!(matches!(
            Checkpoint::verify("garbage", key.public_key()),
            Err(CheckpointError::Malformed(_))
        ));
    }

    #[test]
    fn an_export_is_checked_against_a_checkpoint() {
        let chain = records("org1", 5);
        let checkpoint = checkpoint_of("org1", &chain, 3);
        assert_eq!(checkpoint.check_export("org1", &chain), Ok(5));
        assert_eq!(
            checkpoint.check_export("org1", &chain[..2]),
            Err(CheckpointError::TooShort { head: 2, seq: 3 })
        );
        assert!(matches!(
            checkpoint.check_export("org2", &records("org2", 5)),
            Err(CheckpointError::WrongOrigin { .. })
        ));
        // A rewritten history that is internally consistent still differs from the
        // checkpoint.
        let mut rewritten = records("org1", 5);
        rewritten[0].entry.actor = "someone else".into();
        let rewritten = relink(rewritten);
        assert_eq!(
            checkpoint.check_export("org1", &rewritten),
            Err(CheckpointError::Diverged(3))
        );
        let mut broken = chain.clone();
        broken[1].entry.target = "x".into();
        assert_eq!(
            checkpoint.check_export("org1", &broken),
            Err(CheckpointError::BrokenChain(2))
        );
    }

    fn relink(records: Vec<AuditRecord>) -> Vec<AuditRecord> {
        let mut prev = GENESIS;
        records
            .into_iter()
            .map(|record| {
                let linked = AuditRecord::link(record.entry, record.details, &prev);
                prev = parse_hash(&linked.hash).expect("hex");
                linked
            })
            .collect()
    }
}
