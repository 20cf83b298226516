//! Change events: what a committed write changed, for the caches built on the store.
//!
//! Every mutating store path appends its audit entries through its write transaction
//! ([`WriteTx::append_audit`]); the transaction notes the change each entry's action
//! implies ([`AuditAction::change`], an exhaustive match, so a new action cannot be added
//! without deciding what it invalidates) and publishes them once it has committed. A
//! rolled-back transaction publishes nothing. Listeners (the issuer's grant cache, the
//! limiter's licensed rates, the key reloader, the JWKS cache) therefore never miss a
//! write and never act on one that did not happen; there is no invalidation call to forget
//! in a handler.
//!
//! On PostgreSQL the same changes reach the other replicas: the transaction also queues
//! one `NOTIFY` per change ([`WriteTx::notify_peers`]), which PostgreSQL delivers only if
//! it commits, and each replica's listener (`infra::peers`) publishes what it receives
//! from the others through [`Changes::publish`] as if it had been written locally.

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
        /// What of it.
        scope: GrantScope,
    },
    /// The signing keys, their certificates or the revocation list in force changed:
    /// the keyring reloads.
    Keys,
    /// An org's OIDC settings changed: fetched key sets are dropped.
    Oidc {
        /// The org.
        org_id: String,
    },
    /// Anything may have changed (a replica's listener was down and may have missed
    /// notifications): every cache built on the store starts over.
    All,
}

/// What of an org's grants a [`Change::Grants`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantScope {
    /// Only new gateways (a registration): every gateway the org had keeps its grant, so
    /// what a replica holds of the org stays true while the newcomers are read.
    Added,
    /// Only the org's own record (status, trial, slug) or its license: every gateway of the
    /// org is granted from the same new record, and no gateway, environment or plugin set
    /// changed.
    Org,
    /// Its gateways, workspaces, environments or plugin sets too.
    Everything,
}

impl GrantScope {
    /// What two changes to one org changed together: either, if they are the same kind;
    /// anything else needs the org read again in full, and holds its answers back.
    pub(crate) fn and(self, other: Self) -> Self {
        if self == other {
            self
        } else {
            Self::Everything
        }
    }
}

/// The PostgreSQL channel replicas announce their committed changes on.
pub(crate) const CHANNEL: &str = "mcpg_changes";

impl Change {
    /// A change to everything of `org_id`'s grants.
    pub(crate) fn grants(org_id: &str) -> Self {
        Self::Grants {
            org_id: org_id.to_owned(),
            scope: GrantScope::Everything,
        }
    }

    /// The notification payload: `<sender> <kind>[ <org id>[ org|added]]`. A replica of a
    /// version before [`GrantScope`] (or before [`GrantScope::Added`]) does not understand
    /// the last word and treats the change as [`Change::All`]: more reloading, never a
    /// stale grant.
    pub(crate) fn to_payload(&self, sender: &str) -> String {
        match self {
            Self::Grants {
                org_id,
                scope: GrantScope::Everything,
            } => format!("{sender} grants {org_id}"),
            Self::Grants {
                org_id,
                scope: GrantScope::Org,
            } => format!("{sender} grants {org_id} org"),
            Self::Grants {
                org_id,
                scope: GrantScope::Added,
            } => format!("{sender} grants {org_id} added"),
            Self::Keys => format!("{sender} keys"),
            Self::Oidc { org_id } => format!("{sender} oidc {org_id}"),
            Self::All => format!("{sender} all"),
        }
    }

    /// Parses a notification payload into its sender and change; `None` when it is not
    /// one this version understands (a newer replica's: treated as [`Change::All`] by the
    /// listener).
    pub(crate) fn from_payload(payload: &str) -> Option<(&str, Self)> {
        let mut words = payload.split(' ');
        let sender = words.next().filter(|s| !s.is_empty())?;
        let change = match (words.next()?, words.next()) {
            ("grants", Some(org)) if !org.is_empty() => Self::Grants {
                org_id: org.to_owned(),
                scope: match words.next() {
                    None => GrantScope::Everything,
                    Some("org") => GrantScope::Org,
                    Some("added") => GrantScope::Added,
                    Some(_) => return None,
                },
            },
            ("oidc", Some(org)) if !org.is_empty() => Self::Oidc {
                org_id: org.to_owned(),
            },
            ("keys", None) => Self::Keys,
            ("all", None) => Self::All,
            _ => return None,
        };
        words.next().is_none().then_some((sender, change))
    }
}

