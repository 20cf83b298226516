//! Who may act inside an org: its users (by email), their personal API tokens, their role
//! bindings; and the time-limited impersonation tokens of global admins.

use serde::Serialize;
use serde_json::json;
use sqlx::FromRow;

use super::audit_log::{AuditAction, Event};
use super::{ApiTokenRecord, StoreError, TenantStore, in_tx, on_pool};
use crate::domain::new_id;
use crate::domain::rbac::{Binding, Role, Scope};

/// A personal API token as listed (never the token).
#[derive(Debug, Clone, FromRow, Serialize)]
pub(crate) struct UserTokenRecord {
    /// Token id.
    pub(crate) id: String,
    /// Its owner's email.
    pub(crate) email: String,
    /// Name given at creation.
    pub(crate) name: String,
    /// First characters, for display.
    pub(crate) token_prefix: String,
    /// Created (Unix seconds).
    pub(crate) created_at: i64,
    /// Revoked (Unix seconds).
    pub(crate) revoked_at: Option<i64>,
}

/// A role binding as listed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BindingRecord {
    /// Binding id.
    pub(crate) id: String,
    /// The user's email.
    pub(crate) email: String,
    /// Role.
    pub(crate) role: Role,
    /// Workspace slug (operator and viewer bindings).
    pub(crate) workspace: Option<String>,
    /// Environment slug (viewer bindings).
    pub(crate) environment: Option<String>,
    /// Created (Unix seconds).
    pub(crate) created_at: i64,
}

#[derive(FromRow)]
struct BindingRow {
    id: String,
    email: String,
    role: String,
    workspace: Option<String>,
    environment: Option<String>,
    created_at: i64,
}

impl TryFrom<BindingRow> for BindingRecord {
    type Error = StoreError;
    fn try_from(row: BindingRow) -> Result<Self, StoreError> {
        Ok(Self {
            role: row
                .role
                .parse()
                .map_err(|e: crate::domain::UnknownValue| StoreError::Corrupt(e.to_string()))?,
            id: row.id,
            email: row.email,
            workspace: row.workspace,
            environment: row.environment,
            created_at: row.created_at,
        })
    }
}

impl BindingRecord {
    /// The binding's scope.
    pub(crate) fn scope(&self) -> Scope {
        match (&self.workspace, &self.environment) {
            (Some(ws), Some(env)) => Scope::Environment(ws.clone(), env.clone()),
            (Some(ws), None) => Scope::Workspace(ws.clone()),
            _ => Scope::Org,
        }
    }
}

/// A binding to create or remove: the user's email, the role and where.
#[derive(Debug, Clone)]
pub(crate) struct BindingSpec<'a> {
    /// User email (normalized).
    pub(crate) email: &'a str,
    /// Role.
    pub(crate) role: Role,
    /// Where.
    pub(crate) scope: &'a Scope,
}

const BINDING_SELECT: &str = "SELECT b.id, u.email, b.role, w.slug AS workspace, \
     e.slug AS environment, b.created_at FROM role_bindings b \
     JOIN users u ON u.id = b.user_id \
     LEFT JOIN workspaces w ON w.id = b.workspace_id \
     LEFT JOIN environments e ON e.id = b.environment_id";

const UPSERT_USER: &str = "INSERT INTO users (id, org_id, email, created_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (org_id, email) DO NOTHING";
const USER_ID: &str = "SELECT id FROM users WHERE org_id = $1 AND email = $2";

fn scope_slugs(scope: &Scope) -> (&str, &str) {
    match scope {
        Scope::Org => ("", ""),
        Scope::Workspace(ws) => (ws, ""),
        Scope::Environment(ws, env) => (ws, env),
    }
}

