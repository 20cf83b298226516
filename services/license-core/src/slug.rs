//! The one slug rule of the project: which names an org, workspace or environment may
//! have. The service checks it on every create, `mcpg-ctl` before it sends one.
//!
//! A slug is 1–63 lowercase ASCII letters, digits and `-`, neither starting nor ending
//! with `-` (a DNS label, RFC 1123). An org slug may become a host name (`ORG.SUFFIX` with
//! subdomain routing), so names the service or its operators use for their own hosts are
//! reserved for orgs: [`RESERVED_ORG_SLUGS`].

use thiserror::Error;

/// The longest slug accepted (a DNS label).
pub const MAX_SLUG_LEN: usize = 63;

/// Org slugs kept for the vendor's own host names and paths. Workspaces and environments
/// are never host names, so they may use these. Orgs created before a name was reserved
/// keep it and stay addressable: the rule applies to new orgs only.
pub const RESERVED_ORG_SLUGS: &[&str] = &[
    "admin", "api", "app", "assets", "auth", "console", "docs", "health", "login", "mail",
    "metrics", "static", "status", "support", "system", "www",
];

/// What a slug names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlugKind {
    /// An org: also a possible host name label, so reserved names are refused.
    Org,
    /// A workspace or an environment.
    Scope,
}

/// Why a text is not a slug.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SlugError {
    /// Empty, too long, or a character outside `[a-z0-9-]`.
    #[error(
        "invalid slug {0:?}: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
    )]
    Syntax(String),
    /// A name reserved for the service's own use.
    #[error("the org slug {0:?} is reserved; choose another name")]
    Reserved(String),
}

/// Checks that `text` is a slug of the given kind. The only slug rule: every create path
/// (API, `tenants.yaml`, CLI) calls it.
pub fn check_slug(text: &str, kind: SlugKind) -> Result<(), SlugError> {
    let bytes = text.as_bytes();
    let edges_ok = |b: Option<&u8>| b.is_some_and(|b| *b != b'-');
    let syntax = !bytes.is_empty()
        && bytes.len() <= MAX_SLUG_LEN
        && edges_ok(bytes.first())
        && edges_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if !syntax {
        return Err(SlugError::Syntax(text.chars().take(80).collect()));
    }
    if kind == SlugKind::Org && RESERVED_ORG_SLUGS.contains(&text) {
        return Err(SlugError::Reserved(text.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_refuse_dashes_at_either_end() {
        for bad in [
            "acme-", "-acme", "-", "a--", "", "Acme", "a b", "a_b", "a.b",
        ] {
            assert!(
                matches!(check_slug(bad, SlugKind::Scope), Err(SlugError::Syntax(_))),
                "{bad:?} should be refused"
            );
        }
        assert!(check_slug(&"a".repeat(64), SlugKind::Org).is_err());
        for good in ["a", "acme-prod-1", "a--b", "0", &"a".repeat(63)] {
            assert_eq!(check_slug(good, SlugKind::Org), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn reserved_names_are_refused_for_orgs_only() {
        for name in RESERVED_ORG_SLUGS {
            assert_eq!(
                check_slug(name, SlugKind::Org),
                Err(SlugError::Reserved((*name).to_owned()))
            );
            assert_eq!(check_slug(name, SlugKind::Scope), Ok(()));
        }
        assert_eq!(check_slug("api-team", SlugKind::Org), Ok(()));
    }
}
