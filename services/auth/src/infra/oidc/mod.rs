//! Operator login through each org's own OIDC provider: an org admin configures issuer,
//! audience, key set, tenant claim and role mapping (`PUT /v1/orgs/{org}/oidc`); an
//! operator then calls the management API with the IdP's JWT as Bearer.
//!
//! Verifying a token ([`OidcVerifier::authenticate`]):
//! 1. The header must name a pinnable algorithm (RS256, ES256, EdDSA); `none` and HS* end
//!    here, and so does any `crit` (RFC 7515 §4.1.11: we understand no extension, the rule
//!    of the entitlement-token verifier). The unverified `iss` only selects the
//!    configurations to try.
//! 2. Candidates are the orgs configured with that issuer whose tenant claim the token
//!    carries with their value; the org the request addresses is tried first.
//! 3. For each: the header's algorithm must be one the org pinned, the key (by `kid`) comes
//!    from the org's `jwks_uri` and is of the algorithm's key type, and the signature, `iss`,
//!    `aud`, `exp` and `nbf` (60 s leeway, on the service's clock) must hold.
//! 4. The role is the highest mapped value of the role claim; none maps → no role (the
//!    tenant layer answers 403 for the org the token belongs to).
//!
//! Every failure is one [`OidcError::Invalid`] (401 with the message of any bad token), so
//! nobody learns which orgs use which IdP; only an IdP whose keys cannot be fetched is
//! different ([`OidcError::Unavailable`], 503).

pub(crate) mod jwks;

use std::collections::HashSet;
use std::sync::Once;

use serde_json::{Map, Value};

pub(crate) use crate::domain::oidc_config::{OidcAlgorithm, OidcConfig};
pub(crate) use crate::domain::settings::JwksSettings;
pub(crate) use jwks::JwksCache;

use crate::domain::rbac::Role;
use crate::infra::store::{OidcConfigRecord, Store};

/// Leeway on `exp`, `nbf` and `iat`, in seconds.
pub(crate) const LEEWAY_SECONDS: i64 = 60;
/// Longest identity token accepted.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The `typ` of this service's own entitlement tokens, never accepted as a login.
const OWN_TOKEN_TYPE: &str = "mcpg-ent+jwt";

/// Why an identity token was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OidcError {
    /// Malformed, unknown issuer, bad signature, wrong audience, expired … (one answer).
    #[error("invalid identity token")]
    Invalid,
    /// The IdP's keys cannot be fetched now.
    #[error("the identity provider's keys cannot be fetched")]
    Unavailable,
    /// The store failed.
    #[error("database error")]
    Store(#[source] crate::infra::store::StoreError),
}

/// A verified login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OidcLogin {
    /// The org whose configuration verified the token.
    pub(crate) org_id: String,
    /// `oidc:{issuer}#{sub}`, for logs.
    pub(crate) identity: String,
    /// The mapped role; `None` when no value of the role claim is mapped.
    pub(crate) role: Option<Role>,
}

/// Whether a bearer token should go to the OIDC verifier: three base64url segments.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.len() <= MAX_TOKEN_BYTES
        && token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Installs jsonwebtoken's RustCrypto provider for the process (once; a provider that is
/// already installed is kept). Without it the first verification would panic.
pub(crate) fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
        );
    });
}

/// Verifies identity tokens against the orgs' configurations.
pub(crate) struct OidcVerifier {
    jwks: JwksCache,
}

impl OidcVerifier {
    /// A verifier with its key cache.
    pub(crate) fn new(settings: JwksSettings) -> Result<Self, reqwest::Error> {
        install_crypto_provider();
        Ok(Self {
            jwks: JwksCache::new(settings)?,
        })
    }

    /// The key cache (also fetches discovery documents).
    pub(crate) fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    /// Verifies `token`, preferring the org with slug `target` when several orgs' configurations
    /// could accept it.
    pub(crate) async fn authenticate(
        &self,
        store: &Store,
        token: &str,
        target: Option<&str>,
        now: i64,
    ) -> Result<OidcLogin, OidcError> {
        if !looks_like_jwt(token) {
            return Err(OidcError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| OidcError::Invalid)?;
        let algorithm = OidcAlgorithm::from_jwt(header.alg).ok_or(OidcError::Invalid)?;
        if header.typ.as_deref() == Some(OWN_TOKEN_TYPE) || header.crit.is_some() {
            return Err(OidcError::Invalid);
        }
        // Unverified: read only to choose which configurations to verify against.
        let unverified: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| OidcError::Invalid)?;
        let issuer = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(OidcError::Invalid)?;
        let mut candidates: Vec<OidcConfigRecord> = store
            .oidc_configs_for_issuer(issuer)
            .await
            .map_err(OidcError::Store)?
            .into_iter()
            .filter(|record| {
                let config = &record.config;
                config.algorithms.contains(&algorithm)
                    && unverified.get(&config.tenant_claim).and_then(Value::as_str)
                        == Some(config.tenant_value.as_str())
            })
            .collect();
        candidates.sort_by_key(|record| Some(record.org_slug.as_str()) != target);
        let mut unavailable = false;
        for record in candidates {
            let config = &record.config;
            let key = match self
                .jwks
                .key(&config.jwks_uri, header.kid.as_deref(), algorithm)
                .await
            {
                Ok(key) => key,
                Err(jwks::KeyError::Unavailable) => {
                    unavailable = true;
                    continue;
                }
                Err(jwks::KeyError::Unknown) => continue,
            };
            let Ok(data) = jsonwebtoken::decode::<Map<String, Value>>(
                token,
                &key,
                &validation(config, algorithm),
            ) else {
                continue;
            };
            let claims = data.claims;
            if !times_hold(&claims, now) {
                continue;
            }
            let subject = claims.get("sub").and_then(Value::as_str);
            let Some(subject) = subject.filter(|s| !s.is_empty()) else {
                continue;
            };
            return Ok(OidcLogin {
                identity: format!("oidc:{}#{subject}", config.issuer),
                role: mapped_role(config, claims.get(&config.role_claim)),
                org_id: record.org_id,
            });
        }
        Err(if unavailable {
            OidcError::Unavailable
        } else {
            OidcError::Invalid
        })
    }
}

