//! Domain types of the service: slugs, org status, key state. Parsed at the edge so that
//! handlers and the store only see valid values.

pub(crate) mod build_info;
pub(crate) mod credential;
mod license;
pub(crate) mod oidc_config;
pub(crate) mod plugin_sets;
pub(crate) mod rbac;
mod refusal;
pub(crate) mod settings;
pub(crate) mod tenants_file;
pub(crate) mod usage;
pub(crate) mod usage_summary;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub(crate) use license::{LicenseRecord, entitlements_at};
pub(crate) use mcpg_license_core::slug::{SlugError, SlugKind};
pub(crate) use refusal::Refusal;
pub(crate) use refusal::org_standing;

/// A URL-safe name of an org, workspace or environment (the rule is
/// [`mcpg_license_core::check_slug`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// Checks `text` is a slug of a workspace or environment (or names an existing org).
    pub fn parse(text: &str) -> Result<Self, SlugError> {
        Self::parse_as(text, SlugKind::Scope)
    }

    /// Checks `text` may name a new org: a slug and not a reserved name.
    pub(crate) fn parse_org(text: &str) -> Result<Self, SlugError> {
        Self::parse_as(text, SlugKind::Org)
    }

    fn parse_as(text: &str, kind: SlugKind) -> Result<Self, SlugError> {
        mcpg_license_core::check_slug(text, kind)?;
        Ok(Self(text.to_owned()))
    }

    /// The slug text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Slug::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether an org may obtain tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgStatus {
    /// Normal.
    Active,
    /// Explicitly suspended: every token request is refused (`org_suspended`).
    Suspended,
    /// On trial until `trial_expires_at`; refused (`trial_expired`) after it.
    Trial,
}

/// A status string from the database that is not one.
#[derive(Debug, Error)]
#[error("unknown value {0:?}")]
pub struct UnknownValue(pub String);

impl OrgStatus {
    /// The stored form.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            OrgStatus::Active => "active",
            OrgStatus::Suspended => "suspended",
            OrgStatus::Trial => "trial",
        }
    }
}

impl FromStr for OrgStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(OrgStatus::Active),
            "suspended" => Ok(OrgStatus::Suspended),
            "trial" => Ok(OrgStatus::Trial),
            other => Err(UnknownValue(other.to_owned())),
        }
    }
}

/// The life cycle of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KeyState {
    /// Published in the JWKS, not yet signing.
    Pending,
    /// Signing new tokens.
    Active,
    /// No longer signing; still published while tokens it signed may be within grace.
    Retiring,
    /// Unpublished.
    Retired,
}

impl KeyState {
    /// The stored form.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }

    /// Whether the key belongs in the JWKS.
    pub(crate) const fn is_published(self) -> bool {
        !matches!(self, KeyState::Retired)
    }
}

impl FromStr for KeyState {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(KeyState::Pending),
            "active" => Ok(KeyState::Active),
            "retiring" => Ok(KeyState::Retiring),
            "retired" => Ok(KeyState::Retired),
            other => Err(UnknownValue(other.to_owned())),
        }
    }
}

/// Why a free-text field (a display name, a token name, a reason) is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum TextError {
    /// Empty after trimming, or longer than allowed.
    #[error("{field} must be 1-{max} characters")]
    Length {
        /// The field's name in the request.
        field: &'static str,
        /// Its longest length, in characters.
        max: usize,
    },
    /// A control, bidirectional-override or invisible character.
    #[error(
        "{field} must not contain control, bidirectional or invisible characters (found U+{code:04X})"
    )]
    Forbidden {
        /// The field's name in the request.
        field: &'static str,
        /// The first such character.
        code: u32,
    },
}

/// Whether `c` must never appear in text shown to people: control characters,
/// bidirectional controls (which can make a name read as another, "Trojan Source"),
/// zero-width and other invisible characters, and line or paragraph separators.
pub(crate) fn is_forbidden_in_display_text(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'                   // Arabic letter mark (bidi)
            | '\u{200B}'..='\u{200F}'    // zero-width space/non-joiner/joiner, LRM, RLM
            | '\u{2028}'..='\u{202E}'    // line/paragraph separators, LRE RLE PDF LRO RLO
            | '\u{2060}'                 // word joiner
            | '\u{2066}'..='\u{2069}'    // LRI RLI FSI PDI
            | '\u{FEFF}' // zero-width no-break space (BOM)
        )
}

