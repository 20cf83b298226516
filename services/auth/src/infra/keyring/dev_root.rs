//! The development root of a deployment without `--signing-key`: one per database.
//!
//! The first replica to start on a database stores its root there (sealed under the KEK);
//! every later replica opens that one, so all of them certify the shared signing keys
//! with the same root and a gateway pinning `dev-root.public.paserk` of any replica trusts
//! every replica. A data directory that already holds a root from before (when each
//! replica made its own) offers it: the first such replica's root is adopted, so gateways
//! pinning it keep working; a database that holds another root wins.

use std::path::Path;

use mcpg_license_core::SigningKey;

use super::KeyringError;
use crate::infra::secrets::{self, DEV_ROOT_PUBLIC, DEV_ROOT_SECRET, Kek};
use crate::infra::store::{Store, StoredRoot};

/// Where the development root in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RootOrigin {
    /// Generated now and stored in the database.
    Generated,
    /// This data directory's root, stored in the database now.
    Adopted,
    /// Already in the database.
    Stored,
}

/// The database's development root, stored there first if it holds none; its files are
/// written to `data_dir`.
pub(crate) async fn cluster_dev_root(
    store: &Store,
    kek: &Kek,
    data_dir: &Path,
    now: i64,
) -> Result<(SigningKey, RootOrigin), KeyringError> {
    // A KEK that cannot open the stored keys (a deployment from before roots lived in the
    // database, started with another KEK) must not store a root the other replicas could
    // not open: it stops here, naming the key.
    if let Some(key) = store.keys().await?.first() {
        kek.open_key(&key.kid, &key.secret_sealed)?;
    }
    let local = secrets::read_dev_root_file(data_dir)?;
    let candidate_key = match &local {
        Some(key) => key.clone(),
        None => SigningKey::generate().map_err(|e| KeyringError::Sign(e.to_string()))?,
    };
    let candidate = StoredRoot {
        kid: candidate_key.kid().to_string(),
        public_key: candidate_key.public_key().to_paserk(),
        secret_sealed: kek.seal_key(&candidate_key)?,
    };
    let (stored, claimed) = store.claim_dev_root(&candidate, now).await?;
    let (root, origin) = if claimed {
        let origin = if local.is_some() {
            RootOrigin::Adopted
        } else {
            RootOrigin::Generated
        };
        (candidate_key, origin)
    } else {
        let root = kek.open_root(&stored.kid, &stored.secret_sealed)?;
        (root, RootOrigin::Stored)
    };
    if let Some(local) = local.filter(|local| local.kid() != root.kid()) {
        tracing::warn!(
            database_root_kid = %root.kid(),
            data_dir_root_kid = %local.kid(),
            "the database already holds another development root, and the database wins: this replica certifies with {} and rewrites {}; gateways that pinned the old public key must pin the new one; {} (the old root's secret) is left in place, unused",
            root.kid(),
            data_dir.join(DEV_ROOT_PUBLIC).display(),
            data_dir.join(DEV_ROOT_SECRET).display(),
        );
    }
    secrets::write_dev_root_files(data_dir, &root)?;
    Ok((root, origin))
}
