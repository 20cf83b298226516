//! The per-org audit chain in the database: the append that every mutating store path
//! runs inside its own transaction, and the reads behind the audit API.
//!
//! Writers of one org are serialised on its head row (`audit_heads`): `SELECT … FOR
//! UPDATE` on PostgreSQL; on SQLite every write transaction is `BEGIN IMMEDIATE` (see
//! `in_tx!`), which serialises all writers. `UNIQUE (org_id, seq)` backs both. The chain
//! arithmetic (canonical form, hash, verification) is `mcpg_license_core::audit`.

use mcpg_license_core::audit::{AuditEntry, AuditRecord, GENESIS, details_digest, parse_hash};
use mcpg_license_core::clock::to_rfc3339;
use serde_json::Value;
use sqlx::{FromRow, PgConnection, SqliteConnection};

use super::{StoreError, to_json_text};

/// Who caused a change, as the chain records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `admin:<token id>` (a global admin token; the bootstrap token is one),
    /// `token:<id>` (an org API key), `user:<user id>` (a personal token),
    /// `admin:<id> as impersonation:<id>`, or `system` (background work).
    pub id: String,
    /// The request's `x-request-id`, empty for background work.
    pub request_id: String,
}

impl Actor {
    /// The service itself (start-up, key life cycle, token issuance batches).
    pub fn system() -> Self {
        Self {
            id: "system".into(),
            request_id: String::new(),
        }
    }
}

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// An org was created.
    OrgCreate,
    /// An org's name, status or trial changed.
    OrgUpdate,
    /// An org was suspended ahead of its deletion.
    OrgSuspend,
    /// An org was deleted (its chain stays).
    OrgDelete,
    /// A workspace was created.
    WorkspaceCreate,
    /// A workspace was deleted.
    WorkspaceDelete,
    /// An environment was created.
    EnvironmentCreate,
    /// An environment was deleted.
    EnvironmentDelete,
    /// A gateway was registered.
    GatewayRegister,
    /// A gateway's credential was revoked.
    GatewayRevoke,
    /// The license was set.
    LicenseSet,
    /// The license was revoked.
    LicenseRevoke,
    /// A role was bound.
    RoleGrant,
    /// A role binding was removed.
    RoleRevoke,
    /// A personal token was issued.
    UserTokenCreate,
    /// A personal token was revoked.
    UserTokenRevoke,
    /// An API token was issued (org key or global admin token).
    ApiTokenCreate,
    /// The bootstrap admin token was issued.
    BootstrapToken,
    /// A global admin got an impersonation token for the org.
    Impersonate,
    /// A signing key was installed (first key, rotation or import).
    KeyInsert,
    /// A signing key's certificate was renewed.
    KeyCertificate,
    /// Another certificate of a signing key was added (a root rollover).
    KeyCertificateAdd,
    /// A certificate of a signing key was removed.
    KeyCertificateRemove,
    /// Signing keys moved along their life cycle.
    KeyAdvance,
    /// The database's development root was stored (generated, or adopted from a data dir).
    KeyRoot,
    /// A batch of issued federation tokens.
    TokenIssued,
    /// An API token (org key or global admin token) was revoked.
    ApiTokenRevoke,
    /// The org's OIDC login configuration was set.
    OidcSet,
    /// The org's OIDC login configuration was removed.
    OidcDelete,
    /// A signed revocation list was uploaded.
    RevocationsUpload,
    /// A tenants.yaml reconciliation changed the org.
    TenantsApply,
    /// A deleted org's archive was purged after its retention (`_system` chain).
    ArchivePurge,
    /// A deleted org was restored from its archive.
    ArchiveRestore,
    /// A workspace's or environment's plugin set was set.
    PluginSetPut,
    /// A workspace's or environment's plugin set was removed.
    PluginSetDelete,
    /// An org's usage exceeded a license limit on a day (once per org, limit and day).
    UsageOverLimit,
    /// Days from an air-gapped deployment's signed receipts were imported.
    UsageImport,
}