/// jsonwebtoken's checks for one configuration: exactly the header's (pinned) algorithm,
/// issuer, audience; `exp`, `iss`, `aud`, `sub` present. Times are checked by
/// [`times_hold`] on the service's clock.
fn validation(config: &OidcConfig, algorithm: OidcAlgorithm) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(algorithm.jwt());
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[config.issuer.as_str()]);
    validation.set_audience(&[config.audience.as_str()]);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation
}

/// `exp` (required), `nbf` and `iat` (when present) are numbers and hold at `now` with
/// [`LEEWAY_SECONDS`].
fn times_hold(claims: &Map<String, Value>, now: i64) -> bool {
    let time = |name: &str| claims.get(name).map(|v| v.as_f64().map(|t| t.floor()));
    let now = now as f64;
    let leeway = LEEWAY_SECONDS as f64;
    let exp_ok = matches!(time("exp"), Some(Some(exp)) if now <= exp + leeway);
    let nbf_ok = match time("nbf") {
        None => true,
        Some(Some(nbf)) => nbf <= now + leeway,
        Some(None) => false,
    };
    let iat_ok = match time("iat") {
        None => true,
        Some(Some(iat)) => iat <= now + leeway,
        Some(None) => false,
    };
    exp_ok && nbf_ok && iat_ok
}

/// The highest role any value of the role claim (a string or an array of strings) maps to.
fn mapped_role(config: &OidcConfig, claim: Option<&Value>) -> Option<Role> {
    let values: HashSet<&str> = match claim {
        Some(Value::String(value)) => HashSet::from([value.as_str()]),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => HashSet::new(),
    };
    values
        .into_iter()
        .filter_map(|value| config.role_map.get(value).copied())
        .max()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: "https://idp.example/".into(),
            audience: "mcpg".into(),
            jwks_uri: "https://idp.example/jwks".into(),
            tenant_claim: "tid".into(),
            tenant_value: "t".into(),
            role_claim: "groups".into(),
            role_map: BTreeMap::from([
                ("ops".to_owned(), Role::Operator),
                ("admins".to_owned(), Role::Admin),
            ]),
            algorithms: vec![OidcAlgorithm::EdDSA],
        }
    }

    #[test]
    fn the_highest_mapped_value_of_the_role_claim_wins() {
        let config = config();
        assert_eq!(
            mapped_role(&config, Some(&json!(["ops", "admins", "x"]))),
            Some(Role::Admin)
        );
        assert_eq!(
            mapped_role(&config, Some(&json!("ops"))),
            Some(Role::Operator)
        );
        assert_eq!(mapped_role(&config, Some(&json!(["x"]))), None);
        assert_eq!(mapped_role(&config, Some(&json!(7))), None);
        assert_eq!(mapped_role(&config, None), None);
    }

    #[test]
    fn times_hold_within_the_leeway_only() {
        let claims = |value: Value| value.as_object().cloned().unwrap_or_default();
        let now = 1_000_000;
        assert!(times_hold(&claims(json!({"exp": now - 59})), now));
        assert!(!times_hold(&claims(json!({"exp": now - 61})), now));
        assert!(!times_hold(&claims(json!({"exp": "9999999999"})), now));
        assert!(!times_hold(&claims(json!({})), now));
        assert!(!times_hold(
            &claims(json!({"exp": now + 600, "nbf": now + 120})),
            now
        ));
        assert!(times_hold(
            &claims(json!({"exp": now + 600, "nbf": now + 30, "iat": now})),
            now
        ));
        assert!(!times_hold(
            &claims(json!({"exp": now + 600, "iat": now + 3600})),
            now
        ));
    }

    #[test]
    fn only_compact_jws_shapes_go_to_the_verifier() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("mcpg_pat_abc"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d.e"));
        assert!(!looks_like_jwt("a.b.c d"));
    }
}
