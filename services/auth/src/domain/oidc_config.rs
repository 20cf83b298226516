//! One org's OIDC configuration as a checked value: issuer, audience, key set URL, the
//! claim naming the tenant and its value for this org, the claim mapped to roles, and the
//! pinned algorithms.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::domain::rbac::Role;

/// Longest issuer, audience or URL accepted.
const MAX_TEXT: usize = 512;
/// Longest claim name accepted.
const MAX_CLAIM_NAME: usize = 128;
/// Most entries of a role map.
pub(crate) const MAX_ROLE_MAP: usize = 64;

/// An algorithm an org may pin: asymmetric signatures only. HS*, `none` and everything
/// else are not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum OidcAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA keys of at least 2048 bits).
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl OidcAlgorithm {
    /// The JOSE name.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            OidcAlgorithm::RS256 => "RS256",
            OidcAlgorithm::ES256 => "ES256",
            OidcAlgorithm::EdDSA => "EdDSA",
        }
    }

    /// The same algorithm for `jsonwebtoken`.
    pub(crate) const fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            OidcAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            OidcAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            OidcAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }

    /// The pinnable algorithm a token header names, if it is one.
    pub(crate) fn from_jwt(algorithm: jsonwebtoken::Algorithm) -> Option<Self> {
        match algorithm {
            jsonwebtoken::Algorithm::RS256 => Some(OidcAlgorithm::RS256),
            jsonwebtoken::Algorithm::ES256 => Some(OidcAlgorithm::ES256),
            jsonwebtoken::Algorithm::EdDSA => Some(OidcAlgorithm::EdDSA),
            _ => None,
        }
    }
}

/// A checked OIDC configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OidcConfig {
    /// The `iss` of the IdP's tokens, exactly as they carry it.
    pub(crate) issuer: String,
    /// The `aud` a token must name.
    pub(crate) audience: String,
    /// The IdP's key set.
    pub(crate) jwks_uri: String,
    /// The claim naming the IdP tenant (`org_id`, `tid`, `custom:tenant_id` …).
    pub(crate) tenant_claim: String,
    /// The value of the tenant claim that identifies this org.
    pub(crate) tenant_value: String,
    /// The claim whose value (a string or an array of strings) maps to a role.
    pub(crate) role_claim: String,
    /// Claim value → role (org-wide).
    pub(crate) role_map: BTreeMap<String, Role>,
    /// The accepted algorithms, sorted, at least one.
    pub(crate) algorithms: Vec<OidcAlgorithm>,
}

/// Why a configuration is refused (the message is for the admin who sent it).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(pub(crate) String);

impl OidcConfig {
    /// Checks every field; `jwks_uri` must already be known (given or discovered).
    pub(crate) fn check(mut self, allow_loopback: bool) -> Result<Self, ConfigError> {
        self.issuer = self.issuer.trim().to_owned();
        check_url(&self.issuer, allow_loopback).map_err(|e| ConfigError(format!("issuer: {e}")))?;
        self.jwks_uri = self.jwks_uri.trim().to_owned();
        check_url(&self.jwks_uri, allow_loopback)
            .map_err(|e| ConfigError(format!("jwks_uri: {e}")))?;
        text("audience", &self.audience, MAX_TEXT)?;
        text("tenant_value", &self.tenant_value, MAX_TEXT)?;
        text("tenant_claim", &self.tenant_claim, MAX_CLAIM_NAME)?;
        text("role_claim", &self.role_claim, MAX_CLAIM_NAME)?;
        if self.role_map.len() > MAX_ROLE_MAP {
            return Err(ConfigError(format!(
                "role_map: at most {MAX_ROLE_MAP} entries"
            )));
        }
        for value in self.role_map.keys() {
            text("role_map value", value, MAX_TEXT)?;
        }
        self.algorithms.sort_unstable();
        self.algorithms.dedup();
        if self.algorithms.is_empty() {
            return Err(ConfigError(
                "algorithms: name at least one of RS256, ES256, EdDSA".into(),
            ));
        }
        Ok(self)
    }

