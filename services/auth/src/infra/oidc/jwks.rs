//! The identity providers' signing keys: fetched from each configured `jwks_uri`, parsed
//! once into verification keys, and cached in a bounded moka cache.
//!
//! - A cached key set lives for the TTL (default 10 min), then the next login fetches it
//!   again.
//! - A token naming a key the cached set lacks (the IdP rotated) triggers one refetch, but
//!   at most once per refetch interval (default 60 s) per `jwks_uri`: a stampede of tokens
//!   with made-up key ids waits on one lock and then finds the set fresh, so it cannot make
//!   the service hammer the IdP.
//! - A failed fetch is remembered like a fetch (the keys known so far, or none, marked
//!   failed), so an IdP that is down is asked again after the refetch interval, not on every
//!   request, and tokens signed with keys already known keep working meanwhile.
//! - Fetches have a timeout, follow no redirects and read at most [`MAX_JWKS_BYTES`].
//!
//! A JWK becomes a key for exactly one algorithm, from its key type and curve: `RSA` (at
//! least 2048 bits) → RS256, `EC`/`P-256` → ES256, `OKP`/`Ed25519` → EdDSA. Symmetric
//! (`oct`) keys, encryption keys and keys whose `alg` member names another algorithm are
//! ignored, so an RSA public key can never become an HMAC secret.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use moka::future::Cache;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::domain::oidc_config::OidcAlgorithm;
use crate::domain::settings::JwksSettings;

/// Largest JWKS or discovery document read.
pub(crate) const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most key sets cached at once (one per configured `jwks_uri`).
const MAX_CACHED_SETS: u64 = 10_000;
/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS: usize = 256;

/// Why no key could be found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// The IdP's key set has no key with this id for this algorithm.
    #[error("no such key")]
    Unknown,
    /// The IdP's key set could not be fetched.
    #[error("the identity provider's keys cannot be fetched")]
    Unavailable,
}

/// Why a fetch failed (logged, never sent to a client).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The URL is not allowed.
    #[error("{0}")]
    Url(String),
    /// Transport failure or timeout.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// A non-200 answer.
    #[error("answered HTTP {0}")]
    Status(u16),
    /// More than [`MAX_JWKS_BYTES`].
    #[error("answer larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// Not the JSON expected.
    #[error("answer is not a valid document: {0}")]
    Json(#[from] serde_json::Error),
}

/// One usable public key.
#[derive(Clone)]
struct VerifyKey {
    kid: Option<String>,
    algorithm: OidcAlgorithm,
    key: DecodingKey,
}

/// A fetched key set.
struct KeySet {
    keys: Vec<VerifyKey>,
    fetched_at: Instant,
    failed: bool,
}

impl KeySet {
    /// The key named `kid` for `algorithm`; without a kid, the only key for `algorithm`.
    fn find(&self, kid: Option<&str>, algorithm: OidcAlgorithm) -> Option<DecodingKey> {
        let mut matching = self
            .keys
            .iter()
            .filter(|k| k.algorithm == algorithm && (kid.is_none() || k.kid.as_deref() == kid));
        let first = matching.next()?;
        match (kid, matching.next()) {
            (None, Some(_)) => None,
            _ => Some(first.key.clone()),
        }
    }
}

/// The key cache and its HTTP client.
pub(crate) struct JwksCache {
    http: reqwest::Client,
    sets: Cache<String, Arc<KeySet>>,
    refetch_locks: moka::sync::Cache<String, Arc<Mutex<()>>>,
    settings: JwksSettings,
}

