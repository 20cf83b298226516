//! A license as the service keeps it.

use mcpg_license_core::{Catalog, EntitlementId, EntitlementSet, Limits, Tier};

/// An org's license as stored.
#[derive(Debug, Clone)]
pub(crate) struct LicenseRecord {
    /// License id (the token's `lic`); changes on every set.
    pub(crate) id: String,
    /// Tier.
    pub(crate) tier: Tier,
    /// Added entitlements.
    pub(crate) add: Vec<EntitlementId>,
    /// Removed entitlements.
    pub(crate) remove: Vec<EntitlementId>,
    /// Limits.
    pub(crate) limits: Limits,
    /// Start.
    pub(crate) valid_from: i64,
    /// End.
    pub(crate) valid_until: i64,
    /// Revoked.
    pub(crate) revoked_at: Option<i64>,
    /// Times the license was set for this org.
    pub(crate) revision: i64,
    /// First set.
    pub(crate) created_at: i64,
    /// Last changed.
    pub(crate) updated_at: i64,
}

impl LicenseRecord {
    /// Whether the license is in force at `now`: started, not ended, not revoked.
    pub(crate) fn in_force_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.valid_from <= now && now < self.valid_until
    }
}

/// What an org is entitled to at `now`: its license's set while the license is in force,
/// else nothing — no license, an ended one and a revoked one entitle to nothing.
pub(crate) fn entitlements_at(license: Option<&LicenseRecord>, now: i64) -> EntitlementSet {
    match license {
        Some(l) if l.in_force_at(now) => {
            Catalog::builtin().license_entitlements(l.tier, &l.add, &l.remove)
        }
        _ => EntitlementSet::new(),
    }
}
