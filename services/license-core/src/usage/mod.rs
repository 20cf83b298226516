//! Usage receipts of offline (air-gapped) gateways: the signed, hash-chained day entries of
//! a deployment's usage ledger, the bundle `mcpg-entitlements usage export` writes, and
//! [`verify_bundle`], which `mcpg-license usage verify`, `issue --renew` and the service's
//! import share.
//!
//! An entry is one UTC day of one deployment. Its *canonical bytes* are the RFC 8785 form
//! of its members (`day deployment_id gateways_active license_id org peak_gateways plugins
//! prev_hash seq tokens v version`, `plugins` an object of `{"allowed","refused"}` objects;
//! counts written as decimal integers), its `hash` is SHA-256 of those bytes, and its
//! `prev_hash` is the previous entry's `hash` (64 zeros for the first entry, `seq` 1). The
//! deployment key signs [`ENTRY_SIGNATURE_DOMAIN`] followed by the canonical bytes.
//!
//! What this proves, and what not: the deployment key lives on the customer's site, so the
//! signatures say "this deployment's key wrote it", not "the vendor saw it". What cannot be
//! done unnoticed is rewriting history the vendor has already imported: the vendor keeps the
//! key and the chain head ([`ChainState`]) of each deployment, and every later bundle must
//! continue exactly from that head with the same key.

mod bundle;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::canonical::write_string;
use crate::audit::hex_lower;
use crate::clock::{UnixTime, to_rfc3339};
use crate::keys::{PublicKey, SigningKey};

pub use bundle::{
    BUNDLE_FORMAT, Bundle, ChainState, LicenseBinding, LicenseCheck, MAX_BUNDLE_BYTES,
    ReceiptError, VerifiedBundle, verify_bundle,
};

/// The entry format version (`v`).
pub const ENTRY_VERSION: u32 = 1;
/// What the deployment key signs before an entry's canonical bytes.
pub const ENTRY_SIGNATURE_DOMAIN: &[u8] = b"mcpg-usage-entry-v1\0";
/// The `prev_hash` of a deployment's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// At most this many plugins per entry (and per federated report).
pub const MAX_PLUGINS: usize = 512;
/// The longest plugin name.
pub const MAX_PLUGIN_NAME: usize = 64;
/// The longest gateway version string.
pub const MAX_VERSION_LEN: usize = 64;
/// The longest org, deployment or license id in an entry.
const MAX_ID_LEN: usize = 256;
/// The bucket unknown plugins (not in the catalog) are counted in, never by their name.
pub const UNKNOWN_PLUGIN_BUCKET: &str = "_unknown";

/// Whether `name` may name a plugin in a report or entry: 1–64 of `[a-z0-9._-]`.
pub fn is_plugin_name(name: &str) -> bool {
    (1..=MAX_PLUGIN_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
}

/// A UTC calendar day, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

impl Day {
    /// The day `at` falls on (UTC).
    pub fn of(at: UnixTime) -> Self {
        Day(at.div_euclid(86_400))
    }

    /// Parses `YYYY-MM-DD` (years 1970–9999).
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 10 {
            return None;
        }
        let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        let at = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
        let day = Day::of(at);
        (day.to_string() == text && at >= 0).then_some(day)
    }

    /// The next day.
    pub fn next(self) -> Self {
        Day(self.0 + 1)
    }

    /// Midnight UTC that starts the day.
    pub fn start(self) -> UnixTime {
        self.0 * 86_400
    }

    /// Days since 1970-01-01.
    pub fn number(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = to_rfc3339(self.start());
        f.write_str(text.get(..10).unwrap_or(&text))
    }
}

/// How many checks of one plugin were allowed and refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginCounts {
    /// Checks that allowed the plugin.
    pub allowed: u64,
    /// Checks that refused it.
    pub refused: u64,
}

impl PluginCounts {
    /// Adds `other`, saturating.
    pub fn add(&mut self, other: PluginCounts) {
        self.allowed = self.allowed.saturating_add(other.allowed);
        self.refused = self.refused.saturating_add(other.refused);
    }

    /// Whether both counts are zero.
    pub fn is_zero(&self) -> bool {
        self.allowed == 0 && self.refused == 0
    }
}