impl JwksCache {
    /// A cache with `settings`.
    pub(crate) fn new(settings: JwksSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.fetch_timeout)
            .connect_timeout(settings.fetch_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            sets: Cache::builder()
                .max_capacity(MAX_CACHED_SETS)
                .time_to_live(settings.ttl)
                .build(),
            refetch_locks: moka::sync::Cache::builder()
                .max_capacity(MAX_CACHED_SETS)
                .time_to_idle(settings.refetch_interval.max(Duration::from_secs(1)) * 10)
                .build(),
            settings,
        })
    }

    /// Drops every fetched key set (an org's OIDC settings changed): the next ID token
    /// fetches its issuer's keys again.
    pub(crate) fn forget_all(&self) {
        self.sets.invalidate_all();
    }

    /// The settings.
    pub(crate) fn settings(&self) -> &JwksSettings {
        &self.settings
    }

    /// The verification key `kid` of the set at `uri`, fetching the set when it is not
    /// cached and once more (rate limited) when it lacks the key.
    pub(crate) async fn key(
        &self,
        uri: &str,
        kid: Option<&str>,
        algorithm: OidcAlgorithm,
    ) -> Result<DecodingKey, KeyError> {
        let cached = self.sets.get_with_by_ref(uri, self.fetch_set(uri)).await;
        if let Some(key) = cached.find(kid, algorithm) {
            return Ok(key);
        }
        let lock = self
            .refetch_locks
            .get_with_by_ref(uri, || Arc::new(Mutex::new(())));
        let _one_at_a_time = lock.lock().await;
        // Another request may have refetched while this one waited.
        let current = self.sets.get(uri).await.unwrap_or(cached);
        if let Some(key) = current.find(kid, algorithm) {
            return Ok(key);
        }
        if current.fetched_at.elapsed() < self.settings.refetch_interval {
            return Err(if current.failed {
                KeyError::Unavailable
            } else {
                KeyError::Unknown
            });
        }
        let mut fresh = self.fetch_set(uri).await;
        if fresh.failed {
            // Keep the keys known so far while the IdP is unreachable; note the attempt so
            // the next one waits for the refetch interval.
            fresh = Arc::new(KeySet {
                keys: current.keys.clone(),
                fetched_at: fresh.fetched_at,
                failed: true,
            });
        }
        self.sets.insert(uri.to_owned(), fresh.clone()).await;
        match fresh.find(kid, algorithm) {
            Some(key) => Ok(key),
            None if fresh.failed => Err(KeyError::Unavailable),
            None => Err(KeyError::Unknown),
        }
    }

    /// Fetches and parses a key set; a failure becomes an empty set marked failed.
    async fn fetch_set(&self, uri: &str) -> Arc<KeySet> {
        let fetched_at = Instant::now();
        let (keys, failed) = match self.fetch_json::<JwkSetDocument>(uri).await {
            Ok(document) => {
                let keys: Vec<VerifyKey> = document.keys.iter().filter_map(verify_key).collect();
                tracing::info!(jwks_uri = %uri, keys = keys.len(), "identity provider keys fetched");
                (keys, false)
            }
            Err(error) => {
                tracing::warn!(jwks_uri = %uri, error = %error, "cannot fetch identity provider keys");
                (Vec::new(), true)
            }
        };
        Arc::new(KeySet {
            keys,
            fetched_at,
            failed,
        })
    }

    /// POSTs `form` to `uri` (checked against the URL rules, as every fetch) and parses the
    /// answer as JSON, reading at most [`MAX_JWKS_BYTES`]: the console's authorization code
    /// exchange at an identity provider's token endpoint.
    pub(crate) async fn post_form_json<T: serde::de::DeserializeOwned>(
        &self,
        uri: &str,
        form: &[(&str, &str)],
    ) -> Result<T, FetchError> {
        let url = crate::domain::oidc_config::check_url(uri, self.settings.allow_loopback)
            .map_err(FetchError::Url)?;
        let response = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await?;
        read_json(response).await
    }

    /// GETs `uri` (checked against the URL rules), reading at most [`MAX_JWKS_BYTES`], and
    /// parses the answer as JSON.
    pub(crate) async fn fetch_json<T: serde::de::DeserializeOwned>(
        &self,
        uri: &str,
    ) -> Result<T, FetchError> {
        let url = crate::domain::oidc_config::check_url(uri, self.settings.allow_loopback)
            .map_err(FetchError::Url)?;
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await?;
        read_json(response).await
    }
}

