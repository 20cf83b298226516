//! Turning the store's rows into directory entries.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::domain::credential::CredentialHash;
use crate::infra::plugin_set_cache::PluginSetCache;
use crate::infra::store::{DirectoryGateway, DirectoryOrg};

use super::{GatewayId, Listed, OrgCell, OrgGrant, PlaceGrant};

/// What a load read besides the entries: each org's cell, and the orgs it could not read.
pub(super) struct Loaded {
    pub(super) cells: HashMap<String, Arc<OrgCell>>,
    pub(super) failed: HashSet<String>,
}

/// An environment's row, until a gateway needs its shared part.
pub(super) struct DirectoryPlace {
    pub(super) workspace_id: String,
    pub(super) workspace: String,
    pub(super) environment: String,
}

/// Turns gateway rows into entries, building each org's and environment's shared part
/// once, on its first gateway.
pub(super) struct Builder<'a> {
    pub(super) orgs: HashMap<String, DirectoryOrg>,
    pub(super) places: HashMap<String, DirectoryPlace>,
    pub(super) sets: HashMap<String, String>,
    pub(super) plugin_sets: &'a PluginSetCache,
    pub(super) cells: HashMap<String, Arc<OrgCell>>,
    pub(super) place_grants: HashMap<String, Arc<PlaceGrant>>,
    pub(super) failed: HashSet<String>,
}

impl OrgGrant {
    /// The shared grant of an org as the directory's query read it.
    pub(super) fn from_row(read: DirectoryOrg) -> Self {
        Self::new(
            read.id,
            read.slug,
            read.status,
            read.trial_expires_at,
            read.license,
        )
    }
}

impl Builder<'_> {
    pub(super) fn list(&mut self, gateway: DirectoryGateway) -> Option<(CredentialHash, Listed)> {
        if self.failed.contains(&gateway.org_id) {
            return None;
        }
        let Some(hash) = CredentialHash::from_hex(&gateway.credential_hash) else {
            // No path can authenticate it; the database path refuses it too.
            tracing::warn!(gateway = %gateway.id, "a stored credential hash is not 64 hex digits; that gateway cannot get tokens");
            return None;
        };
        let org = match self.cells.get(&gateway.org_id) {
            Some(org) => org.clone(),
            // Deleted while this load read: its change marks it dirty again.
            None => {
                let read = self.orgs.remove(&gateway.org_id)?;
                let cell = Arc::new(OrgCell::new(OrgGrant::from_row(read)));
                self.cells.insert(gateway.org_id.clone(), cell.clone());
                cell
            }
        };
        let place = match self.place_grants.get(&gateway.environment_id) {
            Some(place) => place.clone(),
            None => {
                let read = self.places.remove(&gateway.environment_id)?;
                let text = self
                    .sets
                    .get(&gateway.environment_id)
                    .or_else(|| self.sets.get(&read.workspace_id));
                let plugin_set = match text.map(|text| self.plugin_sets.prepare(text)) {
                    None => None,
                    Some(Ok(set)) => Some(set),
                    Some(Err(error)) => {
                        tracing::warn!(error = %error, org = %gateway.org_id, "a stored plugin set cannot be read into the credential directory; the org's gateways are read from the database");
                        self.failed.insert(gateway.org_id);
                        return None;
                    }
                };
                let place = Arc::new(PlaceGrant {
                    workspace: read.workspace.into(),
                    environment: read.environment.into(),
                    plugin_set,
                });
                self.place_grants
                    .insert(gateway.environment_id.clone(), place.clone());
                place
            }
        };
        let listed = Listed {
            id: GatewayId::new(&gateway.id),
            org,
            place,
        };
        Some((hash, listed))
    }
}