/// One UTC day of a deployment's usage: what is chained and signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayEntry {
    /// Format version ([`ENTRY_VERSION`]).
    pub v: u32,
    /// Position in the deployment's ledger, from 1, without gaps.
    pub seq: u64,
    /// The day (`YYYY-MM-DD`, UTC).
    pub day: String,
    /// The deployment the ledger belongs to (the license's `bind`).
    pub deployment_id: String,
    /// The org of the license in force.
    pub org: String,
    /// The license in force at the end of the day.
    pub license_id: String,
    /// Gateways active that day (1 for a single-gateway deployment, 0 for a day it was off).
    pub gateways_active: u32,
    /// Tokens issued that day (0 offline: there is no federation).
    pub tokens: u64,
    /// Most gateways active at once that day.
    pub peak_gateways: u32,
    /// Per plugin: checks allowed and refused.
    pub plugins: BTreeMap<String, PluginCounts>,
    /// The gateway's version.
    pub version: String,
    /// The previous entry's hash (hex), [`GENESIS_HASH`] for `seq` 1.
    pub prev_hash: String,
}

/// Why an entry's fields are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFieldError(pub String);

impl fmt::Display for EntryFieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_id(value: &str, name: &str) -> Result<(), EntryFieldError> {
    if value.is_empty() || value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
        return Err(EntryFieldError(format!(
            "{name} is empty, longer than {MAX_ID_LEN} bytes or not printable"
        )));
    }
    Ok(())
}

impl DayEntry {
    /// Checks every field's syntax and bounds.
    pub fn validate(&self) -> Result<(), EntryFieldError> {
        let fail = |m: String| Err(EntryFieldError(m));
        if self.v != ENTRY_VERSION {
            return fail(format!("entry format v{} is not v{ENTRY_VERSION}", self.v));
        }
        if self.seq == 0 {
            return fail("seq starts at 1".into());
        }
        if Day::parse(&self.day).is_none() {
            return fail(format!("day {:?} is not a YYYY-MM-DD date", self.day));
        }
        check_id(&self.deployment_id, "deployment_id")?;
        check_id(&self.org, "org")?;
        check_id(&self.license_id, "license_id")?;
        if self.version.is_empty()
            || self.version.len() > MAX_VERSION_LEN
            || !self.version.bytes().all(|b| b.is_ascii_graphic())
        {
            return fail(format!(
                "version is empty, longer than {MAX_VERSION_LEN} bytes or not printable ASCII"
            ));
        }
        if self.plugins.len() > MAX_PLUGINS {
            return fail(format!("more than {MAX_PLUGINS} plugins"));
        }
        if let Some(bad) = self.plugins.keys().find(|name| !is_plugin_name(name)) {
            return fail(format!("plugin name {bad:?} is not 1-64 of [a-z0-9._-]"));
        }
        if !is_hex_hash(&self.prev_hash) {
            return fail("prev_hash is not 64 lower-case hex digits".into());
        }
        if (self.seq == 1) != (self.prev_hash == GENESIS_HASH) {
            return fail("only the entry with seq 1 starts from the genesis hash".into());
        }
        Ok(())
    }

    /// The RFC 8785 canonical JSON of the entry (members sorted, no whitespace).
    pub fn canonical(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(256 + 48 * self.plugins.len());
        let member = |out: &mut String, name: &str, first: bool| {
            if !first {
                out.push(',');
            }
            write_string(out, name);
            out.push(':');
        };
        out.push('{');
        member(&mut out, "day", true);
        write_string(&mut out, &self.day);
        member(&mut out, "deployment_id", false);
        write_string(&mut out, &self.deployment_id);
        member(&mut out, "gateways_active", false);
        let _ = write!(out, "{}", self.gateways_active);
        member(&mut out, "license_id", false);
        write_string(&mut out, &self.license_id);
        member(&mut out, "org", false);
        write_string(&mut out, &self.org);
        member(&mut out, "peak_gateways", false);
        let _ = write!(out, "{}", self.peak_gateways);
        member(&mut out, "plugins", false);
        out.push('{');
        // Plugin names are ASCII, so byte order is RFC 8785's UTF-16 order.
        for (index, (name, counts)) in self.plugins.iter().enumerate() {
            member(&mut out, name, index == 0);
            let _ = write!(
                out,
                "{{\"allowed\":{},\"refused\":{}}}",
                counts.allowed, counts.refused
            );
        }
        out.push('}');
        member(&mut out, "prev_hash", false);
        write_string(&mut out, &self.prev_hash);
        member(&mut out, "seq", false);
        let _ = write!(out, "{}", self.seq);
        member(&mut out, "tokens", false);
        let _ = write!(out, "{}", self.tokens);
        member(&mut out, "v", false);
        let _ = write!(out, "{}", self.v);
        member(&mut out, "version", false);
        write_string(&mut out, &self.version);
        out.push('}');
        out
    }

