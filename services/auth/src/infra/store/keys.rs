//! Signing keys: public key, sealed secret, certificate and life-cycle state. Keys live in
//! the database so that every replica signs with the same active key and publishes the
//! same JWKS.

use sqlx::FromRow;

use mcpg_license_core::audit::SYSTEM_CHAIN;
use serde_json::json;

use super::audit_log::{Actor, AuditAction, Event};
use super::dev_root::KEYS_LOCK;
use super::key_certificates::KeyCertificateRecord;
use super::{BackendKind, Store, StoreError, in_tx, on_pool};
use crate::domain::KeyState;

/// Binds a [`NewKey`] to [`INSERT`]'s parameters (a macro: the query type differs per backend).
macro_rules! bind_key {
    ($query:expr, $key:expr, $now:expr) => {
        $query
            .bind($key.kid.as_str())
            .bind($key.public_key.as_str())
            .bind($key.secret_sealed.as_str())
            .bind($key.certificate.as_str())
            .bind($key.cert_expires_at)
            .bind($key.state.as_str())
            .bind($now)
            .bind($key.activate_at)
    };
}

/// A signing key as stored.
#[derive(Debug, Clone)]
pub(crate) struct KeyRecord {
    /// PASERK k4.pid.
    pub(crate) kid: String,
    /// PASERK k4.public.
    pub(crate) public_key: String,
    /// The secret key sealed with the key-encryption key.
    pub(crate) secret_sealed: String,
    /// Issuer certificate (PASETO v4.public).
    pub(crate) certificate: String,
    /// Expiry of the certificate.
    pub(crate) cert_expires_at: i64,
    /// State.
    pub(crate) state: KeyState,
    /// Created.
    pub(crate) created_at: i64,
    /// When a pending key becomes active.
    pub(crate) activate_at: i64,
    /// When it became active.
    pub(crate) activated_at: Option<i64>,
    /// When a retiring key may be retired (no token it signed can be within grace after).
    pub(crate) retire_after: Option<i64>,
    /// When it was retired.
    pub(crate) retired_at: Option<i64>,
    /// Its further certificates (other roots certifying the same key), oldest first.
    pub(crate) more_certificates: Vec<KeyCertificateRecord>,
}

#[derive(FromRow)]
struct KeyRow {
    kid: String,
    public_key: String,
    secret_sealed: String,
    certificate: String,
    cert_expires_at: i64,
    state: String,
    created_at: i64,
    activate_at: i64,
    activated_at: Option<i64>,
    retire_after: Option<i64>,
    retired_at: Option<i64>,
}

impl TryFrom<KeyRow> for KeyRecord {
    type Error = StoreError;
    fn try_from(row: KeyRow) -> Result<Self, StoreError> {
        Ok(Self {
            state: row
                .state
                .parse()
                .map_err(|e: crate::domain::UnknownValue| StoreError::Corrupt(e.to_string()))?,
            kid: row.kid,
            public_key: row.public_key,
            secret_sealed: row.secret_sealed,
            certificate: row.certificate,
            cert_expires_at: row.cert_expires_at,
            created_at: row.created_at,
            activate_at: row.activate_at,
            activated_at: row.activated_at,
            retire_after: row.retire_after,
            retired_at: row.retired_at,
            more_certificates: Vec::new(),
        })
    }
}

/// A key joined with one of its further certificates (all `None` when it has none).
#[derive(FromRow)]
struct KeyCertRow {
    #[sqlx(flatten)]
    key: KeyRow,
    c_cid: Option<String>,
    c_certificate: Option<String>,
    c_root_kid: Option<String>,
    c_expires_at: Option<i64>,
}

impl KeyCertRow {
    fn more(&self) -> Option<KeyCertificateRecord> {
        Some(KeyCertificateRecord {
            cid: self.c_cid.clone()?,
            certificate: self.c_certificate.clone()?,
            root_kid: self.c_root_kid.clone()?,
            expires_at: self.c_expires_at?,
        })
    }
}

/// A key to insert.
#[derive(Debug, Clone)]
pub(crate) struct NewKey {
    /// PASERK k4.pid.
    pub(crate) kid: String,
    /// PASERK k4.public.
    pub(crate) public_key: String,
    /// Sealed secret.
    pub(crate) secret_sealed: String,
    /// Certificate.
    pub(crate) certificate: String,
    /// Certificate expiry.
    pub(crate) cert_expires_at: i64,
    /// Initial state (`active` for the first key, `pending` for a rotation).
    pub(crate) state: KeyState,
    /// When it becomes active.
    pub(crate) activate_at: i64,
}

const KEY_COLUMNS: &str = "k.kid, k.public_key, k.secret_sealed, k.certificate, \
     k.cert_expires_at, k.state, k.created_at, k.activate_at, k.activated_at, k.retire_after, \
     k.retired_at";
const INSERT: &str = "INSERT INTO signing_keys (kid, public_key, secret_sealed, certificate, \
     cert_expires_at, state, created_at, activate_at, activated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $6 = 'active' THEN $7 ELSE NULL END)";

