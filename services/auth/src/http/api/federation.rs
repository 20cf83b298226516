//! The federation API, the contract with gateways: token endpoint, JWKS, metadata.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mcpg_license_core::clock::to_rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::usage::{MAX_REPORT_BYTES, ReportMember, ReportRejection};
use crate::http::error::{ApiError, Result};
use crate::http::extract::{GatewayCredential, OptionalJson};
use crate::http::rate_headers::write_headers;
use crate::http::state::AppState;
use crate::infra::issuer::{GRACE, IssueError, REFRESH_AFTER};
use crate::infra::keyring::TOKEN_LIFETIME;
use crate::infra::telemetry::{TOKENS_ISSUED, record_org};

/// Largest token request body: room for a usage report of [`MAX_REPORT_BYTES`] (a larger
/// report is ignored as `oversized`, the token issued) beside the other members.
const TOKEN_BODY_BYTES: usize = 2 * MAX_REPORT_BYTES;
/// The part of a token request body that is not the usage report, at most: the braces, the
/// member names and an `instance` of a host name or pod id.
const INSTANCE_ROOM: usize = 1024;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/federation/token",
            post(token).layer(DefaultBodyLimit::max(TOKEN_BODY_BYTES)),
        )
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/mcpg-federation", get(metadata))
}

/// Optional body of the token request: exactly the documented members (each optional), so
/// that a misspelt or unexpected member is an error rather than silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest<'a> {
    /// Host name or pod id, for logs only.
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    instance: Option<String>,
    /// The gateway's usage report: any JSON value is accepted here and read leniently
    /// ([`ReportMember`]), so that a bad report is ignored and counted, never a reason to
    /// refuse the token. `null` is no report.
    #[serde(default, borrow)]
    usage: Option<ReportMember<'a>>,
}

#[derive(Debug, Serialize)]
struct TokenResponse {
    token: String,
    token_type: &'static str,
    expires_at: String,
    refresh_after: String,
    grace_until: String,
    kid: Arc<str>,
    issuer_certificate: Arc<str>,
    issuer_certificates: CertificateArray,
    /// The gateway's effective plugin set (`{"digest","plugins"}`), exactly when the token
    /// carries the `ps` claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin_set: Option<RawObject>,
}

/// A JSON object, already rendered (once per cached grant).
#[derive(Debug)]
struct RawObject(Arc<str>);

impl Serialize for RawObject {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let value: serde_json::Value =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        value.serialize(serializer)
    }
}

/// A JSON array of certificates, already rendered (once per key snapshot).
#[derive(Debug)]
struct CertificateArray(Arc<str>);

impl Serialize for CertificateArray {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let texts: Vec<&str> = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        texts.serialize(serializer)
    }
}