/// A 200 answer's JSON body, at most [`MAX_JWKS_BYTES`].
async fn read_json<T: serde::de::DeserializeOwned>(
    mut response: reqwest::Response,
) -> Result<T, FetchError> {
    if response.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(serde_json::from_slice(&body)?)
}

#[derive(Deserialize)]
struct JwkSetDocument {
    keys: Vec<Value>,
}

/// The members of a JWK this service reads.
#[derive(Deserialize)]
struct JwkFields {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    key_use: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

/// A JWK as a verification key, or `None` when it is not a usable signing key.
fn verify_key(jwk: &Value) -> Option<VerifyKey> {
    let fields: JwkFields = serde_json::from_value(jwk.clone()).ok()?;
    if fields.key_use.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let decoded_len = |text: &str| URL_SAFE_NO_PAD.decode(text).ok().map(|b| b.len());
    let (algorithm, key) = match (fields.kty.as_str(), fields.crv.as_deref()) {
        ("RSA", _) => {
            let (n, e) = (fields.n.as_deref()?, fields.e.as_deref()?);
            let modulus = URL_SAFE_NO_PAD.decode(n).ok()?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS {
                return None;
            }
            let key = DecodingKey::from_rsa_components(n, e).ok()?;
            (OidcAlgorithm::RS256, key)
        }
        ("EC", Some("P-256")) => {
            let (x, y) = (fields.x.as_deref()?, fields.y.as_deref()?);
            if decoded_len(x)? != 32 || decoded_len(y)? != 32 {
                return None;
            }
            (
                OidcAlgorithm::ES256,
                DecodingKey::from_ec_components(x, y).ok()?,
            )
        }
        ("OKP", Some("Ed25519")) => {
            let x = fields.x.as_deref()?;
            if decoded_len(x)? != 32 {
                return None;
            }
            (
                OidcAlgorithm::EdDSA,
                DecodingKey::from_ed_components(x).ok()?,
            )
        }
        _ => return None,
    };
    if fields
        .alg
        .as_deref()
        .is_some_and(|alg| alg != algorithm.as_str())
    {
        return None;
    }
    Some(VerifyKey {
        kid: fields.kid,
        algorithm,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn only_signing_keys_of_the_pinned_families_become_keys() {
        let okp = json!({"kty": "OKP", "crv": "Ed25519", "x": X, "kid": "a"});
        let key = verify_key(&okp).expect("an Ed25519 key");
        assert_eq!(key.algorithm, OidcAlgorithm::EdDSA);
        for unusable in [
            json!({"kty": "oct", "k": X, "kid": "a"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": X, "use": "enc"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": X, "alg": "HS256"}),
            json!({"kty": "OKP", "crv": "X25519", "x": X}),
            json!({"kty": "EC", "crv": "P-384", "x": X, "y": X}),
            json!({"kty": "RSA", "n": X, "e": "AQAB"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": "short"}),
        ] {
            assert!(
                verify_key(&unusable).is_none(),
                "{unusable} should be ignored"
            );
        }
    }

    #[test]
    fn without_a_kid_only_a_single_candidate_key_is_used() {
        let key = |kid: &str| VerifyKey {
            kid: Some(kid.into()),
            algorithm: OidcAlgorithm::EdDSA,
            key: DecodingKey::from_ed_components(X).expect("key"),
        };
        let one = KeySet {
            keys: vec![key("a")],
            fetched_at: Instant::now(),
            failed: false,
        };
        assert!(one.find(None, OidcAlgorithm::EdDSA).is_some());
        assert!(one.find(Some("a"), OidcAlgorithm::EdDSA).is_some());
        assert!(one.find(Some("b"), OidcAlgorithm::EdDSA).is_none());
        assert!(one.find(Some("a"), OidcAlgorithm::ES256).is_none());
        let two = KeySet {
            keys: vec![key("a"), key("b")],
            fetched_at: Instant::now(),
            failed: false,
        };
        assert!(two.find(None, OidcAlgorithm::EdDSA).is_none());
    }
}
