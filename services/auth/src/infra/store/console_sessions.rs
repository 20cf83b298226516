//! Operator console sessions (`console_sessions`): a row per signed-in browser, keyed by
//! the SHA-256 of the opaque id its cookie carries. A session is found by that hash before
//! the org is known, like an API token by its hash, so every query runs on the
//! cross-tenant pool ([`Store::global`]); the hash is the selector.
//!
//! The lookup joins the API token the operator signed in with and answers only while the
//! token is unrevoked and unexpired: revoking a token ends its sessions at their next
//! request, on every replica, with no second revocation path to forget.

use sqlx::FromRow;

use super::{ApiTokenRecord, Store, StoreError, on_pool};

/// A session to store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewConsoleSession<'a> {
    /// SHA-256 hex of the session id.
    pub(crate) id_hash: &'a str,
    /// The API token signed in with.
    pub(crate) token_id: &'a str,
    /// The token's org; `None` for a global admin token.
    pub(crate) org_id: Option<&'a str>,
    /// The CSRF token of the session's forms.
    pub(crate) csrf_secret: &'a str,
    /// Sign-in time.
    pub(crate) now: i64,
    /// When the session ends whatever happens (absolute timeout).
    pub(crate) expires_at: i64,
}

/// A live session and the still-valid API token behind it.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleSessionRecord {
    /// The API token signed in with.
    pub(crate) token: ApiTokenRecord,
    /// The CSRF token of the session's forms.
    pub(crate) csrf_secret: String,
    /// The last request.
    pub(crate) last_seen_at: i64,
}

#[derive(FromRow)]
struct Row {
    csrf_secret: String,
    last_seen_at: i64,
    id: String,
    org_id: Option<String>,
    name: String,
    token_hash: String,
    token_prefix: String,
    token_created_at: i64,
    user_id: Option<String>,
    impersonator_id: Option<String>,
}

impl From<Row> for ConsoleSessionRecord {
    fn from(row: Row) -> Self {
        Self {
            token: ApiTokenRecord {
                id: row.id,
                org_id: row.org_id,
                name: row.name,
                token_hash: row.token_hash,
                token_prefix: row.token_prefix,
                created_at: row.token_created_at,
                user_id: row.user_id,
                impersonator_id: row.impersonator_id,
            },
            csrf_secret: row.csrf_secret,
            last_seen_at: row.last_seen_at,
        }
    }
}

const LOOKUP: &str = "SELECT s.csrf_secret, s.last_seen_at, t.id, t.org_id, \
     t.name, t.token_hash, t.token_prefix, t.created_at AS token_created_at, t.user_id, \
     t.impersonator_id \
     FROM console_sessions s JOIN api_tokens t ON t.id = s.token_id \
     WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 \
     AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)";

impl Store {
    /// Stores a new session.
    pub(crate) async fn insert_console_session(
        &self,
        session: &NewConsoleSession<'_>,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO console_sessions (id_hash, token_id, org_id, csrf_secret, \
                   created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $5, $6)";
        on_pool!(self.global(), pool => {
            sqlx::query(sql)
                .bind(session.id_hash)
                .bind(session.token_id)
                .bind(session.org_id)
                .bind(session.csrf_secret)
                .bind(session.now)
                .bind(session.expires_at)
                .execute(pool)
                .await
                .map_err(StoreError::unique("session id collision; sign in again"))?;
        });
        Ok(())
    }

    /// The session with this id hash, if it is live at `now` (before its absolute end,
    /// seen after `idle_since`, its API token unrevoked and unexpired).
    pub(crate) async fn console_session(
        &self,
        id_hash: &str,
        now: i64,
        idle_since: i64,
    ) -> Result<Option<ConsoleSessionRecord>, StoreError> {
        let row: Option<Row> = on_pool!(self.global(), pool => sqlx::query_as(LOOKUP)
            .bind(id_hash)
            .bind(now)
            .bind(idle_since)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(ConsoleSessionRecord::from))
    }

    /// Records a request of the session (keeps it from idling out).
    pub(crate) async fn touch_console_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        on_pool!(self.global(), pool => {
            sqlx::query("UPDATE console_sessions SET last_seen_at = $2 WHERE id_hash = $1")
                .bind(id_hash)
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ends a session (sign-out); ending one that does not exist is not an error.
    pub(crate) async fn delete_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        on_pool!(self.global(), pool => {
            sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Deletes the sessions that ended (absolute end passed, or idle since `idle_since`);
    /// returns how many.
    pub(crate) async fn purge_console_sessions(
        &self,
        now: i64,
        idle_since: i64,
    ) -> Result<u64, StoreError> {
        Ok(on_pool!(self.global(), pool => sqlx::query(
                "DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(idle_since)
            .execute(pool)
            .await?
            .rows_affected()))
    }
}
