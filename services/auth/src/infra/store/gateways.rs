//! An environment's gateways: registering (one or a fleet of thousands at once), listing,
//! finding one by id or by name, and revoking.
//!
//! Registration is one transaction with one quota check, multi-row inserts and one audit
//! entry per gateway, so a batch's chain says exactly what one-by-one registrations would
//! have said. A name is unique among the unrevoked gateways of its environment (a partial
//! unique index, migration 0017); a revoked gateway frees its name for its replacement.

use std::collections::{HashMap, HashSet};

use mcpg_license_core::LimitKey;
use serde_json::json;

use super::audit_log::{AuditAction, Event};
use super::hierarchy::GATEWAY_SELECT;
use super::lifecycle::{LIMITS_SQL, check_quota, lock_org_sql};
use super::{GatewayRecord, StoreError, TenantStore, in_tx, on_pool};
use crate::domain::new_id;

/// The most gateways one batch registers.
pub(crate) const MAX_BATCH: usize = 1_000;

/// Rows per `INSERT` (8 parameters each, well inside SQLite's 32,766).
const ROWS_PER_INSERT: usize = 250;

/// The most names one refusal lists.
const NAMES_IN_REFUSAL: usize = 5;

/// One gateway to register: its name and its credential's hash and display prefix.
#[derive(Debug, Clone)]
pub(crate) struct BatchGateway {
    /// Name (checked display text).
    pub(crate) name: String,
    /// SHA-256 hex of the credential.
    pub(crate) credential_hash: String,
    /// Display prefix of the credential.
    pub(crate) credential_prefix: String,
}