/// The one rule for free text people read (org display names, gateway, token and key
/// names, reasons): trimmed, 1–`max` characters, no character of
/// [`is_forbidden_in_display_text`]. Returns the trimmed text.
pub(crate) fn display_text(
    field: &'static str,
    text: &str,
    max: usize,
) -> Result<String, TextError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > max {
        return Err(TextError::Length { field, max });
    }
    if let Some(c) = text.chars().find(|c| is_forbidden_in_display_text(*c)) {
        return Err(TextError::Forbidden {
            field,
            code: u32::from(c),
        });
    }
    Ok(text.to_owned())
}

/// The longest `namespace` of an org (a Kubernetes namespace: an RFC 1123 label).
const MAX_NAMESPACE: usize = 63;
/// The longest `catalog_file` of an org.
const MAX_CATALOG_FILE: usize = 1024;

/// An org's gateway-side `namespace`: a Kubernetes namespace name (an RFC 1123 label:
/// 1-63 lowercase letters, digits and `-`, starting and ending with a letter or digit).
pub(crate) fn gateway_namespace(text: &str) -> Result<String, String> {
    if is_dns_label(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "namespace {text:?} is not a Kubernetes namespace name (1-{MAX_NAMESPACE} \
             lowercase letters, digits and '-', starting and ending with a letter or digit)"
        ))
    }
}

/// An org's routing name: the host label that selects it under subdomain routing
/// (`acme` in `acme.mcpg.dev`), an RFC 1123 label like a namespace.
pub(crate) fn routing_name(text: &str) -> Result<String, String> {
    if is_dns_label(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "routing_name {text:?} is not a DNS label (1-{MAX_NAMESPACE} lowercase letters, \
             digits and '-', starting and ending with a letter or digit)"
        ))
    }
}

/// An RFC 1123 label: 1-63 lowercase letters, digits and `-`, not starting or ending
/// with `-`.
fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAMESPACE
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// An org's gateway-side `catalog_file`: a path as the gateway names it, under the
/// display-text rule (1-1024 characters, no control or invisible character).
pub(crate) fn catalog_file(text: &str) -> Result<String, String> {
    display_text("catalog_file", text, MAX_CATALOG_FILE).map_err(|e| e.to_string())
}

/// A fresh random id (UUID v7: time-ordered, so inserts stay index-friendly).
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_lowercase_names_and_refuse_the_rest() {
        assert!(Slug::parse("acme-prod-1").is_ok());
        for bad in ["", "-acme", "Acme", "a b", "a/b", &"a".repeat(64)] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn org_slugs_refuse_reserved_names_other_slugs_allow_them() {
        assert!(Slug::parse_org("admin").is_err());
        assert!(Slug::parse("admin").is_ok());
        assert!(Slug::parse("acme-").is_err());
    }

    #[test]
    fn display_text_refuses_bidi_invisible_and_control_characters() {
        assert_eq!(display_text("name", "  Acme  ", 10), Ok("Acme".to_owned()));
        assert_eq!(
            display_text("name", "Café Ünïcode 日本", 20).map(|_| ()),
            Ok(())
        );
        for c in [
            '\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{200B}',
            '\u{200D}', '\u{FEFF}', '\u{0007}', '\n', '\u{0085}',
        ] {
            let text = format!("ac{c}me");
            assert_eq!(
                display_text("display_name", &text, 200),
                Err(TextError::Forbidden {
                    field: "display_name",
                    code: u32::from(c)
                }),
                "U+{:04X}",
                u32::from(c)
            );
        }
        assert!(matches!(
            display_text("name", "   ", 10),
            Err(TextError::Length { .. })
        ));
        assert!(display_text("name", &"x".repeat(11), 10).is_err());
    }

    #[test]
    fn statuses_round_trip_through_their_stored_form() {
        for status in [OrgStatus::Active, OrgStatus::Suspended, OrgStatus::Trial] {
            assert_eq!(status.as_str().parse::<OrgStatus>().ok(), Some(status));
        }
        for state in [
            KeyState::Pending,
            KeyState::Active,
            KeyState::Retiring,
            KeyState::Retired,
        ] {
            assert_eq!(state.as_str().parse::<KeyState>().ok(), Some(state));
        }
    }
}
