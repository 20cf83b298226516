//! Sign-in through the org's own identity provider: OpenID Connect authorization code flow
//! with PKCE (S256), for the orgs that have OIDC settings (`PUT /v1/orgs/{org}/oidc`).
//!
//! 1. `POST /console/sign-in/idp` (the sign-in form's CSRF token checked) names the org.
//!    Its settings give the issuer; the issuer's discovery document gives the
//!    authorization and token endpoints (its `issuer` must be the configured one). The
//!    console is a public client whose `client_id` is the settings' audience — the `aud`
//!    of the ID tokens the API already accepts.
//! 2. A random `state`, `nonce` and PKCE verifier travel in a short-lived `HttpOnly`
//!    cookie (`SameSite=Lax`: the IdP's redirect back is a cross-site navigation, which a
//!    `Strict` cookie would not follow), and a link takes the browser to the authorization
//!    endpoint with the S256 challenge (a link, not a redirect: the CSP's `form-action
//!    'self'` forbids a form submission to end at another origin).
//! 3. `GET /console/oidc/callback` checks `state` against the cookie (constant time),
//!    trades the code and the verifier for tokens at the token endpoint, and verifies the
//!    ID token with [`crate::infra::oidc::OidcVerifier::authenticate`] — the very check
//!    the API runs on an IdP token, with the org's pinned algorithms, keys, issuer,
//!    audience, times and role mapping — for this org only; then the `nonce`. The session
//!    acts with the mapped role, as the same token would on the API.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::html;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::ConsoleError;
use super::extract::Query;
use super::session::{
    Arrival, console_cookie, matches, open_session, random_secret, set_cookie_with,
    sign_in_csrf_refusal, sign_in_page,
};
use super::view;
use crate::domain::oidc_config::{OidcConfig, check_url};
use crate::http::error::ApiError;
use crate::http::extract::{OidcRole, Principal};
use crate::http::state::AppState;
use crate::infra::oidc::OidcError;
use crate::infra::store::{SessionSignIn, StoreError};

/// The cookie carrying a sign-in in flight.
const IDP_COOKIE: &str = "mcpg_console_idp";
/// Where it is sent.
const IDP_COOKIE_PATH: &str = "/console/oidc";
/// How long the operator has at the identity provider (seconds).
const IDP_WINDOW: i64 = 10 * 60;
/// The callback, under the service's public URL.
const CALLBACK: &str = "/console/oidc/callback";

type Result<T, E = ConsoleError> = std::result::Result<T, E>;

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct IdpForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    org: String,
}

/// The part of a discovery document read here.
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

/// A sign-in in flight, as its cookie carries it.
#[derive(Debug, Serialize, Deserialize)]
struct InFlight {
    org: String,
    state: String,
    nonce: String,
    verifier: String,
    expires_at: i64,
}

impl InFlight {
    fn encode(&self) -> Result<String> {
        let json = serde_json::to_vec(self).map_err(ApiError::internal)?;
        Ok(URL_SAFE_NO_PAD.encode(json))
    }

    fn decode(text: &str) -> Option<Self> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).ok()?).ok()
    }
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 §4.2).
fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The one refusal of an org without an identity provider and of no org at all.
fn no_idp() -> ApiError {
    ApiError::NotFound("identity provider for this organization")
}

/// `POST /console/sign-in/idp`: sends the browser to the org's identity provider.
pub(crate) async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: std::result::Result<Form<IdpForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response> {
    let Ok(Form(form)) = form else {
        return Err(ApiError::BadRequest("expected the sign-in form".into()).into());
    };
    if let Some(refusal) = sign_in_csrf_refusal(&state, &headers, &form.csrf) {
        return refusal;
    }
    let slug = form.org.trim();
    let org = match state.store.org_by_slug(slug).await {
        Ok(org) => org,
        Err(StoreError::NotFound(_)) => {
            return sign_in_page(&state, StatusCode::NOT_FOUND, Some(&no_idp()));
        }
        Err(other) => return Err(other.into()),
    };
    let Some(record) = state.store.tenant(&org.id).oidc_config().await? else {
        return sign_in_page(&state, StatusCode::NOT_FOUND, Some(&no_idp()));
    };
    let config = &record.config;
    let discovery = discover(&state, config).await?;
    let allow_loopback = state.oidc.jwks().settings().allow_loopback;
    let mut authorize = check_url(&discovery.authorization_endpoint, allow_loopback)
        .map_err(|e| idp_failure(&format!("authorization endpoint: {e}")))?;
    check_url(&discovery.token_endpoint, allow_loopback)
        .map_err(|e| idp_failure(&format!("token endpoint: {e}")))?;
    let flight = InFlight {
        org: org.slug.clone(),
        state: random_secret()?,
        nonce: random_secret()?,
        verifier: random_secret()?,
        expires_at: state.now() + IDP_WINDOW,
    };
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &config.audience)
        .append_pair("redirect_uri", &redirect_uri(&state))
        .append_pair("scope", "openid")
        .append_pair("state", &flight.state)
        .append_pair("nonce", &flight.nonce)
        .append_pair("code_challenge", &challenge(&flight.verifier))
        .append_pair("code_challenge_method", "S256");
    let cookie = set_cookie_with(
        &state,
        IDP_COOKIE,
        &flight.encode()?,
        IDP_COOKIE_PATH,
        IDP_WINDOW,
        "Lax",
    )?;
    // A page with a link rather than a redirect: the form was posted here, and the CSP's
    // `form-action 'self'` stops a form submission that redirects to another origin.
    let body = html! {
        h1 { "Continue to your identity provider" }
        p { "The organization " strong { (org.slug) } " signs in at " code { (config.issuer) } "." }
        p { a id="idp-continue" class="button" href=(authorize.as_str()) autofocus {
            "Continue to " (config.issuer)
        } }
        p { a href="/console/sign-in" { "Back to sign-in" } }
    };
    let mut response = view::bare_page("Continue to your identity provider", body).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}{CALLBACK}", state.info.issuer_url.trim_end_matches('/'))
}

