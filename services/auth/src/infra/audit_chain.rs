//! The audit chain as the service runs it: verifying an org's chain page by page, signing
//! checkpoints of its head, and recording token issuance in batches.
//!
//! Every mutating store path appends its own entry inside its transaction (see
//! `store::audit`). Token issuance is the exception: the hot path must not serialise on
//! an org's chain, so [`IssuanceLog`] only counts tokens in memory and a background task
//! appends one `token.issued` entry per org per flush (every second and at shutdown).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use mcpg_license_core::audit::{
    ChainVerifier, Checkpoint, VerifyReport, hex_lower, parse_hash, verify_chain,
};
use mcpg_license_core::clock::to_rfc3339;
use serde_json::json;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::infra::directory::GatewayId;
use crate::infra::keyring::Keyring;
use crate::infra::store::{
    ArchivedChain, AuditAction, CheckpointRecord, Event, Store, StoreError, TenantStore,
};

/// Rows fetched per page when verifying or exporting.
pub(crate) const PAGE: i64 = 1_000;

/// Why a checkpoint was not signed.
#[derive(Debug, Error)]
pub(crate) enum CheckpointFailure {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No active signing key.
    #[error("no active signing key")]
    NoKey,
    /// The chain does not verify: signing its head would vouch for tampered history.
    #[error("the audit chain does not verify at seq {0}; no checkpoint signed")]
    Broken(i64),
}

/// Verifies the whole chain of the handle's org.
pub async fn verify(tenant: &TenantStore<'_>) -> Result<VerifyReport, StoreError> {
    let mut verifier = ChainVerifier::new(tenant.org_id());
    verify_from(tenant, &mut verifier, 0).await?;
    Ok(verifier.finish())
}

async fn verify_from(
    tenant: &TenantStore<'_>,
    verifier: &mut ChainVerifier,
    mut after: i64,
) -> Result<(), StoreError> {
    loop {
        let page = tenant.audit_page(after, PAGE).await?;
        for record in &page {
            if !verifier.push(record) {
                return Ok(());
            }
        }
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = last.entry.seq,
            _ => return Ok(()),
        }
    }
}

/// What verifying a deleted org's archived chain found.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ArchiveVerification {
    /// Whether the entries verify and every checkpoint matches them.
    pub(crate) ok: bool,
    /// The entries, verified as the org's chain from its start (the same verifier as the
    /// live chain's).
    pub(crate) chain: VerifyReport,
    /// How many checkpoints were checked.
    pub(crate) checkpoints: usize,
    /// The seq of the first checkpoint whose hash is not the archived entry's at its seq.
    pub(crate) first_bad_checkpoint: Option<i64>,
}

/// Verifies an archived chain of `org_id`: its entries with [`verify_chain`], and that
/// each archived checkpoint signs the hash the entries have at its seq.
pub(crate) fn verify_archived(org_id: &str, chain: &ArchivedChain) -> ArchiveVerification {
    let report = verify_chain(org_id, &chain.entries);
    let first_bad_checkpoint = chain
        .checkpoints
        .iter()
        .find(|checkpoint| {
            let at = usize::try_from(checkpoint.seq - 1).ok();
            let entry = at.and_then(|index| chain.entries.get(index));
            let verified = checkpoint.seq <= report.head_seq;
            !verified || entry.is_none_or(|entry| entry.hash != checkpoint.hash)
        })
        .map(|checkpoint| checkpoint.seq);
    ArchiveVerification {
        ok: report.ok && first_bad_checkpoint.is_none(),
        chain: report,
        checkpoints: chain.checkpoints.len(),
        first_bad_checkpoint,
    }
}