impl TenantStore<'_> {
    /// Issues a personal token to the user with `email` (created on first use).
    pub(crate) async fn create_user_token(
        &self,
        email: &str,
        name: &str,
        hash: &str,
        prefix: &str,
        now: i64,
    ) -> Result<UserTokenRecord, StoreError> {
        let id = new_id();
        let org = self.org_id();
        let actor = self.actor();
        in_tx!(self.store(), tx => {
            sqlx::query(UPSERT_USER).bind(new_id()).bind(org).bind(email).bind(now)
                .execute(&mut *tx).await?;
            let user: String = sqlx::query_scalar(USER_ID).bind(org).bind(email)
                .fetch_one(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO api_tokens (id, org_id, name, token_hash, token_prefix, created_at, \
                 user_id) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(&id).bind(org).bind(name).bind(hash).bind(prefix).bind(now).bind(&user)
                .execute(&mut *tx).await
                .map_err(StoreError::unique("token collision; retry"))?;
            let event = Event::new(AuditAction::UserTokenCreate, format!("user:{user}"),
                json!({"token_id": id, "name": name, "token_prefix": prefix}));
            tx.append_audit(org, &actor, &[event], now).await?;
        });
        Ok(UserTokenRecord {
            id,
            email: email.to_owned(),
            name: name.to_owned(),
            token_prefix: prefix.to_owned(),
            created_at: now,
            revoked_at: None,
        })
    }

    /// Up to `limit` personal tokens of a user after `after` (creation time and id;
    /// `None`: from the first), oldest first.
    pub(crate) async fn user_tokens(
        &self,
        email: &str,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<UserTokenRecord>, StoreError> {
        let org = self.org_id();
        let user: Option<String> = on_pool!(self.store(), pool => sqlx::query_scalar(USER_ID)
            .bind(org).bind(email).fetch_optional(pool).await?);
        let user = user.ok_or(StoreError::NotFound("user"))?;
        let sql = "SELECT t.id, $3 AS email, t.name, t.token_prefix, t.created_at, t.revoked_at \
                   FROM api_tokens t WHERE t.org_id = $1 AND t.user_id = $2 \
                   AND (t.created_at > $4 OR (t.created_at = $4 AND t.id > $5)) \
                   ORDER BY t.created_at, t.id LIMIT $6";
        let (after_time, after_id) = after.unwrap_or((i64::MIN, ""));
        Ok(on_pool!(self.store(), pool => sqlx::query_as(sql)
            .bind(org).bind(&user).bind(email).bind(after_time).bind(after_id).bind(limit)
            .fetch_all(pool).await?))
    }

    /// Revokes one of a user's tokens (idempotent).
    pub(crate) async fn revoke_user_token(
        &self,
        email: &str,
        id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $4) \
                   WHERE org_id = $1 AND id = $3 AND user_id = \
                   (SELECT id FROM users WHERE org_id = $1 AND email = $2)";
        let actor = self.actor();
        in_tx!(self.store(), tx => {
            let user: Option<String> = sqlx::query_scalar(USER_ID)
                .bind(self.org_id()).bind(email).fetch_optional(&mut *tx).await?;
            let done = sqlx::query(sql)
                .bind(self.org_id()).bind(email).bind(id).bind(now)
                .execute(&mut *tx).await?.rows_affected();
            let Some(user) = user.filter(|_| done > 0) else {
                return Err(StoreError::NotFound("token"));
            };
            let event = Event::new(AuditAction::UserTokenRevoke, format!("user:{user}"),
                json!({"token_id": id}));
            tx.append_audit(self.org_id(), &actor, &[event], now).await?;
        });
        Ok(())
    }

    /// Binds a role; the user is created on first use.
    pub(crate) async fn create_binding(
        &self,
        spec: &BindingSpec<'_>,
        now: i64,
    ) -> Result<BindingRecord, StoreError> {
        let org = self.org_id();
        let (ws, env) = scope_slugs(spec.scope);
        let id = new_id();
        let actor = self.actor();
        in_tx!(self.store(), tx => {
            let mut workspace_id: Option<String> = None;
            let mut environment_id: Option<String> = None;
            if !ws.is_empty() {
                let found: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM workspaces WHERE org_id = $1 AND slug = $2")
                    .bind(org).bind(ws).fetch_optional(&mut *tx).await?;
                workspace_id = Some(found.ok_or(StoreError::NotFound("workspace"))?);
            }
            if !env.is_empty() {
                let found: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM environments WHERE org_id = $1 AND workspace_id = $2 \
                     AND slug = $3")
                    .bind(org).bind(&workspace_id).bind(env).fetch_optional(&mut *tx).await?;
                environment_id = Some(found.ok_or(StoreError::NotFound("environment"))?);
            }
            let scope_key = environment_id.clone().or(workspace_id.clone()).unwrap_or_default();
            sqlx::query(UPSERT_USER).bind(new_id()).bind(org).bind(spec.email).bind(now)
                .execute(&mut *tx).await?;
            let user: String = sqlx::query_scalar(USER_ID).bind(org).bind(spec.email)
                .fetch_one(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO role_bindings (id, org_id, user_id, role, workspace_id, \
                 environment_id, scope_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&id).bind(org).bind(&user).bind(spec.role.as_str())
                .bind(&workspace_id).bind(&environment_id).bind(&scope_key).bind(now)
                .execute(&mut *tx).await
                .map_err(StoreError::unique("this role binding exists already"))?;
            let event = Event::new(AuditAction::RoleGrant, format!("user:{user}"), json!({
                "binding_id": id, "role": spec.role.as_str(), "workspace": ws,
                "environment": env,
            }));
            tx.append_audit(org, &actor, &[event], now).await?;
        });
        Ok(BindingRecord {
            id,
            email: spec.email.to_owned(),
            role: spec.role,
            workspace: (!ws.is_empty()).then(|| ws.to_owned()),
            environment: (!env.is_empty()).then(|| env.to_owned()),
            created_at: now,
        })
    }

    /// The org's role bindings, by email.
    pub(crate) async fn bindings(&self) -> Result<Vec<BindingRecord>, StoreError> {
        self.bindings_after(None, i64::MAX).await
    }

    /// Up to `limit` of the org's role bindings after `after` (email, creation time, id;
    /// `None`: from the first), by email, then oldest first.
    pub(crate) async fn bindings_after(
        &self,
        after: Option<(&str, i64, &str)>,
        limit: i64,
    ) -> Result<Vec<BindingRecord>, StoreError> {
        let sql = format!(
            "{BINDING_SELECT} WHERE b.org_id = $1 AND (u.email > $2 OR (u.email = $2 AND \
             (b.created_at > $3 OR (b.created_at = $3 AND b.id > $4)))) \
             ORDER BY u.email, b.created_at, b.id LIMIT $5"
        );
        let (email, time, id) = after.unwrap_or(("", i64::MIN, ""));
        let rows: Vec<BindingRow> = on_pool!(self.store(), pool => sqlx::query_as(&sql)
            .bind(self.org_id()).bind(email).bind(time).bind(id).bind(limit)
            .fetch_all(pool).await?);
        rows.into_iter().map(BindingRecord::try_from).collect()
    }

    /// Removes a binding.
    pub(crate) async fn delete_binding(
        &self,
        spec: &BindingSpec<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        let actor = self.actor();
        let (ws, env) = scope_slugs(spec.scope);
        let sql = "DELETE FROM role_bindings WHERE org_id = $1 AND id IN (\
                   SELECT b.id FROM role_bindings b JOIN users u ON u.id = b.user_id \
                   LEFT JOIN workspaces w ON w.id = b.workspace_id \
                   LEFT JOIN environments e ON e.id = b.environment_id \
                   WHERE b.org_id = $1 AND u.email = $2 AND b.role = $3 \
                   AND COALESCE(w.slug, '') = $4 AND COALESCE(e.slug, '') = $5)";
        in_tx!(self.store(), tx => {
            let user: Option<String> = sqlx::query_scalar(USER_ID)
                .bind(self.org_id()).bind(spec.email).fetch_optional(&mut *tx).await?;
            let done = sqlx::query(sql)
                .bind(self.org_id()).bind(spec.email).bind(spec.role.as_str()).bind(ws).bind(env)
                .execute(&mut *tx).await?.rows_affected();
            let Some(user) = user.filter(|_| done > 0) else {
                return Err(StoreError::NotFound("role binding"));
            };
            let event = Event::new(AuditAction::RoleRevoke, format!("user:{user}"), json!({
                "role": spec.role.as_str(), "workspace": ws, "environment": env,
            }));
            tx.append_audit(self.org_id(), &actor, &[event], now).await?;
        });
        Ok(())
    }

    /// The bindings of one user, for the access decision.
    pub(crate) async fn user_bindings(&self, user_id: &str) -> Result<Vec<Binding>, StoreError> {
        let sql = format!("{BINDING_SELECT} WHERE b.org_id = $1 AND b.user_id = $2");
        let rows: Vec<BindingRow> = on_pool!(self.store(), pool => sqlx::query_as(&sql)
            .bind(self.org_id()).bind(user_id).fetch_all(pool).await?);
        rows.into_iter()
            .map(|row| {
                let record = BindingRecord::try_from(row)?;
                Ok(Binding {
                    role: record.role,
                    scope: record.scope(),
                })
            })
            .collect()
    }
}

/// An impersonation token to store.
#[derive(Debug, Clone)]
pub(crate) struct NewImpersonation<'a> {
    /// The global admin token that asked for it.
    pub(crate) impersonator_id: &'a str,
    /// Why (kept with the token).
    pub(crate) reason: &'a str,
    /// SHA-256 hex of the token.
    pub(crate) hash: &'a str,
    /// Display prefix.
    pub(crate) prefix: &'a str,
    /// When it stops working.
    pub(crate) expires_at: i64,
}

