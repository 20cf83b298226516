//! The federation's token endpoint, behind a small trait so the state machine can be
//! tested without sockets, and its HTTP implementation (reqwest with rustls).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use thiserror::Error;

/// A token as the federation hands it out (`POST /v1/federation/token`, 200).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// The JWT.
    pub token: String,
    /// The PASETO issuer certificate of the key that signed it (the primary one).
    pub issuer_certificate: String,
    /// Every certificate of that key the federation serves, primary first: during a root
    /// rollover one per root. Empty from a federation that predates it.
    #[serde(default)]
    pub issuer_certificates: Vec<String>,
    /// The plugin set the token's `ps` claim names (`{"digest", "plugins": [{"id",
    /// "config"}]}`), kept as JSON until the verified claim says whether it is wanted:
    /// present exactly when the token has `ps`, and ignored when it has none.
    #[serde(default)]
    pub plugin_set: Option<serde_json::Value>,
}

/// At most this many served certificates are tried.
const MAX_CERTIFICATES: usize = 16;

impl TokenResponse {
    /// The certificates to try, primary first: `issuer_certificates` when the federation
    /// sent it, else `issuer_certificate`.
    pub fn certificates(&self) -> impl Iterator<Item = &str> {
        let all: &[String] = match self.issuer_certificates.is_empty() {
            true => std::slice::from_ref(&self.issuer_certificate),
            false => &self.issuer_certificates,
        };
        all.iter().take(MAX_CERTIFICATES).map(String::as_str)
    }
}

/// An explicit "no" from the federation: entitlements end at once, even mid-grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// 403 `license_revoked`.
    LicenseRevoked,
    /// 403 `license_expired`.
    LicenseExpired,
    /// 403 `org_suspended`.
    OrgSuspended,
    /// 403 `trial_expired`.
    TrialExpired,
    /// 403 `no_license`.
    NoLicense,
    /// 401 `invalid_credential`: this credential will never work; refreshing stops.
    InvalidCredential,
}

impl Denial {
    /// Reads the error code of a 401 or 403 answer.
    pub fn from_answer(status: u16, code: &str) -> Option<Self> {
        match (status, code) {
            (401, _) => Some(Denial::InvalidCredential),
            (403, "license_revoked") => Some(Denial::LicenseRevoked),
            (403, "license_expired") => Some(Denial::LicenseExpired),
            (403, "org_suspended") => Some(Denial::OrgSuspended),
            (403, "trial_expired") => Some(Denial::TrialExpired),
            (403, "no_license") => Some(Denial::NoLicense),
            _ => None,
        }
    }

    /// The denial with this contract error code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "invalid_credential" => Some(Denial::InvalidCredential),
            other => Self::from_answer(403, other),
        }
    }

    /// The contract's error code.
    pub const fn code(self) -> &'static str {
        match self {
            Denial::LicenseRevoked => "license_revoked",
            Denial::LicenseExpired => "license_expired",
            Denial::OrgSuspended => "org_suspended",
            Denial::TrialExpired => "trial_expired",
            Denial::NoLicense => "no_license",
            Denial::InvalidCredential => "invalid_credential",
        }
    }
}

/// Why fetching a token failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum FetchError {
    /// The service answered no.
    #[error("the federation refused: {}", .0.code())]
    Denied(Denial),
    /// Unreachable, timed out, 5xx or 429: entitlements stay until the grace bound.
    #[error("federation unavailable: {cause}")]
    Outage {
        /// What happened, for logs.
        cause: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// Any other answer (unexpected status or body): treated like an outage, logged as an error.
    #[error("unexpected federation answer (HTTP {status}): {message}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// What was wrong.
        message: String,
    },
}

/// The future a [`FederationClient`] returns.
pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<TokenResponse, FetchError>> + Send + 'a>>;

/// The future of [`FederationClient::fetch_revocations`]: the list's PASETO text, or
/// `None` when the federation publishes none.
pub type RevocationsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<String>, FetchError>> + Send + 'a>>;

/// Fetches entitlement tokens from the federation.
pub trait FederationClient: Send + Sync + 'static {
    /// Asks for a token with the gateway credential.
    fn fetch_token<'a>(&'a self, credential: &'a SecretString) -> FetchFuture<'a>;

    /// Asks for a token and reports the gateway's usage since its last acknowledged
    /// report (the request body's `usage` member). The default ignores the report, for
    /// clients that have nowhere to send it.
    fn fetch_token_reporting<'a>(
        &'a self,
        credential: &'a SecretString,
        usage: Option<&'a crate::usage::UsageReport>,
    ) -> FetchFuture<'a> {
        let _ = usage;
        self.fetch_token(credential)
    }

    /// Fetches the revocation list the federation publishes
    /// (`GET /.well-known/mcpg-revocations`). The default publishes none.
    fn fetch_revocations(&self) -> RevocationsFuture<'_> {
        Box::pin(async { Ok(None) })
    }
}

/// The federation over HTTPS (or HTTP on loopback), per the federation contract.
#[derive(Debug, Clone)]
pub struct HttpFederationClient {
    http: reqwest::Client,
    endpoint: String,
    revocations: String,
    /// Until when no usage report is sent: set for a day when the federation answered 400
    /// or 413 to a request carrying one (a federation older than usage reports refuses the
    /// unknown member), so that such a federation still hands out tokens.
    reports_paused_until: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// How long usage reports pause after the federation refused a request carrying one.
const REPORT_PAUSE: Duration = Duration::from_secs(86_400);

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    #[serde(default)]
    message: String,
}