/// Signs the org's current head with the active signing key and stores the checkpoint.
/// The entries since the newest checkpoint are verified first.
pub(crate) async fn sign_checkpoint(
    tenant: &TenantStore<'_>,
    keyring: &Keyring,
    now: i64,
) -> Result<CheckpointRecord, CheckpointFailure> {
    let snapshot = keyring.snapshot().ok_or(CheckpointFailure::NoKey)?;
    let org_id = tenant.org_id();
    let mut verifier = match tenant.latest_checkpoint().await? {
        Some(last) => match parse_hash(&last.hash) {
            Some(hash) => ChainVerifier::resume(org_id, last.seq, hash),
            None => ChainVerifier::new(org_id),
        },
        None => ChainVerifier::new(org_id),
    };
    let start = verifier.head().0;
    verify_from(tenant, &mut verifier, start).await?;
    let (seq, head_hash) = verifier.head();
    let report = verifier.finish();
    if let Some(bad) = report.first_bad_seq {
        return Err(CheckpointFailure::Broken(bad));
    }
    let checkpoint = Checkpoint {
        origin: Checkpoint::origin_for(org_id),
        seq,
        head_hash,
        time: to_rfc3339(now),
    };
    let note = checkpoint.sign(snapshot.signer.key());
    let hash = hex_lower(&head_hash);
    tenant.insert_checkpoint(seq, &hash, &note, now).await?;
    Ok(CheckpointRecord {
        seq,
        hash,
        note,
        created_at: now,
    })
}

/// Signs a checkpoint for every chain whose head moved since its newest checkpoint.
pub(crate) async fn checkpoint_moved_heads(
    store: &Store,
    keyring: &Keyring,
    now: i64,
) -> Result<usize, CheckpointFailure> {
    let mut signed = 0;
    for (org_id, _) in store.audit_heads_unsigned().await? {
        match sign_checkpoint(&store.tenant(&org_id), keyring, now).await {
            Ok(_) => signed += 1,
            Err(CheckpointFailure::Broken(seq)) => {
                tracing::error!(org_id = %org_id, seq, "audit chain does not verify");
            }
            Err(other) => return Err(other),
        }
    }
    Ok(signed)
}

/// Tokens issued since the last flush, per org.
#[derive(Debug, Default)]
pub(crate) struct IssuanceLog {
    pending: Mutex<HashMap<String, Batch>>,
}

#[derive(Debug, Default)]
struct Batch {
    count: u64,
    /// Distinct gateways, compact (listed as text, in text order, when written).
    gateways: HashSet<GatewayId>,
    /// Token ids in issue order, as 16-byte UUIDs (no allocation per token).
    jtis: Vec<uuid::Uuid>,
}

impl IssuanceLog {
    /// Records one issued token (cheap: one short lock, no I/O).
    pub(crate) fn record(&self, org_id: &str, gateway_id: &GatewayId, jti: uuid::Uuid) {
        if let Ok(mut pending) = self.pending.lock() {
            let batch = match pending.get_mut(org_id) {
                Some(batch) => batch,
                None => pending.entry(org_id.to_owned()).or_default(),
            };
            batch.count += 1;
            if !batch.gateways.contains(gateway_id) {
                batch.gateways.insert(gateway_id.clone());
            }
            batch.jtis.push(jti);
        }
    }