impl TenantStore<'_> {
    /// Stores an impersonation token for this org.
    pub(crate) async fn insert_impersonation(
        &self,
        new: &NewImpersonation<'_>,
        now: i64,
    ) -> Result<ApiTokenRecord, StoreError> {
        let id = new_id();
        let org_id = self.org_id();
        let name = format!("impersonation by {}", new.impersonator_id);
        let actor = self.actor();
        in_tx!(self.store(), tx => {
            sqlx::query(
                "INSERT INTO api_tokens (id, org_id, name, token_hash, token_prefix, created_at, \
                 expires_at, impersonator_id, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(&id).bind(org_id).bind(&name).bind(new.hash).bind(new.prefix)
                .bind(now).bind(new.expires_at).bind(new.impersonator_id).bind(new.reason)
                .execute(&mut *tx).await
                .map_err(StoreError::unique("token collision; retry"))?;
            let event = Event::new(AuditAction::Impersonate, format!("token:{id}"), json!({
                "impersonator_id": new.impersonator_id, "reason": new.reason,
                "expires_at": new.expires_at, "token_prefix": new.prefix,
            }));
            tx.append_audit(org_id, &actor, &[event], now).await?;
        });
        Ok(ApiTokenRecord {
            id,
            org_id: Some(org_id.to_owned()),
            name,
            token_hash: new.hash.to_owned(),
            token_prefix: new.prefix.to_owned(),
            created_at: now,
            user_id: None,
            impersonator_id: Some(new.impersonator_id.to_owned()),
        })
    }
}