async fn token(
    State(state): State<AppState>,
    credential: std::result::Result<GatewayCredential, ApiError>,
    body: Request,
) -> Result<(HeaderMap, String)> {
    // Requests refused before the issuer (no, malformed or mistyped credential; a bad
    // body) are counted too: the metric covers every token request. The credential is
    // checked before the body is read.
    let refused_early = |error: ApiError| {
        let outcome = match error {
            ApiError::InvalidCredential => "invalid_credential",
            ApiError::PayloadTooLarge => "payload_too_large",
            _ => "bad_request",
        };
        metrics::counter!(TOKENS_ISSUED, "org" => "-", "outcome" => outcome).increment(1);
        error
    };
    let GatewayCredential(credential) = credential.map_err(refused_early)?;
    let body = OptionalJson::from_request(body, &state)
        .await
        .map_err(refused_early)?;
    let request: TokenRequest<'_> = body.parse().map_err(refused_early)?;
    let now = state.now();
    let issued = match state.issuer.issue(&credential, now).await {
        // Issued tokens are counted by the issuer (on a counter cached with the grant).
        Ok(issued) => {
            record_org(&issued.claims.org);
            issued
        }
        Err(error) => {
            let (org, outcome, answer) = refusal(error);
            if let Some(org) = &org {
                record_org(org);
            }
            let org = org.unwrap_or_else(|| "-".to_owned());
            metrics::counter!(TOKENS_ISSUED, "org" => org, "outcome" => outcome).increment(1);
            return Err(answer);
        }
    };
    // The report is nearly all of the body: a body over the report's limit (and a little
    // room for `instance`) carries an oversized report, however it parsed.
    let report = request.usage.map(|ReportMember(report)| {
        if body.len() > MAX_REPORT_BYTES + INSTANCE_ROOM {
            Err(ReportRejection::Oversized)
        } else {
            report
        }
    });
    state
        .usage
        .record(&issued.org, &issued.place, &issued.gateway, now, report);
    if let Some(instance) = request.instance.as_deref() {
        tracing::debug!(instance = %instance.chars().take(128).collect::<String>(), "token issued");
    }
    let mut headers = HeaderMap::new();
    if let Some(rate) = &issued.rate {
        write_headers(rate, &mut headers);
    }
    let claims = &issued.claims;
    let response = TokenResponse {
        token_type: mcpg_license_core::jwt::JWT_TYPE,
        expires_at: to_rfc3339(claims.exp),
        refresh_after: to_rfc3339(claims.rfa.unwrap_or(claims.exp)),
        grace_until: to_rfc3339(claims.grc.unwrap_or(claims.exp)),
        kid: issued.kid,
        issuer_certificate: issued.issuer_certificate,
        issuer_certificates: CertificateArray(issued.issuer_certificates),
        plugin_set: issued.plugin_set_json.map(RawObject),
        token: issued.token,
    };
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok((headers, response.to_json()))
}

impl TokenResponse {
    /// The JSON body. Every member is a compact JWS (base64url segments, made by our
    /// signer), a PASETO (the certificate, checked to decode when the key was loaded), a
    /// PASERK id, an RFC 3339 time or fixed text: none needs JSON escaping, so the body is
    /// written directly (serde_json's escaping scan over the ~2 KB of token and certificate
    /// showed in the token endpoint's profile). The certificate array is JSON already,
    /// rendered by serde_json once per key snapshot. Anything else would go through
    /// serde_json.
    fn to_json(&self) -> String {
        let fields: [(&str, &str); 7] = [
            ("token", &self.token),
            ("token_type", self.token_type),
            ("expires_at", &self.expires_at),
            ("refresh_after", &self.refresh_after),
            ("grace_until", &self.grace_until),
            ("kid", &self.kid),
            ("issuer_certificate", &self.issuer_certificate),
        ];
        let certificates = &self.issuer_certificates.0;
        // The short members are checked on every call; the token and the certificate are
        // plain by construction (asserted in debug builds and by the tests).
        let short_plain = fields[1..6].iter().all(|(_, value)| plain(value));
        debug_assert!(plain(&self.token) && plain(&self.issuer_certificate));
        if !short_plain {
            return serde_json::to_string(self).unwrap_or_default();
        }
        const ARRAY_MEMBER: &str = ",\"issuer_certificates\":";
        const PLUGIN_SET_MEMBER: &str = ",\"plugin_set\":";
        let size = fields
            .iter()
            .map(|(n, v)| n.len() + v.len() + 6)
            .sum::<usize>()
            + ARRAY_MEMBER.len()
            + certificates.len()
            + self
                .plugin_set
                .as_ref()
                .map_or(0, |p| PLUGIN_SET_MEMBER.len() + p.0.len())
            + 2;
        let mut out = String::with_capacity(size);
        out.push('{');
        for (i, (name, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(name);
            out.push_str("\":\"");
            out.push_str(value);
            out.push('"');
        }
        out.push_str(ARRAY_MEMBER);
        out.push_str(certificates);
        if let Some(plugin_set) = &self.plugin_set {
            // Rendered by serde_json (see `IssuedToken::plugin_set_json`).
            out.push_str(PLUGIN_SET_MEMBER);
            out.push_str(&plugin_set.0);
        }
        out.push('}');
        out
    }
}

/// Text that is the same inside a JSON string: base64url, dots, colons, plus.
fn plain(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'+'))
}