impl AuditAction {
    /// The action's name in the chain.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::OrgCreate => "org.create",
            Self::OrgUpdate => "org.update",
            Self::OrgSuspend => "org.suspend",
            Self::OrgDelete => "org.delete",
            Self::WorkspaceCreate => "workspace.create",
            Self::WorkspaceDelete => "workspace.delete",
            Self::EnvironmentCreate => "environment.create",
            Self::EnvironmentDelete => "environment.delete",
            Self::GatewayRegister => "gateway.register",
            Self::GatewayRevoke => "gateway.revoke",
            Self::LicenseSet => "license.set",
            Self::LicenseRevoke => "license.revoke",
            Self::RoleGrant => "rbac.grant",
            Self::RoleRevoke => "rbac.revoke",
            Self::UserTokenCreate => "user_token.create",
            Self::UserTokenRevoke => "user_token.revoke",
            Self::ApiTokenCreate => "api_token.create",
            Self::BootstrapToken => "api_token.bootstrap",
            Self::Impersonate => "impersonation.start",
            Self::KeyInsert => "key.insert",
            Self::KeyCertificate => "key.certificate",
            Self::KeyCertificateAdd => "key.certificate.add",
            Self::KeyCertificateRemove => "key.certificate.remove",
            Self::KeyAdvance => "key.advance",
            Self::KeyRoot => "key.root",
            Self::TokenIssued => "token.issued",
            Self::ApiTokenRevoke => "api_token.revoke",
            Self::OidcSet => "oidc.set",
            Self::OidcDelete => "oidc.delete",
            Self::RevocationsUpload => "revocations.upload",
            Self::TenantsApply => "tenants.apply",
            Self::ArchivePurge => "archive.purge",
            Self::ArchiveRestore => "archive.restore",
            Self::PluginSetPut => "plugin_set.put",
            Self::PluginSetDelete => "plugin_set.delete",
            Self::UsageOverLimit => "usage.over_limit",
            Self::UsageImport => "usage.import",
        }
    }
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct Event {
    /// What.
    pub action: AuditAction,
    /// On what (a path or id within the org).
    pub target: String,
    /// Facts about the change (never a secret): stored beside the entry, SHA-256 chained.
    pub details: Value,
}

impl Event {
    /// An event.
    pub fn new(action: AuditAction, target: impl Into<String>, details: Value) -> Self {
        Self {
            action,
            target: target.into(),
            details,
        }
    }
}

/// A stored row.
#[derive(Debug, FromRow)]
pub(super) struct AuditRow {
    org_id: String,
    seq: i64,
    at: String,
    actor: String,
    action: String,
    target: String,
    request_id: String,
    details: String,
    details_sha256: String,
    prev_hash: String,
    hash: String,
}