impl TenantStore<'_> {
    /// Registers `gateways` in `workspace`/`environment`, all or none: refused whole when
    /// a name is taken (by another of the batch or by an unrevoked gateway there) or the
    /// license's `max_gateways` cannot take them all.
    pub(crate) async fn register_gateways(
        &self,
        workspace: &str,
        environment: &str,
        gateways: &[BatchGateway],
        now: i64,
    ) -> Result<Vec<GatewayRecord>, StoreError> {
        refuse_repeated_names(gateways)?;
        match self
            .insert_gateways(workspace, environment, gateways, now)
            .await
        {
            Err(StoreError::Duplicate(_)) => {
                let taken = self.taken_names(workspace, environment, gateways).await?;
                Err(StoreError::Duplicate(names_taken(
                    &taken,
                    workspace,
                    environment,
                )))
            }
            other => other,
        }
    }

    /// The names of `gateways` that unrevoked gateways of the environment hold: only for
    /// the refusal's message (the unique index decides).
    async fn taken_names(
        &self,
        workspace: &str,
        environment: &str,
        gateways: &[BatchGateway],
    ) -> Result<Vec<String>, StoreError> {
        let mut taken = Vec::new();
        for chunk in gateways.chunks(ROWS_PER_INSERT) {
            let found: Vec<String> = on_pool!(self.store(), pool => {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT g.name FROM gateways g JOIN environments e ON e.id = g.environment_id \
                     JOIN workspaces w ON w.id = e.workspace_id WHERE g.revoked_at IS NULL AND g.org_id = ");
                query
                    .push_bind(self.org_id())
                    .push(" AND w.slug = ")
                    .push_bind(workspace)
                    .push(" AND e.slug = ")
                    .push_bind(environment)
                    .push(" AND g.name IN (");
                let mut names = query.separated(", ");
                for gateway in chunk {
                    names.push_bind(&gateway.name);
                }
                query.push(") ORDER BY g.name");
                query.build_query_scalar().fetch_all(pool).await?
            });
            taken.extend(found);
        }
        Ok(taken)
    }

    /// The registration itself, in one transaction; a taken name is
    /// `StoreError::Duplicate` with no message yet (the caller finds the names after the
    /// rollback: a failed statement ends a PostgreSQL transaction).
    async fn insert_gateways(
        &self,
        workspace: &str,
        environment: &str,
        gateways: &[BatchGateway],
        now: i64,
    ) -> Result<Vec<GatewayRecord>, StoreError> {
        let org = self.org_id();
        let store = self.store();
        let actor = self.actor();
        let count = i64::try_from(gateways.len()).unwrap_or(i64::MAX);
        let ids: Vec<String> = gateways.iter().map(|_| new_id()).collect();
        in_tx!(store, tx => {
            sqlx::query(lock_org_sql(store.kind())).bind(org).execute(&mut *tx).await?;
            let place: Option<(String, String)> = sqlx::query_as(
                "SELECT e.id, e.workspace_id FROM environments e \
                 JOIN workspaces w ON w.id = e.workspace_id \
                 WHERE e.org_id = $1 AND w.slug = $2 AND e.slug = $3")
                .bind(org).bind(workspace).bind(environment)
                .fetch_optional(&mut *tx).await?;
            // A missing environment is 404 whatever the quota says.
            let (environment_id, workspace_id) = place.ok_or(StoreError::NotFound("environment"))?;
            let limits: Option<String> = sqlx::query_scalar(LIMITS_SQL).bind(org)
                .fetch_optional(&mut *tx).await?;
            let used: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM gateways WHERE org_id = $1 AND revoked_at IS NULL")
                .bind(org).fetch_one(&mut *tx).await?;
            // The last one of the batch must still fit.
            check_quota(limits.as_deref(), LimitKey::MaxGateways, used + count - 1)
                .map_err(|error| match error {
                    StoreError::Quota { key, limit, .. } => StoreError::Quota { key, limit, usage: used },
                    other => other,
                })?;
            for (chunk, chunk_ids) in gateways.chunks(ROWS_PER_INSERT).zip(ids.chunks(ROWS_PER_INSERT)) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO gateways (id, org_id, workspace_id, environment_id, name, \
                     credential_hash, credential_prefix, created_at) ");
                insert.push_values(chunk.iter().zip(chunk_ids), |mut row, (gateway, id)| {
                    row.push_bind(id)
                        .push_bind(org)
                        .push_bind(&workspace_id)
                        .push_bind(&environment_id)
                        .push_bind(&gateway.name)
                        .push_bind(&gateway.credential_hash)
                        .push_bind(&gateway.credential_prefix)
                        .push_bind(now);
                });
                // A name an unrevoked gateway holds violates the partial unique index
                // (nothing is written; the names are found below, after the rollback);
                // any other unique violation is a credential hash met twice (2^-256), and a
                // retry draws new credentials.
                insert.build().execute(&mut *tx).await.map_err(|error| {
                    if is_name_taken(&error) {
                        StoreError::Duplicate(String::new())
                    } else {
                        StoreError::unique("credential collision; retry")(error)
                    }
                })?;
            }
            let events: Vec<Event> = gateways.iter().zip(&ids).map(|(gateway, id)| {
                Event::new(AuditAction::GatewayRegister,
                    format!("{workspace}/{environment}/{id}"),
                    json!({"gateway_id": id, "name": gateway.name,
                           "credential_prefix": gateway.credential_prefix}))
            }).collect();
            tx.append_audit(org, &actor, &events, now).await?;
        });
        Ok(gateways
            .iter()
            .zip(ids)
            .map(|(gateway, id)| GatewayRecord {
                id,
                name: gateway.name.clone(),
                workspace: workspace.to_owned(),
                environment: environment.to_owned(),
                credential_prefix: gateway.credential_prefix.clone(),
                created_at: now,
                last_token_at: None,
                revoked_at: None,
            })
            .collect())
    }

    /// Up to `limit` gateways of an environment after `after` (creation time and id;
    /// `None`: from the first), oldest first; with `name`, only those of that name (the
    /// unrevoked one and any revoked ones before it).
    pub(crate) async fn gateways(
        &self,
        workspace: &str,
        environment: &str,
        name: Option<&str>,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<GatewayRecord>, StoreError> {
        self.environment_id(workspace, environment).await?;
        let (after_time, after_id) = after.unwrap_or((i64::MIN, ""));
        let by_name = if name.is_some() {
            "AND g.name = $7"
        } else {
            ""
        };
        let sql = format!(
            "{GATEWAY_SELECT} WHERE g.org_id = $1 AND w.slug = $2 AND e.slug = $3 \
             AND (g.created_at > $4 OR (g.created_at = $4 AND g.id > $5)) {by_name} \
             ORDER BY g.created_at, g.id LIMIT $6"
        );
        Ok(on_pool!(self.store(), pool => {
            let mut query = sqlx::query_as(&sql)
                .bind(self.org_id())
                .bind(workspace)
                .bind(environment)
                .bind(after_time)
                .bind(after_id)
                .bind(limit);
            if let Some(name) = name {
                query = query.bind(name);
            }
            query.fetch_all(pool).await?
        }))
    }

    /// One gateway of an environment, by id.
    pub(crate) async fn gateway(
        &self,
        workspace: &str,
        environment: &str,
        id: &str,
    ) -> Result<GatewayRecord, StoreError> {
        let sql = format!(
            "{GATEWAY_SELECT} WHERE g.org_id = $1 AND w.slug = $2 AND e.slug = $3 AND g.id = $4"
        );
        let found: Option<GatewayRecord> = on_pool!(self.store(), pool => sqlx::query_as(&sql)
            .bind(self.org_id())
            .bind(workspace)
            .bind(environment)
            .bind(id)
            .fetch_optional(pool)
            .await?);
        match found {
            Some(gateway) => Ok(gateway),
            // Which is missing: the environment (or workspace), or the gateway in it.
            None => {
                self.environment_id(workspace, environment).await?;
                Err(StoreError::NotFound("gateway"))
            }
        }
    }

    /// Revokes a gateway's credential (idempotent).
    pub(crate) async fn revoke_gateway(
        &self,
        workspace: &str,
        environment: &str,
        id: &str,
        now: i64,
    ) -> Result<GatewayRecord, StoreError> {
        let environment_id = self.environment_id(workspace, environment).await?;
        let actor = self.actor();
        in_tx!(self.store(), tx => {
            let done = sqlx::query(
                "UPDATE gateways SET revoked_at = COALESCE(revoked_at, $4) \
                 WHERE org_id = $1 AND environment_id = $2 AND id = $3")
                .bind(self.org_id())
                .bind(&environment_id)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound("gateway"));
            }
            let event = Event::new(AuditAction::GatewayRevoke,
                format!("{workspace}/{environment}/{id}"), json!({"gateway_id": id}));
            tx.append_audit(self.org_id(), &actor, &[event], now).await?;
        });
        self.gateway(workspace, environment, id).await
    }
}