/// How a token request the issuer refused is counted (the org, when known, and the
/// outcome label) and answered.
fn refusal(error: IssueError) -> (Option<String>, &'static str, ApiError) {
    match error {
        IssueError::Refused { refusal, org } => {
            (Some(org), refusal.code(), ApiError::Refused(refusal))
        }
        IssueError::RateLimited { decision, org } => {
            (Some(org), "rate_limited", ApiError::RateLimited(decision))
        }
        IssueError::OutsideBounds { violation, org } => (
            Some(org),
            "outside_certificate_bounds",
            ApiError::OutsideCertificateBounds(format!(
                "the license is outside the signing key's certificate: {violation} ({})",
                violation.code()
            )),
        ),
        IssueError::CertificateRevoked => (
            None,
            "certificate_revoked",
            ApiError::Unavailable("the signing key's certificate is revoked"),
        ),
        IssueError::InvalidCredential => (None, "invalid_credential", ApiError::InvalidCredential),
        IssueError::NoKey => (
            None,
            "error",
            ApiError::Unavailable("no signing key is active yet"),
        ),
        other @ (IssueError::Store(_) | IssueError::Sign(_)) => {
            (None, "error", ApiError::internal(other))
        }
    }
}

async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let snapshot = state
        .keyring
        .snapshot()
        .ok_or(ApiError::Unavailable("no signing key is active yet"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        snapshot.jwks_json.clone(),
    ))
}

async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    let issuer = &state.info.issuer_url;
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "token_endpoint": format!("{issuer}/v1/federation/token"),
            "token_lifetime_seconds": TOKEN_LIFETIME,
            "refresh_interval_seconds": REFRESH_AFTER,
            "grace_seconds": GRACE,
            "token_type": mcpg_license_core::jwt::JWT_TYPE,
            "root_kids": state.info.root_kids,
        })),
    )
}

#[cfg(test)]
mod tests {
    use super::TokenResponse;

    fn response(token: &str) -> TokenResponse {
        TokenResponse {
            token: token.into(),
            token_type: "mcpg-ent+jwt",
            expires_at: "2026-11-24T10:00:00Z".into(),
            refresh_after: "2026-11-23T18:00:00Z".into(),
            grace_until: "2026-12-01T10:00:00Z".into(),
            kid: "k4.pid.abc_DEF-1".into(),
            issuer_certificate: "v4.public.eyJ.abc-_".into(),
            issuer_certificates: super::CertificateArray(
                r#"["v4.public.eyJ.abc-_","v4.public.eyK.def"]"#.into(),
            ),
            plugin_set: None,
        }
    }

    #[test]
    fn the_plugin_set_member_is_written_only_when_present_and_equals_serde_json() {
        let plain = response("a.b.c");
        assert!(!plain.to_json().contains("plugin_set"));
        let mut with = response("a.b.c");
        with.plugin_set = Some(super::RawObject(
            r#"{"digest":"sha256:00","plugins":[{"config":{"a":"\"x"},"id":"policy.cedar"}]}"#
                .into(),
        ));
        let direct: serde_json::Value = serde_json::from_str(&with.to_json()).expect("json");
        let via_serde = serde_json::to_value(&with).expect("serialize");
        assert_eq!(direct, via_serde);
        assert_eq!(direct["plugin_set"]["plugins"][0]["config"]["a"], "\"x");
    }

    #[test]
    fn the_direct_json_equals_serde_json_and_odd_text_is_escaped() {
        let plain = response("eyJh.eyJz.c2ln-_");
        let direct: serde_json::Value = serde_json::from_str(&plain.to_json()).expect("json");
        assert_eq!(direct, serde_json::to_value(&plain).expect("value"));
        let mut odd = response("eyJh.eyJz.c2ln");
        odd.kid = "a\"b\\c\u{1}".into();
        let parsed: serde_json::Value = serde_json::from_str(&odd.to_json()).expect("json");
        assert_eq!(parsed["kid"], "a\"b\\c\u{1}");
    }
}