    /// Appends one `token.issued` entry per org with tokens since the last flush: the
    /// count, the gateway ids and the SHA-256 of the token ids (each followed by a newline,
    /// in issue order). Batches that fail to append are kept for the next flush.
    pub(crate) async fn flush(&self, store: &Store, now: i64) -> Result<usize, StoreError> {
        let drained: Vec<(String, Batch)> = match self.pending.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => return Ok(0),
        };
        let mut appended = 0;
        let mut failure = None;
        for (org_id, batch) in drained {
            let gateways: BTreeSet<String> = batch.gateways.iter().map(|g| g.to_string()).collect();
            let event = Event::new(
                AuditAction::TokenIssued,
                "federation/token",
                json!({
                    "count": batch.count,
                    "gateways": gateways,
                    "jti_sha256": uuid_digest(&batch.jtis),
                }),
            );
            match store.tenant(&org_id).append_audit(&[event], now).await {
                Ok(_) => appended += 1,
                Err(error) => {
                    self.restore(org_id, batch);
                    failure = Some(error);
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(appended),
        }
    }

    fn restore(&self, org_id: String, mut batch: Batch) {
        if let Ok(mut pending) = self.pending.lock() {
            let into = pending.entry(org_id).or_default();
            into.count += batch.count;
            into.gateways.extend(batch.gateways);
            batch.jtis.append(&mut into.jtis);
            into.jtis = batch.jtis;
        }
    }
}

/// SHA-256 (hex) of token ids, each followed by a newline, in issue order.
pub fn jti_digest(jtis: &[String]) -> String {
    let mut hasher = Sha256::new();
    for jti in jtis {
        hasher.update(jti.as_bytes());
        hasher.update(b"\n");
    }
    hex_lower(&hasher.finalize())
}

/// [`jti_digest`] of UUID token ids in their hyphenated lowercase form.
fn uuid_digest(jtis: &[uuid::Uuid]) -> String {
    let mut hasher = Sha256::new();
    let mut buffer = uuid::Uuid::encode_buffer();
    for jti in jtis {
        hasher.update(jti.hyphenated().encode_lower(&mut buffer).as_bytes());
        hasher.update(b"\n");
    }
    hex_lower(&hasher.finalize())
}

#[cfg(test)]
mod digest_tests {
    use super::{jti_digest, uuid_digest};

    #[test]
    fn the_uuid_digest_is_the_digest_of_the_token_ids_as_issued() {
        let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::new_v4()).collect();
        let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(uuid_digest(&ids), jti_digest(&texts));
        assert_ne!(uuid_digest(&ids[..2]), jti_digest(&texts));
    }
}

#[cfg(test)]
mod archive_tests {
    use mcpg_license_core::audit::{AuditEntry, AuditRecord, GENESIS, details_digest, parse_hash};

    use super::verify_archived;
    use crate::infra::store::{ArchivedChain, ArchivedCheckpoint};

    fn chain(org_id: &str, len: i64) -> Vec<AuditRecord> {
        let mut records: Vec<AuditRecord> = Vec::new();
        for seq in 1..=len {
            let prev = records
                .last()
                .and_then(|r| parse_hash(&r.hash))
                .unwrap_or(GENESIS);
            let entry = AuditEntry {
                org_id: org_id.into(),
                seq,
                time: "2026-01-01T00:00:00Z".into(),
                actor: "system".into(),
                action: "org.update".into(),
                target: "acme".into(),
                request_id: String::new(),
                details_sha256: details_digest("{}"),
            };
            records.push(AuditRecord::link(entry, "{}".into(), &prev));
        }
        records
    }

    fn checkpoint(seq: i64, hash: &str) -> ArchivedCheckpoint {
        ArchivedCheckpoint {
            seq,
            hash: hash.into(),
            note: String::new(),
            created_at: 0,
        }
    }

    #[test]
    fn an_archived_checkpoint_must_match_the_entry_at_its_seq() {
        let entries = chain("org-1", 3);
        let good = ArchivedChain {
            checkpoints: vec![checkpoint(2, &entries[1].hash)],
            entries: entries.clone(),
        };
        let report = verify_archived("org-1", &good);
        assert!(report.ok);
        assert_eq!(report.chain.head_seq, 3);
        let wrong_hash = ArchivedChain {
            checkpoints: vec![checkpoint(2, &entries[0].hash)],
            entries: entries.clone(),
        };
        assert_eq!(
            verify_archived("org-1", &wrong_hash).first_bad_checkpoint,
            Some(2)
        );
        let past_the_head = ArchivedChain {
            checkpoints: vec![checkpoint(4, &entries[2].hash)],
            entries: entries.clone(),
        };
        assert!(!verify_archived("org-1", &past_the_head).ok);
        assert!(!verify_archived("org-2", &good).ok, "another org's chain");
    }
}