/// One gateway as [`rename_live_duplicates`] sees it.
pub(super) struct NamedGateway<'a> {
    /// Its id.
    pub(super) id: &'a str,
    /// Its environment's id.
    pub(super) environment_id: &'a str,
    /// Its name.
    pub(super) name: &'a str,
    /// When it was registered.
    pub(super) created_at: i64,
    /// Whether it is revoked (revoked gateways keep their names).
    pub(super) revoked: bool,
}

/// The new names (by id) that make the unrevoked gateways' names unique per environment,
/// by migration 0017's rule: the oldest keeps the name, each later one gets its id's first
/// 8 characters appended. For restoring an archive made before names were unique.
pub(super) fn rename_live_duplicates(gateways: &[NamedGateway<'_>]) -> HashMap<String, String> {
    let mut live: Vec<&NamedGateway<'_>> = gateways.iter().filter(|g| !g.revoked).collect();
    live.sort_by_key(|g| (g.environment_id, g.name, g.created_at, g.id));
    let mut renames = HashMap::new();
    for pair in live.windows(2) {
        let (first, second) = (pair[0], pair[1]);
        if first.environment_id == second.environment_id && first.name == second.name {
            let suffix: String = second.id.chars().take(8).collect();
            renames.insert(second.id.to_owned(), format!("{}-{suffix}", second.name));
        }
    }
    renames
}

/// Whether `error` is the partial unique index on an environment's unrevoked names
/// (migration 0017): PostgreSQL names the constraint, SQLite the columns.
fn is_name_taken(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|db| {
        db.is_unique_violation()
            && (db.constraint() == Some("gateways_live_name")
                || db.message().contains("gateways.name"))
    })
}