impl Store {
    /// Every key, newest first, each with its further certificates. One statement, so a
    /// concurrent removal of a primary certificate (which promotes a further one) is seen
    /// whole or not at all.
    pub(crate) async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS}, c.cid AS c_cid, c.certificate AS c_certificate, \
             c.root_kid AS c_root_kid, c.expires_at AS c_expires_at \
             FROM signing_keys k LEFT JOIN signing_key_certificates c ON c.kid = k.kid \
             ORDER BY k.created_at DESC, k.kid, c.added_at, c.cid"
        );
        let rows: Vec<KeyCertRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
        let mut keys: Vec<KeyRecord> = Vec::new();
        for row in rows {
            let more = row.more();
            if keys.last().is_none_or(|k| k.kid != row.key.kid) {
                keys.push(KeyRecord::try_from(row.key)?);
            }
            if let (Some(key), Some(more)) = (keys.last_mut(), more) {
                key.more_certificates.push(more);
            }
        }
        Ok(keys)
    }

    /// Inserts the deployment's first key unless another process already did; returns
    /// whether this call inserted it.
    pub(crate) async fn insert_first_key(
        &self,
        key: &NewKey,
        now: i64,
    ) -> Result<bool, StoreError> {
        let actor = Actor::system();
        Ok(in_tx!(self.global(), tx => {
            let claimed = sqlx::query(
                "INSERT INTO service_meta (name, value) VALUES ('first_key', $1) \
                 ON CONFLICT (name) DO NOTHING")
                .bind(&key.kid)
                .execute(&mut *tx)
                .await?
                .rows_affected() == 1;
            if claimed {
                bind_key!(sqlx::query(INSERT), key, now).execute(&mut *tx).await?;
                tx.append_audit(SYSTEM_CHAIN, &actor, &[key_event(key)], now)
                    .await?;
            }
            claimed
        }))
    }

    /// Inserts a key (a rotation's pending key, or an imported certified key).
    pub(crate) async fn insert_key(
        &self,
        key: &NewKey,
        actor: &Actor,
        now: i64,
    ) -> Result<(), StoreError> {
        in_tx!(self.global(), tx => {
            bind_key!(sqlx::query(INSERT), key, now)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::unique("this key is already installed"))?;
            tx.append_audit(SYSTEM_CHAIN, actor, &[key_event(key)], now).await?;
        });
        Ok(())
    }

    /// Replaces a key's certificate (renewal) if it is still `previous`: replicas that
    /// found the same certificate due queue on the keys lock, and only the first renews;
    /// the others find it changed and return `false` (they reload the new one).
    pub(crate) async fn update_certificate(
        &self,
        kid: &str,
        previous: &str,
        certificate: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let kind = self.kind();
        let actor = Actor::system();
        Ok(in_tx!(self.global(), tx => {
            if kind == BackendKind::Postgres {
                sqlx::query(KEYS_LOCK).execute(&mut *tx).await?;
            }
            let renewed = sqlx::query(
                "UPDATE signing_keys SET certificate = $3, cert_expires_at = $4 \
                 WHERE kid = $1 AND certificate = $2")
                .bind(kid)
                .bind(previous)
                .bind(certificate)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?
                .rows_affected() == 1;
            if renewed {
                let event = Event::new(AuditAction::KeyCertificate, kid,
                    json!({"cert_expires_at": expires_at}));
                tx.append_audit(SYSTEM_CHAIN, &actor, &[event], now)
                    .await?;
            }
            renewed
        }))
    }

    /// Moves keys along their life cycle at `now`: matured pending keys become active (the
    /// previous active key starts retiring until `now + retire_grace`), and retiring keys
    /// past their bound are retired. Idempotent, so replicas may race on it.
    pub(crate) async fn advance_keys(&self, now: i64, retire_grace: i64) -> Result<(), StoreError> {
        let actor = Actor::system();
        in_tx!(self.global(), tx => {
            let due: Vec<String> = sqlx::query_scalar(
                "SELECT kid FROM signing_keys WHERE state = 'pending' AND activate_at <= $1 \
                 ORDER BY activate_at, kid")
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
            for kid in &due {
                sqlx::query(
                    "UPDATE signing_keys SET state = 'retiring', retire_after = $2 \
                     WHERE state = 'active' AND kid <> $1")
                    .bind(kid)
                    .bind(now + retire_grace)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE signing_keys SET state = 'active', activated_at = $2 \
                     WHERE kid = $1 AND state = 'pending'")
                    .bind(kid)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            let retired: Vec<String> = sqlx::query_scalar(
                "UPDATE signing_keys SET state = 'retired', retired_at = $1 \
                 WHERE state = 'retiring' AND retire_after <= $1 RETURNING kid")
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
            if !due.is_empty() || !retired.is_empty() {
                let event = Event::new(AuditAction::KeyAdvance, "signing_keys",
                    json!({"activated": due, "retired": retired}));
                tx.append_audit(SYSTEM_CHAIN, &actor, &[event], now).await?;
            }
        });
        Ok(())
    }
}

fn key_event(key: &NewKey) -> Event {
    Event::new(
        AuditAction::KeyInsert,
        key.kid.as_str(),
        json!({"state": key.state.as_str(), "activate_at": key.activate_at,
               "cert_expires_at": key.cert_expires_at}),
    )
}
