//! Change events: what a committed write changed, for the caches built on the store.
//!
//! Every mutating store path appends its audit entries through its write transaction
//! ([`WriteTx::append_audit`]); the transaction notes the change each entry's action
//! implies ([`AuditAction::change`], an exhaustive match, so a new action cannot be added
//! without deciding what it invalidates) and publishes them once it has committed. A
//! rolled-back transaction publishes nothing. Listeners (the issuer's grant cache, the
//! limiter's licensed rates) therefore never miss a write and never act on one that did
//! not happen; there is no invalidation call to forget in a handler.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, RwLock};

use sqlx::{Database, Transaction};

use super::StoreError;
use super::audit_log::{Actor, AuditAction, AuditTx, Event};

/// One committed change that cached reads may depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// What a gateway of this org is granted changed: the org's status or trial, its
    /// license, or its gateways, workspaces and environments.
    Grants {
        /// The org.
        org_id: String,
    },
}

impl AuditAction {
    /// The change an entry of this action records, if any cache depends on it.
    pub(crate) fn change(self, org_id: &str) -> Option<Change> {
        let grants = || {
            Some(Change::Grants {
                org_id: org_id.to_owned(),
            })
        };
        match self {
            Self::OrgCreate
            | Self::OrgUpdate
            | Self::OrgSuspend
            | Self::OrgDelete
            | Self::WorkspaceDelete
            | Self::EnvironmentDelete
            | Self::GatewayRegister
            | Self::GatewayRevoke
            | Self::LicenseSet
            | Self::LicenseRevoke
            | Self::TenantsApply => grants(),
            // Creating an empty workspace or environment grants nothing yet.
            Self::WorkspaceCreate | Self::EnvironmentCreate => None,
            // Operators' access is resolved from the database on every request.
            Self::RoleGrant
            | Self::RoleRevoke
            | Self::UserTokenCreate
            | Self::UserTokenRevoke
            | Self::ApiTokenCreate
            | Self::ApiTokenRevoke
            | Self::BootstrapToken
            | Self::Impersonate
            | Self::OidcSet
            | Self::OidcDelete => None,
            // The keyring and the revocation list are reloaded on their own schedule.
            Self::KeyInsert
            | Self::KeyCertificate
            | Self::KeyCertificateAdd
            | Self::KeyCertificateRemove
            | Self::KeyAdvance
            | Self::KeyRoot
            | Self::RevocationsUpload => None,
            Self::TokenIssued => None,
        }
    }
}

type Listener = Arc<dyn Fn(&[Change]) + Send + Sync>;

/// Where committed changes are published; shared by every clone of a store.
#[derive(Default)]
pub(crate) struct Changes {
    listeners: RwLock<Vec<Listener>>,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes").finish_non_exhaustive()
    }
}

impl Changes {
    /// Calls `listener` with the changes of every write committed from now on, in the
    /// committing task, before the write returns to its caller.
    pub(crate) fn subscribe(&self, listener: impl Fn(&[Change]) + Send + Sync + 'static) {
        self.listeners
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::new(listener));
    }

    fn publish(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let listeners = self
            .listeners
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for listener in listeners {
            listener(changes);
        }
    }
}

/// A write transaction that remembers what its audit entries change and publishes it on
/// commit. It dereferences to the backend's connection for the queries of the write.
pub(crate) struct WriteTx<'c, DB: Database> {
    tx: Transaction<'c, DB>,
    changed: Vec<Change>,
}

impl<'c, DB: Database> WriteTx<'c, DB> {
    pub(crate) fn new(tx: Transaction<'c, DB>) -> Self {
        Self {
            tx,
            changed: Vec::new(),
        }
    }

    /// Appends `events`, in order, to `org_id`'s chain (see `audit_log`); returns the new
    /// head seq. The changes they imply are published when the transaction commits.
    pub(crate) async fn append_audit(
        &mut self,
        org_id: &str,
        actor: &Actor,
        events: &[Event],
        now: i64,
    ) -> Result<i64, StoreError>
    where
        DB::Connection: AuditTx,
    {
        let seq = AuditTx::append_audit(&mut *self.tx, org_id, actor, events, now).await?;
        for event in events {
            if let Some(change) = event.action.change(org_id)
                && !self.changed.contains(&change)
            {
                self.changed.push(change);
            }
        }
        Ok(seq)
    }

    /// Commits, then publishes what the transaction changed.
    pub(crate) async fn commit(self, changes: &Changes) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        changes.publish(&self.changed);
        Ok(())
    }
}

impl<DB: Database> Deref for WriteTx<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: Database> DerefMut for WriteTx<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn grant_changes_name_their_org_and_reach_every_listener() {
        let changes = Changes::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        changes.subscribe(move |batch| sink.lock().expect("lock").extend_from_slice(batch));
        let change = AuditAction::LicenseSet.change("org-1");
        assert_eq!(
            change,
            Some(Change::Grants {
                org_id: "org-1".into()
            })
        );
        assert_eq!(AuditAction::TokenIssued.change("org-1"), None);
        changes.publish(&[change.expect("a change")]);
        changes.publish(&[]);
        assert_eq!(seen.lock().expect("lock").len(), 1);
    }
}
