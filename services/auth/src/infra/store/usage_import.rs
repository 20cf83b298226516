//! The import of an air-gapped deployment's usage receipts (issue 15): in ONE write
//! transaction the chain on record for the deployment is read, the bundle is verified
//! against it (by the caller's closure: `mcpg_license_core::usage::verify_bundle`), the new
//! days are inserted (a day already stored is never overwritten: the import is refused),
//! the chain head is moved with a compare-and-swap on the head read, and one
//! `usage.import` audit entry is appended. A refusal writes nothing.

use mcpg_license_core::usage::{ChainState, ReceiptError, VerifiedBundle};
use serde_json::json;

use super::audit_log::{AuditAction, Event};
use super::{StoreError, TenantStore, in_tx, to_json_text};

/// What the caller verifies the bundle with: the chain on record for its deployment
/// (`None` before its first import) and, when the bundle's key is on record for another
/// deployment of the org, that deployment's id (the bundle must then come from it).
pub(crate) struct OnRecord {
    /// The chain of the bundle's deployment.
    pub(crate) chain: Option<ChainState>,
    /// The deployment the bundle's key was imported for, when it is another one.
    pub(crate) key_deployment: Option<String>,
}

/// How an import ended.
#[derive(Debug)]
pub(crate) enum ImportOutcome {
    /// The new days were stored.
    Imported(Box<VerifiedBundle>),
    /// The bundle was refused (nothing was written).
    Refused(ReceiptError),
    /// Another import of the same deployment committed first (nothing was written): the
    /// message says what collided.
    Raced(String),
}

#[derive(sqlx::FromRow)]
struct ChainRow {
    deployment_key: String,
    deployment_id: String,
    last_seq: i64,
    last_hash: String,
}

const CHAIN_SQL: &str = "SELECT deployment_key, deployment_id, last_seq, last_hash \
     FROM usage_receipt_chains WHERE org_id = $1 AND (deployment_id = $2 OR deployment_key = $3) \
     ORDER BY deployment_key";

const INSERT_DAY: &str = "INSERT INTO usage_imported_days (org_id, deployment_id, day, \
     gateways_active, tokens, peak_gateways, plugins, version) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (org_id, deployment_id, day) DO NOTHING";

const INSERT_CHAIN: &str = "INSERT INTO usage_receipt_chains (org_id, deployment_key, \
     deployment_id, last_seq, last_hash, imported_at) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (org_id, deployment_key) DO NOTHING";

const ADVANCE_CHAIN: &str = "UPDATE usage_receipt_chains SET last_seq = $4, last_hash = $5, \
     imported_at = $6 WHERE org_id = $1 AND deployment_key = $2 AND deployment_id = $3 \
     AND last_seq = $7 AND last_hash = $8";

fn stored(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// What is on record for a bundle of `deployment_id` signed with `deployment_key`.
fn on_record(rows: Vec<ChainRow>, deployment_id: &str) -> Result<OnRecord, StoreError> {
    let mut record = OnRecord {
        chain: None,
        key_deployment: None,
    };
    for row in rows {
        if row.deployment_id == deployment_id {
            record.chain = Some(ChainState {
                deployment_key: row.deployment_key,
                last_seq: u64::try_from(row.last_seq)
                    .map_err(|_| StoreError::Corrupt("a negative receipt chain seq".into()))?,
                last_hash: row.last_hash,
            });
        } else {
            record.key_deployment = Some(row.deployment_id);
        }
    }
    Ok(record)
}

impl TenantStore<'_> {
    /// Imports a bundle of `deployment_id` signed with `deployment_key` (both as the
    /// bundle says, before verification): `verify` gets what is on record and returns the
    /// verified bundle or the refusal; the whole runs in one write transaction.
    pub(crate) async fn import_usage(
        &self,
        deployment_id: &str,
        deployment_key: &str,
        now: i64,
        verify: impl FnOnce(&OnRecord) -> Result<VerifiedBundle, ReceiptError>,
    ) -> Result<ImportOutcome, StoreError> {
        let org = self.org_id();
        let actor = self.actor().into_owned();
        Ok(in_tx!(self.store(), tx => {
            let rows: Vec<ChainRow> = sqlx::query_as(CHAIN_SQL)
                .bind(org).bind(deployment_id).bind(deployment_key)
                .fetch_all(&mut *tx).await?;
            let record = on_record(rows, deployment_id)?;
            let verified = match verify(&record) {
                Ok(verified) => verified,
                // Dropping the transaction rolls it back: nothing was written.
                Err(refusal) => return Ok(ImportOutcome::Refused(refusal)),
            };
            for signed in &verified.entries {
                let e = &signed.entry;
                let plugins = to_json_text(&e.plugins)?;
                let inserted = sqlx::query(INSERT_DAY)
                    .bind(org).bind(&verified.deployment_id).bind(&e.day)
                    .bind(i64::from(e.gateways_active)).bind(stored(e.tokens))
                    .bind(i64::from(e.peak_gateways)).bind(&plugins).bind(&e.version)
                    .execute(&mut *tx).await?
                    .rows_affected();
                if inserted != 1 {
                    return Ok(ImportOutcome::Raced(format!(
                        "day {} of deployment {} is already imported (another import ran at \
                         the same time); nothing was written",
                        e.day, verified.deployment_id
                    )));
                }
            }
            let head = &verified.chain;
            let moved = match &record.chain {
                None => sqlx::query(INSERT_CHAIN)
                    .bind(org).bind(&head.deployment_key).bind(&verified.deployment_id)
                    .bind(stored(head.last_seq)).bind(&head.last_hash).bind(now)
                    .execute(&mut *tx).await?
                    .rows_affected(),
                Some(before) => sqlx::query(ADVANCE_CHAIN)
                    .bind(org).bind(&before.deployment_key).bind(&verified.deployment_id)
                    .bind(stored(head.last_seq)).bind(&head.last_hash).bind(now)
                    .bind(stored(before.last_seq)).bind(&before.last_hash)
                    .execute(&mut *tx).await?
                    .rows_affected(),
            };
            if moved != 1 {
                return Ok(ImportOutcome::Raced(format!(
                    "the receipt chain of deployment {} moved while this import ran; nothing \
                     was written",
                    verified.deployment_id
                )));
            }
            let details = import_details(&verified);
            let event = Event::new(
                AuditAction::UsageImport,
                format!("usage/{}", verified.deployment_id),
                details,
            );
            tx.append_audit(org, &actor, &[event], now).await?;
            ImportOutcome::Imported(Box::new(verified))
        }))
    }
}

/// The facts the `usage.import` entry records.
fn import_details(verified: &VerifiedBundle) -> serde_json::Value {
    let first = verified.entries.first().map(|s| &s.entry);
    let last = verified.entries.last().map(|s| &s.entry);
    json!({
        "deployment": verified.deployment_id,
        "deployment_key": verified.deployment_key,
        "license": verified.license.lic,
        "days": verified.entries.len(),
        "already_imported": verified.already_imported,
        "first_day": first.map(|e| e.day.clone()),
        "last_day": last.map(|e| e.day.clone()),
        "first_seq": first.map(|e| e.seq),
        "last_seq": last.map(|e| e.seq),
        "chain_hash": verified.chain.last_hash,
    })
}