    /// SHA-256 of the canonical bytes, hex: what the next entry's `prev_hash` names.
    pub fn hash(&self) -> String {
        hex_lower(&Sha256::digest(self.canonical().as_bytes()))
    }

    /// Signs the entry with the deployment key.
    pub fn sign(self, key: &SigningKey) -> SignedEntry {
        let canonical = self.canonical();
        let hash = hex_lower(&Sha256::digest(canonical.as_bytes()));
        let mut message = Vec::with_capacity(ENTRY_SIGNATURE_DOMAIN.len() + canonical.len());
        message.extend_from_slice(ENTRY_SIGNATURE_DOMAIN);
        message.extend_from_slice(canonical.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(key.sign(&message));
        SignedEntry {
            entry: self,
            hash,
            sig,
        }
    }
}

/// An entry with its hash and the deployment key's signature: one line of the ledger file
/// and one element of a bundle's `entries` (the entry's members, then `hash` and `sig`;
/// any other member is refused, since the signature would not cover it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "EntryWire", into = "EntryWire")]
pub struct SignedEntry {
    /// The signed entry.
    pub entry: DayEntry,
    /// SHA-256 of the entry's canonical bytes (hex).
    pub hash: String,
    /// Ed25519 signature (base64url) over [`ENTRY_SIGNATURE_DOMAIN`] ‖ canonical bytes.
    pub sig: String,
}

/// The flat JSON form of a [`SignedEntry`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryWire {
    v: u32,
    seq: u64,
    day: String,
    deployment_id: String,
    org: String,
    license_id: String,
    gateways_active: u32,
    tokens: u64,
    peak_gateways: u32,
    plugins: BTreeMap<String, PluginCounts>,
    version: String,
    prev_hash: String,
    hash: String,
    sig: String,
}

impl From<EntryWire> for SignedEntry {
    fn from(w: EntryWire) -> Self {
        SignedEntry {
            entry: DayEntry {
                v: w.v,
                seq: w.seq,
                day: w.day,
                deployment_id: w.deployment_id,
                org: w.org,
                license_id: w.license_id,
                gateways_active: w.gateways_active,
                tokens: w.tokens,
                peak_gateways: w.peak_gateways,
                plugins: w.plugins,
                version: w.version,
                prev_hash: w.prev_hash,
            },
            hash: w.hash,
            sig: w.sig,
        }
    }
}

impl From<SignedEntry> for EntryWire {
    fn from(s: SignedEntry) -> Self {
        let e = s.entry;
        EntryWire {
            v: e.v,
            seq: e.seq,
            day: e.day,
            deployment_id: e.deployment_id,
            org: e.org,
            license_id: e.license_id,
            gateways_active: e.gateways_active,
            tokens: e.tokens,
            peak_gateways: e.peak_gateways,
            plugins: e.plugins,
            version: e.version,
            prev_hash: e.prev_hash,
            hash: s.hash,
            sig: s.sig,
        }
    }
}

impl SignedEntry {
    /// Whether `hash` is the entry's hash.
    pub fn hash_matches(&self) -> bool {
        self.entry.hash() == self.hash
    }

    /// Whether `sig` is `key`'s signature of the entry.
    pub fn signature_verifies(&self, key: &PublicKey) -> bool {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(&self.sig) else {
            return false;
        };
        let Ok(signature) = <[u8; 64]>::try_from(raw.as_slice()) else {
            return false;
        };
        let mut message = ENTRY_SIGNATURE_DOMAIN.to_vec();
        message.extend_from_slice(self.entry.canonical().as_bytes());
        key.verify(&message, &signature)
    }

    /// The entry as one JSON line (no newline).
    pub fn to_line(&self) -> String {
        // Serialising plain strings, integers and maps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A public key as the bundle and the chain state write it: base64url of the raw 32 bytes.
pub fn encode_key(key: &PublicKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Reads a key written by [`encode_key`].
pub fn decode_key(text: &str) -> Option<PublicKey> {
    let raw = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
    let bytes: [u8; 32] = raw.as_slice().try_into().ok()?;
    PublicKey::from_bytes(&bytes).ok()
}

/// SHA-256 (hex) of a license's text as the bundle binds it (surrounding whitespace removed).
pub fn license_digest(license: &str) -> String {
    hex_lower(&Sha256::digest(license.trim().as_bytes()))
}

fn is_hex_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