    /// Where the IdP's discovery document is: `{issuer}/.well-known/openid-configuration`.
    pub(crate) fn discovery_url(issuer: &str) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            issuer.trim().trim_end_matches('/')
        )
    }
}

fn text(name: &str, value: &str, max: usize) -> Result<(), ConfigError> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(ConfigError(format!(
            "{name} must be 1-{max} bytes without control characters"
        )));
    }
    Ok(())
}

/// Checks a URL the service will fetch or compare: `https://` with a host, no credentials
/// or fragment; `http://` only on a loopback address and only when `allow_loopback`.
pub(crate) fn check_url(text: &str, allow_loopback: bool) -> Result<reqwest::Url, String> {
    if text.len() > MAX_TEXT {
        return Err(format!("longer than {MAX_TEXT} bytes"));
    }
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not carry credentials or a fragment"));
    }
    let Some(host) = url.host_str() else {
        return Err(format!("{text:?} has no host"));
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback && allow_loopback => Ok(url),
        "http" if loopback => Err(format!(
            "{text:?}: plain http is refused (this server does not allow loopback identity providers)"
        )),
        _ => Err(format!("{text:?} must be an https:// URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_except_allowed_loopback() {
        assert!(check_url("https://idp.example/keys", false).is_ok());
        assert!(check_url("http://idp.example/keys", true).is_err());
        assert!(check_url("http://127.0.0.1:9/keys", false).is_err());
        assert!(check_url("http://127.0.0.1:9/keys", true).is_ok());
        assert!(check_url("http://[::1]:9/keys", true).is_ok());
        assert!(check_url("https://user:pw@idp.example/", false).is_err());
        assert!(check_url("https://idp.example/#x", false).is_err());
        assert!(check_url("file:///etc/passwd", true).is_err());
        assert!(check_url("not a url", true).is_err());
    }

    #[test]
    fn a_configuration_needs_an_algorithm_and_sane_fields() {
        let config = OidcConfig {
            issuer: " https://idp.example/ ".into(),
            audience: "mcpg".into(),
            jwks_uri: "https://idp.example/jwks".into(),
            tenant_claim: "tid".into(),
            tenant_value: "t-1".into(),
            role_claim: "roles".into(),
            role_map: BTreeMap::from([("MCPG.Admin".to_owned(), Role::Admin)]),
            algorithms: vec![
                OidcAlgorithm::EdDSA,
                OidcAlgorithm::RS256,
                OidcAlgorithm::RS256,
            ],
        };
        let checked = config.clone().check(false).expect("valid");
        assert_eq!(checked.issuer, "https://idp.example/");
        assert_eq!(
            checked.algorithms,
            vec![OidcAlgorithm::RS256, OidcAlgorithm::EdDSA]
        );
        let none = OidcConfig {
            algorithms: vec![],
            ..config.clone()
        };
        assert!(none.check(false).is_err());
        let blank = OidcConfig {
            tenant_claim: String::new(),
            ..config
        };
        assert!(blank.check(false).is_err());
        assert_eq!(
            OidcConfig::discovery_url("https://idp.example/"),
            "https://idp.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn only_asymmetric_algorithms_can_be_pinned() {
        assert_eq!(
            OidcAlgorithm::from_jwt(jsonwebtoken::Algorithm::HS256),
            None
        );
        assert_eq!(
            serde_json::from_str::<OidcAlgorithm>("\"HS256\"").ok(),
            None
        );
        for alg in [
            OidcAlgorithm::RS256,
            OidcAlgorithm::ES256,
            OidcAlgorithm::EdDSA,
        ] {
            assert_eq!(OidcAlgorithm::from_jwt(alg.jwt()), Some(alg));
        }
    }
}
