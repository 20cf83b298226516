//! Operator console sessions (`console_sessions`): a row per signed-in browser, keyed by
//! the SHA-256 of the opaque id its cookie carries. A session is found by that hash before
//! the org is known, like an API token by its hash, so every query runs on the
//! cross-tenant pool ([`Store::global`]); the hash is the selector.
//!
//! The lookup joins the API token the operator signed in with and answers only while the
//! token is unrevoked and unexpired: revoking a token ends its sessions at their next
//! request, on every replica, with no second revocation path to forget. A session opened
//! through the org's own identity provider answers while the org still has one configured.

use sqlx::FromRow;

use super::{ApiTokenRecord, Store, StoreError, on_pool};

/// Who opens a session.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SessionSignIn<'a> {
    /// The API token (id) signed in with.
    Token(&'a str),
    /// A sign-in through the org's identity provider: `oidc:{issuer}#{sub}` and the role
    /// (`admin`, `operator`, `viewer`) its claims mapped to.
    Idp {
        /// `oidc:{issuer}#{sub}`.
        identity: &'a str,
        /// The mapped role.
        role: &'a str,
    },
}

/// A session to store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewConsoleSession<'a> {
    /// SHA-256 hex of the session id.
    pub(crate) id_hash: &'a str,
    /// How the operator signed in.
    pub(crate) sign_in: SessionSignIn<'a>,
    /// The org; `None` for a global admin token.
    pub(crate) org_id: Option<&'a str>,
    /// The CSRF token of the session's forms.
    pub(crate) csrf_secret: &'a str,
    /// Sign-in time.
    pub(crate) now: i64,
    /// When the session ends whatever happens (absolute timeout).
    pub(crate) expires_at: i64,
}

/// Who a live session is.
#[derive(Debug, Clone)]
pub(crate) enum SessionOwner {
    /// The still-valid API token signed in with.
    Token(ApiTokenRecord),
    /// A sign-in through the org's identity provider.
    Idp {
        /// The org.
        org_id: String,
        /// `oidc:{issuer}#{sub}`.
        identity: String,
        /// The role mapped at sign-in (`admin`, `operator`, `viewer`).
        role: String,
    },
}

/// A live session.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleSessionRecord {
    /// Who it is.
    pub(crate) owner: SessionOwner,
    /// The CSRF token of the session's forms.
    pub(crate) csrf_secret: String,
    /// The last request.
    pub(crate) last_seen_at: i64,
}

#[derive(FromRow)]
struct Row {
    csrf_secret: String,
    last_seen_at: i64,
    session_org: Option<String>,
    identity: Option<String>,
    role: Option<String>,
    id: Option<String>,
    org_id: Option<String>,
    name: Option<String>,
    token_hash: Option<String>,
    token_prefix: Option<String>,
    token_created_at: Option<i64>,
    user_id: Option<String>,
    impersonator_id: Option<String>,
}

impl TryFrom<Row> for ConsoleSessionRecord {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<Self, StoreError> {
        let owner = match (row.identity, row.id) {
            (Some(identity), None) => SessionOwner::Idp {
                org_id: row
                    .session_org
                    .ok_or_else(|| StoreError::Corrupt("session without org".into()))?,
                identity,
                role: row
                    .role
                    .ok_or_else(|| StoreError::Corrupt("session without role".into()))?,
            },
            (None, Some(id)) => SessionOwner::Token(ApiTokenRecord {
                id,
                org_id: row.org_id,
                name: row.name.unwrap_or_default(),
                token_hash: row.token_hash.unwrap_or_default(),
                token_prefix: row.token_prefix.unwrap_or_default(),
                created_at: row.token_created_at.unwrap_or_default(),
                user_id: row.user_id,
                impersonator_id: row.impersonator_id,
            }),
            _ => {
                return Err(StoreError::Corrupt(
                    "session of neither token nor IdP".into(),
                ));
            }
        };
        Ok(Self {
            owner,
            csrf_secret: row.csrf_secret,
            last_seen_at: row.last_seen_at,
        })
    }
}

/// A live session: before its end, seen recently, and its token still valid (unrevoked,
/// unexpired) or, for an IdP sign-in, its org still configured with an identity provider.
const LOOKUP: &str = "SELECT s.csrf_secret, s.last_seen_at, s.org_id AS session_org, \
     s.identity, s.role, t.id, t.org_id, t.name, t.token_hash, t.token_prefix, \
     t.created_at AS token_created_at, t.user_id, t.impersonator_id \
     FROM console_sessions s LEFT JOIN api_tokens t ON t.id = s.token_id \
     WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 \
     AND ((s.token_id IS NOT NULL AND t.revoked_at IS NULL \
           AND (t.expires_at IS NULL OR t.expires_at > $2)) \
          OR (s.identity IS NOT NULL \
              AND EXISTS (SELECT 1 FROM org_oidc o WHERE o.org_id = s.org_id)))";

impl Store {
    /// Stores a new session.
    pub(crate) async fn insert_console_session(
        &self,
        session: &NewConsoleSession<'_>,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO console_sessions (id_hash, token_id, identity, role, org_id, \
                   csrf_secret, created_at, last_seen_at, expires_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)";
        let (token_id, identity, role) = match session.sign_in {
            SessionSignIn::Token(id) => (Some(id), None, None),
            SessionSignIn::Idp { identity, role } => (None, Some(identity), Some(role)),
        };
        on_pool!(self.global(), pool => {
            sqlx::query(sql)
                .bind(session.id_hash)
                .bind(token_id)
                .bind(identity)
                .bind(role)
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
        row.map(ConsoleSessionRecord::try_from).transpose()
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
