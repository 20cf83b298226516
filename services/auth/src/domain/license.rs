//! A license as the service keeps it.

use mcpg_license_core::{EntitlementId, Limits, Tier};

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
