//! Tenant keys: the `(org, workspace, environment)` path a token or license is for.

use std::fmt;
use std::str::FromStr;

use mcpg_license_core::LicenseClaims;
use serde::{Serialize, Serializer};
use thiserror::Error;

/// The tenant a set of entitlements belongs to: an org, optionally narrowed to a workspace
/// and an environment. Written `org/ws/env` (or `org`, `org/ws`; `org/-/env` for an
/// environment without a workspace).
///
/// Held as one canonical string, so hashing and comparing it on the hot path touch a
/// single allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantKey {
    path: Box<str>,
    org_end: usize,
    ws: Option<(usize, usize)>,
    env: Option<(usize, usize)>,
}

/// A tenant written in a form `ORG[/WS[/ENV]]` does not accept.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("invalid tenant {0:?}: expected ORG/WS/ENV (or ORG, ORG/WS) of non-empty slugs")]
pub struct TenantKeyError(String);

/// The placeholder for "no workspace" in `org/-/env`.
const NO_WORKSPACE: &str = "-";

impl TenantKey {
    /// A key from its parts.
    pub fn new(org: impl Into<String>, ws: Option<String>, env: Option<String>) -> Self {
        let mut path = org.into();
        let org_end = path.len();
        let mut push = |part: &str| {
            path.push('/');
            let start = path.len();
            path.push_str(part);
            (start, path.len())
        };
        let ws_range = match (&ws, &env) {
            (Some(ws), _) => Some(push(ws)),
            (None, Some(_)) => {
                push(NO_WORKSPACE);
                None
            }
            (None, None) => None,
        };
        let env_range = env.as_deref().map(&mut push);
        Self {
            path: path.into_boxed_str(),
            org_end,
            ws: ws_range,
            env: env_range,
        }
    }

    /// The tenant a token or license names.
    pub fn of_claims(claims: &LicenseClaims) -> Self {
        Self::new(claims.org.clone(), claims.ws.clone(), claims.env.clone())
    }

    /// Parses `ORG[/WS[/ENV]]`.
    pub fn parse(text: &str) -> Result<Self, TenantKeyError> {
        let bad = || TenantKeyError(text.to_owned());
        let slug = |p: Option<&str>| -> Result<Option<String>, TenantKeyError> {
            match p {
                None => Ok(None),
                Some(s)
                    if !s.is_empty()
                        && s.len() <= 128
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
                {
                    Ok(Some(s.to_owned()))
                }
                Some(_) => Err(bad()),
            }
        };
        let mut parts = text.split('/');
        let org = slug(parts.next())?.ok_or_else(bad)?;
        let ws = slug(parts.next())?;
        let env = slug(parts.next())?;
        if parts.next().is_some()
            || org == NO_WORKSPACE
            || (ws.as_deref() == Some(NO_WORKSPACE) && env.is_none())
        {
            return Err(bad());
        }
        let ws = ws.filter(|w| w != NO_WORKSPACE);
        Ok(Self::new(org, ws, env))
    }

    /// The org slug.
    pub fn org(&self) -> &str {
        &self.path[..self.org_end]
    }

    /// The workspace slug, if any.
    pub fn ws(&self) -> Option<&str> {
        self.ws.map(|(a, b)| &self.path[a..b])
    }

    /// The environment slug, if any.
    pub fn env(&self) -> Option<&str> {
        self.env.map(|(a, b)| &self.path[a..b])
    }

    /// The canonical `org/ws/env` text.
    pub fn as_str(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

impl FromStr for TenantKey {
    type Err = TenantKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for TenantKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_keys_parse_and_print_the_same() {
        for text in ["acme", "acme/platform", "acme/platform/prod", "acme/-/prod"] {
            let key = TenantKey::parse(text).expect("valid");
            assert_eq!(key.to_string(), text);
        }
        let key = TenantKey::parse("acme/platform/prod").expect("valid");
        assert_eq!(
            (key.org(), key.ws(), key.env()),
            ("acme", Some("platform"), Some("prod"))
        );
        let no_ws = TenantKey::new("acme", None, Some("prod".into()));
        assert_eq!(TenantKey::parse("acme/-/prod"), Ok(no_ws.clone()));
        assert_eq!((no_ws.ws(), no_ws.env()), (None, Some("prod")));
    }

    #[test]
    fn malformed_tenant_keys_are_refused() {
        for text in [
            "",
            "/ws",
            "acme//prod",
            "a/b/c/d",
            "acme corp",
            "acme/pl@tform",
        ] {
            assert!(TenantKey::parse(text).is_err(), "{text:?} accepted");
        }
    }
}
