//! `mcpg-license-core`: the pure, synchronous heart of MCPG licensing.
//!
//! Tiers, entitlement ids and sets, the plugin catalog, the claims schema, Ed25519 keys
//! with derived key ids, the online JWT and offline PASETO codecs, issuer certificates
//! and the chain `root → certificate → token`. No I/O, no async runtime: gateways depend
//! on it cheaply and its tests need no runtime.

pub mod audit;
pub mod catalog;
pub mod cert;
pub mod chain;
pub mod claims;
pub mod clock;
pub mod duration;
pub mod entitlement;
pub mod error;
pub mod jwt;
pub mod keys;
pub mod limits;
pub mod paseto;
pub mod plugin_set;
pub mod revocation;
pub mod sealed;
pub mod slug;
pub mod suggest;
pub mod tier;
pub mod usage;

pub use catalog::{Catalog, CatalogDenial, PluginSpec, UnknownEntitlement, UnknownEntitlements};
pub use cert::{Bounds, IssuerCertificate};
pub use chain::{
    LicenseSigner, TrustStore, Unverified, VerifiedIssuer, VerifiedLicense, decode_unverified,
    issue_offline_license,
};
pub use claims::{AUDIENCE, ClaimsError, LicenseClaims, TimeFormat};
pub use clock::{Clock, ManualClock, SystemClock, UnixTime};
pub use entitlement::{EntitlementId, EntitlementSet};
pub use error::{BoundsViolation, VerifyError};
pub use jwt::{JwtSigner, KeySet, LEEWAY, MAX_TOKEN_BYTES, Validity};
pub use keys::{Jwk, Jwks, KeyError, KeyId, PublicKey, SigningKey};
pub use limits::{LimitKey, Limits};
pub use plugin_set::{PluginSet, PluginSetClaim, PluginSetEntry, PluginSetError};
pub use revocation::RevocationList;
pub use slug::{MAX_SLUG_LEN, RESERVED_ORG_SLUGS, SlugError, SlugKind, check_slug};
pub use tier::Tier;
