//! What a PostgreSQL backup and restore read from the catalog: the schema's tables in
//! foreign-key order, which are under row-level security, and the migrations applied.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;

use super::BackupError;

/// The migration history: its versions travel in the header, not as rows.
pub(super) const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// `name` as a quoted SQL identifier.
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The tables of the current schema (but the migration history), each after the tables
/// its foreign keys reference; ties in name order.
pub(super) async fn tables_in_order(conn: &mut PgConnection) -> Result<Vec<String>, BackupError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname <> $1 \
         ORDER BY 1",
    )
    .bind(MIGRATIONS_TABLE)
    .fetch_all(&mut *conn)
    .await?;
    foreign_key_order(&tables, &references(conn).await?)
}

/// Orders `tables` so each comes after those it references (`(from, to)` pairs).
fn foreign_key_order(
    tables: &[String],
    references: &[(String, String)],
) -> Result<Vec<String>, BackupError> {
    let mut needs: BTreeMap<&str, BTreeSet<&str>> = tables
        .iter()
        .map(|t| (t.as_str(), BTreeSet::new()))
        .collect();
    for (from, to) in references {
        if from != to
            && let Some(set) = needs.get_mut(from.as_str())
        {
            set.insert(to.as_str());
        }
    }
    let mut order = Vec::with_capacity(tables.len());
    while !needs.is_empty() {
        let ready: Vec<&str> = needs
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !needs.contains_key(d)))
            .map(|(t, _)| *t)
            .collect();
        if ready.is_empty() {
            return Err(BackupError::Refused(format!(
                "the foreign keys of {:?} form a cycle",
                needs.keys().collect::<Vec<_>>()
            )));
        }
        for table in ready {
            needs.remove(table);
            order.push(table.to_owned());
        }
    }
    Ok(order)
}

/// Whether `order` lists every table after the ones it references.
pub(super) fn is_foreign_key_order(order: &[String], references: &[(String, String)]) -> bool {
    let at = |t: &str| order.iter().position(|o| o == t);
    references
        .iter()
        .all(|(from, to)| match (at(from), at(to)) {
            (Some(f), Some(t)) => from == to || t < f,
            _ => false,
        })
}

/// The foreign keys of the current schema as `(table, referenced table)`.
pub(super) async fn references(
    conn: &mut PgConnection,
) -> Result<Vec<(String, String)>, BackupError> {
    Ok(sqlx::query_as(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c \
         JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// The tables of the current schema with row-level security enabled.
pub(super) async fn row_security_tables(
    conn: &mut PgConnection,
) -> Result<Vec<String>, BackupError> {
    Ok(sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relrowsecurity \
         ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// The migrations applied, or `None` when the schema has no migration history.
pub(super) async fn applied_migrations(
    conn: &mut PgConnection,
) -> Result<Option<Vec<i64>>, BackupError> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relname = $1)",
    )
    .bind(MIGRATIONS_TABLE)
    .fetch_one(&mut *conn)
    .await?;
    if !exists {
        return Ok(None);
    }
    Ok(Some(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut *conn)
            .await?,
    ))
}

/// This binary's PostgreSQL migrations.
pub(super) fn expected_migrations() -> Vec<i64> {
    crate::infra::store::postgres::MIGRATOR
        .iter()
        .map(|m| m.version)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_the_tables_they_reference() {
        let tables: Vec<String> = ["gateways", "orgs", "workspaces", "environments"]
            .map(String::from)
            .into();
        let refs: Vec<(String, String)> = [
            ("gateways", "environments"),
            ("gateways", "orgs"),
            ("environments", "workspaces"),
            ("workspaces", "orgs"),
            ("orgs", "orgs"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .into();
        let order = foreign_key_order(&tables, &refs).expect("no cycle");
        assert_eq!(order, ["orgs", "workspaces", "environments", "gateways"]);
        assert!(is_foreign_key_order(&order, &refs));
        let reversed: Vec<String> = order.into_iter().rev().collect();
        assert!(!is_foreign_key_order(&reversed, &refs));
        let cycle = [("orgs", "gateways")].map(|(a, b)| (a.to_owned(), b.to_owned()));
        assert!(foreign_key_order(&tables, &[refs, cycle.into()].concat()).is_err());
    }
}