/// The identity provider misbehaved (discovery, endpoints, token exchange): 503, the
/// cause logged.
fn idp_failure(cause: &str) -> ApiError {
    tracing::warn!(cause = %cause, "console sign-in through an identity provider failed");
    ApiError::Unavailable(
        "the identity provider cannot be used now; try again or sign in with a token",
    )
}

async fn discover(state: &AppState, config: &OidcConfig) -> Result<Discovery> {
    let url = OidcConfig::discovery_url(&config.issuer);
    let discovery: Discovery = state
        .oidc
        .jwks()
        .fetch_json(&url)
        .await
        .map_err(|e| idp_failure(&format!("discovery at {url}: {e}")))?;
    if discovery.issuer != config.issuer {
        return Err(idp_failure(&format!(
            "discovery at {url} names issuer {:?}, not {:?}",
            discovery.issuer, config.issuer
        ))
        .into());
    }
    Ok(discovery)
}

/// The callback's query.
#[derive(Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The token endpoint's answer (the part read here).
#[derive(Debug, Deserialize)]
struct TokenAnswer {
    id_token: String,
}

/// `GET /console/oidc/callback`: finishes the sign-in.
pub(crate) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response> {
    let flight =
        console_cookie(&state, &headers, IDP_COOKIE).and_then(|text| InFlight::decode(&text));
    let spent = set_cookie_with(&state, IDP_COOKIE, "", IDP_COOKIE_PATH, 0, "Lax")?;
    let outcome = finish(&state, flight, query).await;
    let mut response = match outcome {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    response.headers_mut().append(header::SET_COOKIE, spent);
    Ok(response)
}

async fn finish(
    state: &AppState,
    flight: Option<InFlight>,
    query: CallbackQuery,
) -> Result<Response> {
    let stale =
        || ApiError::Forbidden("this sign-in is stale or was not started here; sign in again");
    let flight = flight.ok_or_else(stale)?;
    let now = state.now();
    if flight.expires_at <= now
        || !matches(query.state.as_deref().unwrap_or_default(), &flight.state)
    {
        return Err(stale().into());
    }
    if let Some(error) = query.error {
        tracing::info!(error = %error, "the identity provider refused the sign-in");
        return Err(ApiError::Unauthenticated.into());
    }
    let code = query
        .code
        .filter(|c| !c.is_empty())
        .ok_or(ApiError::Unauthenticated)?;
    let org = state.store.org_by_slug(&flight.org).await?;
    let record = state
        .store
        .tenant(&org.id)
        .oidc_config()
        .await?
        .ok_or_else(no_idp)?;
    // The endpoint is discovered again rather than read from the cookie: nothing the
    // browser carries decides where the code and the verifier are sent.
    let discovery = discover(state, &record.config).await?;
    let allow_loopback = state.oidc.jwks().settings().allow_loopback;
    check_url(&discovery.token_endpoint, allow_loopback)
        .map_err(|e| idp_failure(&format!("token endpoint: {e}")))?;
    let redirect = redirect_uri(state);
    let answer: TokenAnswer = state
        .oidc
        .jwks()
        .post_form_json(
            &discovery.token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect),
                ("client_id", &record.config.audience),
                ("code_verifier", &flight.verifier),
            ],
        )
        .await
        .map_err(|e| idp_failure(&format!("token exchange: {e}")))?;
    let login = state
        .oidc
        .authenticate(&state.store, &answer.id_token, Some(&org.slug), now)
        .await
        .map_err(|error| match error {
            OidcError::Invalid => ApiError::Unauthenticated,
            OidcError::Unavailable => idp_failure("the identity provider's keys cannot be fetched"),
            OidcError::Store(cause) => ApiError::from(cause),
        })?;
    if login.org_id != org.id || !nonce_matches(&answer.id_token, &flight.nonce) {
        return Err(ApiError::Unauthenticated.into());
    }
    let role = login.role.ok_or(ApiError::Forbidden(
        "your identity provider's role claim maps to no role in this organization",
    ))?;
    let principal = Principal {
        token_id: login.identity.clone(),
        org_id: Some(org.id.clone()),
        user_id: None,
        impersonator_id: None,
        oidc: Some(OidcRole(Some(role))),
    };
    let sign_in = SessionSignIn::Idp {
        identity: &login.identity,
        role: role.as_str(),
    };
    open_session(state, &principal, sign_in, Arrival::CrossSite).await
}

/// Whether the (already verified) ID token carries `expected` as its `nonce`.
fn nonce_matches(id_token: &str, expected: &str) -> bool {
    // The signature, issuer, audience and times were verified by the caller; the claims
    // are only read here.
    let claims: serde_json::Map<String, serde_json::Value> =
        match jsonwebtoken::dangerous::insecure_decode_claims(id_token) {
            Ok(claims) => claims,
            Err(_) => return false,
        };
    claims
        .get("nonce")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|nonce| matches(nonce, expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636_s256() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_sign_in_in_flight_round_trips_and_garbage_is_none() {
        let flight = InFlight {
            org: "acme".into(),
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            expires_at: 5,
        };
        let decoded = InFlight::decode(&flight.encode().expect("encode")).expect("decode");
        assert_eq!(decoded.state, "s");
        assert!(InFlight::decode("not base64 json").is_none());
    }
}
