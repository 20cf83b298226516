//! Revocation lists at start: the one kept in the state directory and the configured one,
//! whichever has the higher serial wins; the winner is kept for the next start.

use mcpg_license_core::TrustStore;

use crate::gateway::StartError;
use crate::store::StateStore;

/// Applies the persisted and the configured revocation lists to `trust`. A configured list
/// that does not verify stops the start; an unreadable persisted one is ignored with a
/// warning (the configured list, or the next one, replaces it).
pub(crate) fn apply(
    store: &StateStore,
    trust: &mut TrustStore,
    configured: Option<&str>,
) -> Result<(), StartError> {
    match store.load_revocations() {
        Ok(Some(kept)) => {
            if let Err(e) = trust.apply_revocation_list(&kept) {
                tracing::warn!(error = %e, "ignoring the revocation list kept in the state directory");
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the revocation list kept in the state directory")
        }
    }
    let Some(configured) = configured else {
        return Ok(());
    };
    if trust
        .apply_revocation_list(configured)
        .map_err(StartError::Revocations)?
    {
        if let Err(e) = store.save_revocations(configured) {
            tracing::error!(error = %e, "could not keep the revocation list");
        }
    } else {
        tracing::warn!(
            kept = trust.revocations().map(|r| r.serial),
            "the configured revocation list is not newer than the one already applied; keeping the newer one"
        );
    }
    if let Some(list) = trust.revocations() {
        tracing::info!(
            serial = list.serial,
            certificates = list.certificates.len(),
            licenses = list.licenses.len(),
            "revocation list in force"
        );
    }
    Ok(())
}