impl AuditAction {
    /// The change an entry of this action records, if any cache depends on it.
    pub(crate) fn change(self, org_id: &str) -> Option<Change> {
        let grants = || Some(Change::grants(org_id));
        match self {
            // The org's own record or its license: the same gateways, a new shared grant.
            Self::OrgCreate
            | Self::OrgUpdate
            | Self::OrgSuspend
            | Self::LicenseSet
            | Self::LicenseRevoke => Some(Change::Grants {
                org_id: org_id.to_owned(),
                scope: GrantScope::Org,
            }),
            // New gateways only: the org's other gateways keep their grants.
            Self::GatewayRegister => Some(Change::Grants {
                org_id: org_id.to_owned(),
                scope: GrantScope::Added,
            }),
            Self::OrgDelete
            | Self::WorkspaceDelete
            | Self::EnvironmentDelete
            | Self::GatewayRevoke
            | Self::TenantsApply
            | Self::ArchiveRestore
            // Tokens carry the gateway's effective plugin set.
            | Self::PluginSetPut
            | Self::PluginSetDelete => grants(),
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
            | Self::Impersonate => None,
            Self::OidcSet | Self::OidcDelete => Some(Change::Oidc {
                org_id: org_id.to_owned(),
            }),
            // The keyring verifies its certificates against the revocation list in force.
            Self::KeyInsert
            | Self::KeyCertificate
            | Self::KeyCertificateAdd
            | Self::KeyCertificateRemove
            | Self::KeyAdvance
            | Self::KeyRoot
            | Self::RevocationsUpload => Some(Change::Keys),
            Self::TokenIssued => None,
            // Usage records grant nothing: no cache reads them.
            Self::UsageOverLimit | Self::UsageImport => None,
            // The archive of an org that no longer exists: no grant can depend on it.
            Self::ArchivePurge => None,
        }
    }
}

type Listener = Arc<dyn Fn(&[Change]) + Send + Sync>;

/// Where committed changes are published; shared by every clone of a store.
pub(crate) struct Changes {
    listeners: RwLock<Vec<Listener>>,
    /// This process's name on [`CHANNEL`]: random per start, so that a replica ignores
    /// the notifications it sent itself.
    sender: String,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            listeners: RwLock::default(),
            sender: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
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

    /// This process's name in the notifications it sends.
    pub(crate) fn sender(&self) -> &str {
        &self.sender
    }

    /// Calls every listener with `changes` (committed here, or received from a replica).
    pub(crate) fn publish(&self, changes: &[Change]) {
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

impl WriteTx<'_, sqlx::Postgres> {
    /// Queues one notification per change on [`CHANNEL`] (one statement for all), signed
    /// by `sender` (this replica) so that it can ignore its own. PostgreSQL delivers them
    /// when, and only if, the transaction commits.
    pub(crate) async fn notify_peers(&mut self, sender: &str) -> Result<(), sqlx::Error> {
        if self.changed.is_empty() {
            return Ok(());
        }
        let payloads: Vec<String> = self
            .changed
            .iter()
            .map(|change| change.to_payload(sender))
            .collect();
        sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
            .bind(CHANNEL)
            .bind(payloads)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
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

    /// Commits, then publishes what the transaction changed — also when the commit
    /// reports an error, since the database may have committed before the connection
    /// failed (the other replicas then heard of it): dropping a cache for nothing is
    /// harmless, keeping a stale one is not.
    pub(crate) async fn commit(self, changes: &Changes) -> Result<(), sqlx::Error> {
        let committed = self.tx.commit().await;
        changes.publish(&self.changed);
        committed
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
                org_id: "org-1".into(),
                scope: GrantScope::Org,
            })
        );
        assert_eq!(AuditAction::TokenIssued.change("org-1"), None);
        assert_eq!(
            AuditAction::GatewayRegister.change("org-1"),
            Some(Change::Grants {
                org_id: "org-1".into(),
                scope: GrantScope::Added,
            })
        );
        for action in [
            AuditAction::PluginSetPut,
            AuditAction::PluginSetDelete,
            AuditAction::GatewayRevoke,
            AuditAction::OrgDelete,
        ] {
            assert_eq!(action.change("org-1"), Some(Change::grants("org-1")));
        }
        changes.publish(&[change.expect("a change")]);
        changes.publish(&[]);
        assert_eq!(seen.lock().expect("lock").len(), 1);
    }

    #[test]
    fn payloads_round_trip_and_garbage_is_refused() {
        let all = [
            Change::grants("org-1"),
            Change::Grants {
                org_id: "org-1".into(),
                scope: GrantScope::Org,
            },
            Change::Grants {
                org_id: "org-1".into(),
                scope: GrantScope::Added,
            },
            Change::Keys,
            Change::Oidc {
                org_id: "org-2".into(),
            },
            Change::All,
        ];
        for change in all {
            let payload = change.to_payload("replica-a");
            assert_eq!(
                Change::from_payload(&payload),
                Some(("replica-a", change.clone()))
            );
        }
        for garbage in [
            "",
            "r",
            "r grants",
            "r grants ",
            "r grants o everything",
            "r grants o org x",
            "r keys extra",
            "r dance",
            " keys",
            "r all x",
        ] {
            assert_eq!(Change::from_payload(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn keys_and_revocations_reload_the_keyring_and_oidc_names_its_org() {
        assert_eq!(AuditAction::KeyAdvance.change("x"), Some(Change::Keys));
        assert_eq!(
            AuditAction::RevocationsUpload.change("x"),
            Some(Change::Keys)
        );
        assert_eq!(
            AuditAction::OidcSet.change("org-9"),
            Some(Change::Oidc {
                org_id: "org-9".into()
            })
        );
    }
}