/// The largest token response read, in bytes: a token, its certificates and a plugin set
/// (whose configs take up to 64 KiB as canonical JSON).
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// The largest revocation list read, in bytes.
const MAX_REVOCATIONS_BYTES: usize = 1024 * 1024;

impl HttpFederationClient {
    /// A client for the federation at `base_url` (its issuer URL), with a per-request timeout.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // The credential goes to the configured URL only, never where a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcpg-entitlements/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let base = base_url.trim_end_matches('/');
        Ok(Self {
            http,
            endpoint: format!("{base}/v1/federation/token"),
            revocations: format!("{base}/.well-known/mcpg-revocations"),
            reports_paused_until: std::sync::Arc::default(),
        })
    }

    /// Asks for a token, with the usage report unless reports are paused. A 400 or 413
    /// answer to a request carrying a report is asked again without it, and reports pause
    /// for a day: the report is then dropped (acknowledged), as that federation cannot
    /// take it, and the gateway keeps getting tokens.
    async fn fetch_reporting(
        &self,
        credential: &SecretString,
        usage: Option<&crate::usage::UsageReport>,
    ) -> Result<TokenResponse, FetchError> {
        let paused = {
            let mut until = self
                .reports_paused_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match *until {
                Some(at) if at > std::time::Instant::now() => true,
                Some(_) => {
                    *until = None;
                    false
                }
                None => false,
            }
        };
        let usage = usage.filter(|_| !paused);
        let first = self.fetch(credential, usage).await;
        match first {
            Err(FetchError::Unexpected {
                status: 400 | 413,
                ref message,
            }) if usage.is_some() => {
                tracing::warn!(answer = %message, "the federation refused a token request carrying a usage report; asking again without it, and sending no report for a day");
                *self
                    .reports_paused_until
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    std::time::Instant::now().checked_add(REPORT_PAUSE);
                self.fetch(credential, None).await
            }
            other => other,
        }
    }

    async fn fetch(
        &self,
        credential: &SecretString,
        usage: Option<&crate::usage::UsageReport>,
    ) -> Result<TokenResponse, FetchError> {
        let outage = |e: reqwest::Error| FetchError::Outage {
            cause: e.to_string(),
            retry_after: None,
        };
        let response = self
            .http
            .post(&self.endpoint)
            .header(
                AUTHORIZATION,
                format!("Bearer {}", credential.expose_secret()),
            )
            .json(&match usage {
                Some(report) => serde_json::json!({ "usage": report }),
                None => serde_json::json!({}),
            })
            .send()
            .await
            .map_err(outage)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = read_body(response, MAX_RESPONSE_BYTES).await?;
        if status == StatusCode::OK {
            return serde_json::from_slice(&body).map_err(|e| FetchError::Unexpected {
                status: 200,
                message: format!("token response is not the expected JSON: {e}"),
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(FetchError::Outage {
                cause: format!("HTTP {status}"),
                retry_after,
            });
        }
        let detail = serde_json::from_slice::<ErrorBody>(&body)
            .map(|b| b.error)
            .ok();
        let code = detail.as_ref().map_or("", |d| d.code.as_str());
        if let Some(denial) = Denial::from_answer(status.as_u16(), code) {
            return Err(FetchError::Denied(denial));
        }
        Err(FetchError::Unexpected {
            status: status.as_u16(),
            message: match detail {
                Some(d) => format!("{}: {}", d.code, d.message),
                None => "no error body".into(),
            },
        })
    }

    async fn revocations(&self) -> Result<Option<String>, FetchError> {
        let response =
            self.http
                .get(&self.revocations)
                .send()
                .await
                .map_err(|e| FetchError::Outage {
                    cause: e.to_string(),
                    retry_after: None,
                })?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(FetchError::Outage {
                cause: format!("HTTP {status}"),
                retry_after: None,
            });
        }
        let body = read_body(response, MAX_REVOCATIONS_BYTES).await?;
        if status != StatusCode::OK {
            return Err(FetchError::Unexpected {
                status: status.as_u16(),
                message: "revocation list request refused".into(),
            });
        }
        String::from_utf8(body)
            .map(|text| Some(text.trim().to_owned()))
            .map_err(|_| FetchError::Unexpected {
                status: 200,
                message: "the revocation list is not text".into(),
            })
    }
}

/// A `Retry-After` in delta-seconds (HTTP dates are ignored: the backoff applies). The value
/// is taken as sent; [`crate::schedule::backoff`] caps what it honours.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Reads at most `max` bytes of a body: a hostile endpoint must not be able to make the
/// gateway buffer an unbounded one.
async fn read_body(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, FetchError> {
    let status = response.status().as_u16();
    let too_large = || FetchError::Unexpected {
        status,
        message: format!("response is larger than {max} bytes"),
    };
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Outage {
        cause: e.to_string(),
        retry_after: None,
    })? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl FederationClient for HttpFederationClient {
    fn fetch_token<'a>(&'a self, credential: &'a SecretString) -> FetchFuture<'a> {
        Box::pin(self.fetch(credential, None))
    }

    fn fetch_token_reporting<'a>(
        &'a self,
        credential: &'a SecretString,
        usage: Option<&'a crate::usage::UsageReport>,
    ) -> FetchFuture<'a> {
        Box::pin(self.fetch_reporting(credential, usage))
    }

    fn fetch_revocations(&self) -> RevocationsFuture<'_> {
        Box::pin(self.revocations())
    }
}