pub(super) const AUDIT_COLUMNS: &str = "org_id, seq, at, actor, action, target, request_id, \
     details, details_sha256, prev_hash, hash";

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> Self {
        Self {
            entry: AuditEntry {
                org_id: row.org_id,
                seq: row.seq,
                time: row.at,
                actor: row.actor,
                action: row.action,
                target: row.target,
                request_id: row.request_id,
                details_sha256: row.details_sha256,
            },
            details: row.details,
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

/// The record that follows the head `(seq, hash)` (`None`: an empty chain).
fn next_record(
    org_id: &str,
    head: Option<(i64, String)>,
    actor: &Actor,
    event: &Event,
    now: i64,
) -> Result<AuditRecord, StoreError> {
    let (seq, prev) = match head {
        Some((seq, hash)) => (
            seq,
            parse_hash(&hash)
                .ok_or_else(|| StoreError::Corrupt(format!("audit head of {org_id}")))?,
        ),
        None => (0, GENESIS),
    };
    let details = to_json_text(&event.details)?;
    let entry = AuditEntry {
        org_id: org_id.to_owned(),
        seq: seq + 1,
        time: to_rfc3339(now),
        actor: actor.id.clone(),
        action: event.action.as_str().to_owned(),
        target: event.target.clone(),
        request_id: actor.request_id.clone(),
        details_sha256: details_digest(&details),
    };
    Ok(AuditRecord::link(entry, details, &prev))
}

const INSERT_ENTRY: &str = "INSERT INTO audit_entries (org_id, seq, at, actor, action, target, \
     request_id, details, details_sha256, prev_hash, hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

macro_rules! insert_entry {
    ($conn:expr, $record:expr) => {{
        let r = &$record;
        sqlx::query(INSERT_ENTRY)
            .bind(&r.entry.org_id)
            .bind(r.entry.seq)
            .bind(&r.entry.time)
            .bind(&r.entry.actor)
            .bind(&r.entry.action)
            .bind(&r.entry.target)
            .bind(&r.entry.request_id)
            .bind(&r.details)
            .bind(&r.entry.details_sha256)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .execute(&mut *$conn)
            .await
            .map_err(StoreError::unique("concurrent audit append; retry"))?;
    }};
}

/// Appends to an org's chain inside the caller's write transaction. Store code calls it
/// through `WriteTx::append_audit` (the `changes` module), which also records the change
/// to publish on commit; a test keeps every other caller out.
pub(crate) trait AuditTx {
    /// Appends `events`, in order, to `org_id`'s chain; returns the new head seq.
    async fn append_audit(
        &mut self,
        org_id: &str,
        actor: &Actor,
        events: &[Event],
        now: i64,
    ) -> Result<i64, StoreError>;
}

impl AuditTx for SqliteConnection {
    async fn append_audit(
        &mut self,
        org_id: &str,
        actor: &Actor,
        events: &[Event],
        now: i64,
    ) -> Result<i64, StoreError> {
        // The transaction is BEGIN IMMEDIATE: no other writer runs until it ends.
        let mut head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE org_id = $1")
                .bind(org_id)
                .fetch_optional(&mut *self)
                .await?;
        for event in events {
            let record = next_record(org_id, head.take(), actor, event, now)?;
            insert_entry!(self, record);
            head = Some((record.entry.seq, record.hash));
        }
        let Some((seq, hash)) = head else {
            return Ok(0);
        };
        sqlx::query(
            "INSERT INTO audit_heads (org_id, seq, hash) VALUES ($1, $2, $3) \
             ON CONFLICT (org_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .bind(org_id)
        .bind(seq)
        .bind(&hash)
        .execute(&mut *self)
        .await?;
        Ok(seq)
    }
}

impl AuditTx for PgConnection {
    async fn append_audit(
        &mut self,
        org_id: &str,
        actor: &Actor,
        events: &[Event],
        now: i64,
    ) -> Result<i64, StoreError> {
        sqlx::query(
            "INSERT INTO audit_heads (org_id, seq, hash) VALUES ($1, 0, $2) \
             ON CONFLICT (org_id) DO NOTHING",
        )
        .bind(org_id)
        .bind(mcpg_license_core::audit::hex_lower(&GENESIS))
        .execute(&mut *self)
        .await?;
        let (seq, hash): (i64, String) =
            sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE org_id = $1 FOR UPDATE")
                .bind(org_id)
                .fetch_one(&mut *self)
                .await?;
        let mut head = (seq > 0).then_some((seq, hash));
        for event in events {
            let record = next_record(org_id, head.take(), actor, event, now)?;
            insert_entry!(self, record);
            head = Some((record.entry.seq, record.hash));
        }
        let Some((seq, hash)) = head else {
            return Ok(0);
        };
        sqlx::query("UPDATE audit_heads SET seq = $2, hash = $3 WHERE org_id = $1")
            .bind(org_id)
            .bind(seq)
            .bind(&hash)
            .execute(&mut *self)
            .await?;
        Ok(seq)
    }
}
