//! Applying a tenants document: the store reconciles in one transaction
//! (`Store::reconcile_tenants`), and this module names what can go wrong on the way.

use crate::domain::tenants_file::{ApplyOptions, Plan, TenantsDoc, TenantsError};
use crate::infra::issuer::Issuer;
use crate::infra::store::{Actor, Store, StoreError};

/// Why a document was not applied: the document, or the database (nothing was changed
/// either way).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// The document is refused (invalid, too large, conflicting with the current state).
    #[error(transparent)]
    Refused(#[from] TenantsError),
    /// The database failed.
    #[error("cannot apply tenants: {0}")]
    Store(#[from] StoreError),
}

/// Reconciles the database with `doc` in one transaction and returns what changed (or
/// would change, with `dry_run`). Cached grants are dropped after a write.
pub(crate) async fn reconcile(
    store: &Store,
    issuer: &Issuer,
    doc: &TenantsDoc,
    options: ApplyOptions,
    actor: &Actor,
    now: i64,
) -> Result<Plan, ApplyError> {
    let plan = store.reconcile_tenants(doc, options, actor, now).await?;
    if plan.writes() && !options.dry_run {
        issuer.invalidate();
    }
    Ok(plan)
}