/// Refuses a batch that names one gateway twice.
fn refuse_repeated_names(gateways: &[BatchGateway]) -> Result<(), StoreError> {
    let mut seen = HashSet::with_capacity(gateways.len());
    let mut repeated: Vec<String> = gateways
        .iter()
        .filter(|gateway| !seen.insert(gateway.name.as_str()))
        .map(|gateway| gateway.name.clone())
        .collect();
    if repeated.is_empty() {
        return Ok(());
    }
    repeated.sort();
    repeated.dedup();
    Err(StoreError::Duplicate(format!(
        "the batch names {} more than once; gateway names are unique per environment",
        quoted_list(&repeated)
    )))
}

/// The refusal of names already held by unrevoked gateways of `workspace`/`environment`.
fn names_taken(taken: &[String], workspace: &str, environment: &str) -> String {
    let (noun, verb) = if taken.len() == 1 {
        ("a gateway", "is")
    } else {
        ("gateways", "are")
    };
    format!(
        "{noun} named {} {verb} already registered in {workspace}/{environment}; \
         names are unique among an environment's unrevoked gateways (revoke the old one \
         first, or choose another name)",
        quoted_list(taken)
    )
}

/// `"a", "b", "c" and 4 more`.
fn quoted_list(names: &[String]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(NAMES_IN_REFUSAL)
        .map(|name| format!("{name:?}"))
        .collect();
    let rest = names.len().saturating_sub(NAMES_IN_REFUSAL);
    if rest == 0 {
        shown.join(", ")
    } else {
        format!("{} and {rest} more", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(names: &[&str]) -> Vec<BatchGateway> {
        names
            .iter()
            .map(|name| BatchGateway {
                name: (*name).to_owned(),
                credential_hash: String::new(),
                credential_prefix: String::new(),
            })
            .collect()
    }

    #[test]
    fn a_batch_naming_a_gateway_twice_is_refused_with_the_name() {
        assert!(refuse_repeated_names(&batch(&["a", "b"])).is_ok());
        let refused = refuse_repeated_names(&batch(&["a", "b", "a", "a"])).expect_err("a repeat");
        assert_eq!(
            refused.to_string(),
            "the batch names \"a\" more than once; gateway names are unique per environment"
        );
    }

    #[test]
    fn restored_duplicates_are_renamed_like_the_migration_does() {
        let gateway = |id, environment_id, name, created_at, revoked| NamedGateway {
            id,
            environment_id,
            name,
            created_at,
            revoked,
        };
        let renames = rename_live_duplicates(&[
            gateway("0193aaaa-3", "env-1", "edge", 30, false),
            gateway("0193aaaa-1", "env-1", "edge", 10, false),
            gateway("0193bbbb-2", "env-1", "edge", 20, false),
            gateway("0193cccc-4", "env-1", "edge", 5, true),
            gateway("0193dddd-5", "env-2", "edge", 40, false),
        ]);
        let mut renames: Vec<_> = renames.into_iter().collect();
        renames.sort();
        assert_eq!(
            renames,
            [
                ("0193aaaa-3".to_owned(), "edge-0193aaaa".to_owned()),
                ("0193bbbb-2".to_owned(), "edge-0193bbbb".to_owned()),
            ]
        );
    }

    #[test]
    fn a_long_list_of_taken_names_is_cut_short() {
        let names: Vec<String> = (1..=7).map(|i| format!("edge-{i}")).collect();
        let text = names_taken(&names, "platform", "prod");
        assert!(text.starts_with(
            "gateways named \"edge-1\", \"edge-2\", \"edge-3\", \"edge-4\", \"edge-5\" and 2 more are already registered in platform/prod"
        ));
        assert!(names_taken(&names[..1], "w", "e").starts_with("a gateway named \"edge-1\" is"));
    }
}
