//! Tenants as code: a `tenants.yaml` declares orgs with their license, workspaces,
//! environments and API keys, and one reconciliation engine makes the database match it.
//!
//! parse + validate ([`TenantsDoc::parse_bounded`]) → in one transaction: read the current state,
//! compute the [`Plan`] (create/update/delete per object, see the `plan` module for the
//! rules) and apply it, all or nothing (`infra::tenants_apply::reconcile`). The same engine serves
//! `mcpg-auth serve --tenants FILE` (at start and on every change of the file, see
//! `http::tenants_watch`) and `POST /v1/admin/tenants/apply` (`mcpg-ctl tenants apply`).

mod bounds;
mod diff;
mod file;
mod plan;
mod plugin_sets;
mod structure;

pub(crate) use diff::diff;
pub(crate) use file::TenantsDoc;
pub(crate) use plan::{ChangeAction, Plan};
pub(crate) use plan::{
    Current, CurrentEnvironment, CurrentKey, CurrentOrg, CurrentPluginSet, CurrentWorkspace,
    DeleteTable, GatewaySettings, Op,
};

pub(crate) use bounds::{DEFAULT_MAX_OBJECTS, MAX_DOCUMENT_BYTES};

/// The `managed_by` mark of objects the file created or adopted.
pub(crate) const MANAGED_BY: &str = "tenants.yaml";

/// Why a document was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TenantsError {
    /// The document is not a valid `tenants.yaml` (nothing was changed).
    #[error("{file}{}: {message}", location(*line, *column))]
    Invalid {
        /// The file's name.
        file: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The document uses a YAML anchor or alias (nothing was changed): refused because an
    /// alias multiplies what a small document declares.
    #[error(
        "{file}{}: YAML anchors and aliases (&name, *name) are not accepted; write each \
         object out",
        location(*line, *column)
    )]
    Alias {
        /// The file's name.
        file: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
    },
    /// A tenant's license names entitlement ids the plugin catalog does not know, without
    /// `allow_future_entitlements: true` (nothing was changed).
    #[error("{0}")]
    UnknownEntitlement(String),
    /// A tenant, or its license, lies outside every live certificate of the active signing
    /// key (nothing was changed).
    #[error("{0}")]
    OutsideCertificateBounds(String),
    /// The document or its plan is over a bound (size, objects, changes; nothing was
    /// changed).
    #[error("{0}")]
    TooLarge(String),
    /// The document is valid but cannot be applied to the current state (nothing was
    /// changed): a quota, a key hash in use elsewhere, a revoked key.
    #[error("{0}")]
    Conflict(String),
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(": line {line}, column {column}"),
        (Some(line), None) => format!(": line {line}"),
        _ => String::new(),
    }
}

impl TenantsError {
    pub(crate) fn invalid(
        source: &str,
        location: Option<(usize, usize)>,
        message: impl Into<String>,
    ) -> Self {
        TenantsError::Invalid {
            file: source.to_owned(),
            line: location.map(|l| l.0),
            column: location.map(|l| l.1),
            message: message.into(),
        }
    }
}

/// How to apply a document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApplyOptions {
    /// Delete managed objects the document no longer names.
    pub(crate) prune: bool,
    /// Compute the plan only.
    pub(crate) dry_run: bool,
    /// The object bound the document was parsed with; a plan may list at most twice as
    /// many changes (the document's objects, plus deletions of managed objects a previous
    /// document declared).
    pub(crate) max_objects: usize,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            prune: false,
            dry_run: false,
            max_objects: bounds::DEFAULT_MAX_OBJECTS,
        }
    }
}

impl ApplyOptions {
    /// The most changes a plan may list.
    pub(crate) fn max_changes(&self) -> usize {
        self.max_objects.saturating_mul(2)
    }
}
