//! Signing in and out, and the session every other console page runs in.
//!
//! - Sign-in: the operator pastes an API token (a global admin token, an org API key or a
//!   personal `mcpg_pat_…` token) once; it is verified by [`crate::http::extract::api_token`],
//!   the very function that verifies the API's bearer tokens. The form carries a CSRF token
//!   of its own, paired with a short-lived cookie (double submit), since no session exists
//!   yet.
//! - The session: a random 256-bit id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure`
//!   and `__Host-` prefixed when the public URL is https), stored server-side as its SHA-256 only, with the token
//!   it was opened with, a CSRF secret, and its times. It ends at sign-out, after
//!   [`IDLE_TIMEOUT`] without a request, [`ABSOLUTE_TIMEOUT`] after sign-in, or as soon as
//!   the token is revoked or expires (checked at every request, by the lookup's join).
//! - Every POST under a session carries the session's CSRF token in its `csrf` field,
//!   compared in constant time before the handler runs.

use axum::body::{Body, Bytes};
use axum::extract::{Form, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ConsoleError;
use super::view;
use crate::http::error::ApiError;
use crate::http::extract::{OidcRole, Principal, api_token};
use crate::http::state::AppState;
use crate::infra::store::{NewConsoleSession, SessionOwner, SessionSignIn};

/// A session without a request for this long (seconds) has ended.
pub(crate) const IDLE_TIMEOUT: i64 = 30 * 60;
/// A session ends this long (seconds) after sign-in, however busy.
pub(crate) const ABSOLUTE_TIMEOUT: i64 = 12 * 3_600;
/// `last_seen_at` is written at most this often (seconds): a page view need not be a write.
const TOUCH_EVERY: i64 = 60;
/// The session cookie.
const COOKIE: &str = "mcpg_console";
/// The sign-in form's own CSRF cookie (no session exists yet).
pub(super) const SIGN_IN_COOKIE: &str = "mcpg_console_sign_in";
/// How long the sign-in form may stay open (seconds).
const SIGN_IN_WINDOW: i64 = 15 * 60;
/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The signed-in operator of a request, and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    /// Who is signed in: the principal of the token the session was opened with.
    pub(crate) principal: Principal,
    /// The session's CSRF token.
    pub(crate) csrf: String,
    /// SHA-256 hex of the session id.
    id_hash: String,
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ConsoleError> {
        parts.extensions.get::<SignedIn>().cloned().ok_or_else(|| {
            ConsoleError::from(ApiError::internal(anyhow::anyhow!(
                "console route without the session layer"
            )))
        })
    }
}

/// The middleware of every page but sign-in: finds the session of the cookie (or sends the
/// browser to sign in), checks the CSRF token of a POST, and hands the request the
/// session's principal — which the API's extractors and tenant resolution then use.
pub(crate) async fn require_session(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match open(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(response) => response,
    }
}

async fn open(state: &AppState, request: Request) -> Result<Request, Response> {
    let now = state.now();
    let Some(id) = console_cookie(state, request.headers(), COOKIE) else {
        return Err(to_sign_in(request.method()));
    };
    let id_hash = digest(&id);
    let record = state
        .store
        .console_session(&id_hash, now, now - IDLE_TIMEOUT)
        .await
        .map_err(|e| ConsoleError::from(ApiError::from(e)).into_response())?;
    let Some(record) = record else {
        return Err(to_sign_in(request.method()));
    };
    let request = if request.method() == Method::GET || request.method() == Method::HEAD {
        request
    } else {
        check_csrf(request, &record.csrf_secret)
            .await
            .map_err(IntoResponse::into_response)?
    };
    if now - record.last_seen_at >= TOUCH_EVERY {
        state
            .store
            .touch_console_session(&id_hash, now)
            .await
            .map_err(|e| ConsoleError::from(ApiError::from(e)).into_response())?;
    }
    let (mut parts, body) = request.into_parts();
    let principal = match record.owner {
        SessionOwner::Token(token) => Principal::from(token),
        SessionOwner::Idp {
            org_id,
            identity,
            role,
        } => Principal {
            token_id: identity,
            org_id: Some(org_id),
            user_id: None,
            impersonator_id: None,
            oidc: Some(OidcRole(role.parse().ok())),
        },
    };
    parts.extensions.insert(principal.clone());
    parts.extensions.insert(SignedIn {
        principal,
        csrf: record.csrf_secret,
        id_hash,
    });
    Ok(Request::from_parts(parts, body))
}

/// No live session: a page view goes to the sign-in form; anything else is refused.
fn to_sign_in(method: &Method) -> Response {
    if method == Method::GET || method == Method::HEAD {
        Redirect::to("/console/sign-in").into_response()
    } else {
        ConsoleError::from(ApiError::Unauthenticated).into_response()
    }
}

#[derive(Debug, Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// Reads the form body, refuses it (403) unless its `csrf` field is `expected`, and gives
/// the request back with its body.
async fn check_csrf(request: Request, expected: &str) -> Result<Request, ConsoleError> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let field = form_field(&parts.headers, bytes.clone()).await;
    if !matches(&field, expected) {
        return Err(ApiError::Forbidden(
            "the form's CSRF token is missing or stale; reload the page and try again",
        )
        .into());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The `csrf` field of a form body (empty when absent or when the body is not a form).
async fn form_field(headers: &HeaderMap, bytes: Bytes) -> String {
    // A POST: axum reads a GET's form from the query string instead of the body.
    let mut probe = Request::new(Body::from(bytes));
    *probe.method_mut() = Method::POST;
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        probe
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    match Form::<CsrfField>::from_request(probe, &()).await {
        Ok(Form(field)) => field.csrf,
        Err(_) => String::new(),
    }
}

/// Constant-time equality of a presented and an expected secret (an empty one never
/// matches).
pub(super) fn matches(presented: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// Whether the service's public URL is https (its cookies are then `Secure` and
/// `__Host-` prefixed).
fn https(state: &AppState) -> bool {
    state.info.issuer_url.starts_with("https://")
}

/// The name console cookie `name` goes by: on https, prefixed `__Host-`, which a browser
/// accepts only from this very host, `Secure`, with `Path=/` and no `Domain`. A sibling
/// subdomain cannot plant one then: a planted session, sign-in token or sign-in in flight
/// would sign the victim in as the attacker.
fn cookie_name(state: &AppState, name: &str) -> String {
    if https(state) {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// The value of console cookie `name` (under [`cookie_name`]) in the request's headers.
pub(super) fn console_cookie(state: &AppState, headers: &HeaderMap, name: &str) -> Option<String> {
    cookie(headers, &cookie_name(state, name))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// SHA-256 hex of a session id: what the database keeps instead of the id.
pub(super) fn digest(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// 256 random bits, base64url.
pub(super) fn random_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, under `path`; on https `Secure`,
/// `__Host-` prefixed and under `/` ([`cookie_name`]); `max_age` 0 deletes it.
fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> Result<HeaderValue, ConsoleError> {
    set_cookie_with(state, name, value, path, max_age, "Strict")
}

/// [`set_cookie`] with another `SameSite` (the identity provider's redirect back is a
/// cross-site navigation, which a `Strict` cookie does not follow).
pub(super) fn set_cookie_with(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    same_site: &str,
) -> Result<HeaderValue, ConsoleError> {
    // `__Host-` cookies must be `Secure` and under `Path=/`.
    let (secure, path) = if https(state) {
        ("; Secure", "/")
    } else {
        ("", path)
    };
    let name = cookie_name(state, name);
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    ))
    .map_err(|e| ApiError::internal(anyhow::anyhow!("cookie header: {e}")).into())
}

/// `GET /console/sign-in`: the form, with a fresh CSRF token in a hidden field and in a
/// cookie of its own.
pub(crate) async fn sign_in_form(State(state): State<AppState>) -> Result<Response, ConsoleError> {
    sign_in_page(&state, StatusCode::OK, None)
}

/// The check of a sign-in form (an API token's or an identity provider's): `None` when
/// its CSRF token matches the sign-in cookie, else the sign-in page again with a 403.
pub(super) fn sign_in_csrf_refusal(
    state: &AppState,
    headers: &HeaderMap,
    csrf: &str,
) -> Option<Result<Response, ConsoleError>> {
    let expected = console_cookie(state, headers, SIGN_IN_COOKIE).unwrap_or_default();
    if matches(csrf, &expected) {
        return None;
    }
    let refusal =
        ApiError::Forbidden("the sign-in form's CSRF token is missing or stale; try again");
    Some(sign_in_page(state, StatusCode::FORBIDDEN, Some(&refusal)))
}

pub(super) fn sign_in_page(
    state: &AppState,
    status: StatusCode,
    refusal: Option<&ApiError>,
) -> Result<Response, ConsoleError> {
    let nonce = random_secret()?;
    let cookie = set_cookie(
        state,
        SIGN_IN_COOKIE,
        &nonce,
        "/console/sign-in",
        SIGN_IN_WINDOW,
    )?;
    let page = view::bare_page("Sign in", sign_in_body(&nonce, refusal));
    Ok((status, [(header::SET_COOKIE, cookie)], page).into_response())
}

fn sign_in_body(nonce: &str, refusal: Option<&ApiError>) -> Markup {
    html! {
        h1 { "Sign in to the MCPG console" }
        @if let Some(error) = refusal {
            (view::refusal(error))
        }
        form.stack method="post" action="/console/sign-in" {
            input type="hidden" name="csrf" value=(nonce);
            label for="token" { "API token" }
            p.hint id="token-hint" {
                "A global admin token or your personal token (mcpg_pat_…). It is checked "
                "once and not kept in the browser."
            }
            input id="token" type="password" name="token" required autocomplete="off"
                autofocus aria-describedby="token-hint";
            button type="submit" { "Sign in" }
        }
        h2 { "Or through your organization's identity provider" }
        form.stack method="post" action="/console/sign-in/idp" {
            input type="hidden" name="csrf" value=(nonce);
            label for="idp-org" { "Organization" }
            p.hint id="idp-org-hint" { "Its short name (slug), e.g. acme-corp." }
            input id="idp-org" name="org" required autocomplete="organization"
                aria-describedby="idp-org-hint";
            button type="submit" { "Continue to your identity provider" }
        }
    }
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

/// `POST /console/sign-in`: verifies the token as the API does and opens a session.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ConsoleError> {
    let Ok(Form(form)) = form else {
        return Err(ApiError::BadRequest("expected the sign-in form".into()).into());
    };
    if let Some(refusal) = sign_in_csrf_refusal(&state, &headers, &form.csrf) {
        return refusal;
    }
    let principal = match api_token(&state, form.token.trim()).await {
        Ok(principal) => principal,
        Err(refusal @ ApiError::Unauthenticated) => {
            return sign_in_page(&state, StatusCode::UNAUTHORIZED, Some(&refusal));
        }
        Err(other) => return Err(other.into()),
    };
    let sign_in = SessionSignIn::Token(&principal.token_id);
    open_session(&state, &principal, sign_in, Arrival::SameSite).await
}

/// How the request that opens a session arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// From one of our own pages (the sign-in form).
    SameSite,
    /// From another site (an identity provider's redirect).
    CrossSite,
}

/// Opens a session for `principal` (signed in as `sign_in`) and sends the browser home
/// with its cookie (a redirect, or after a cross-site arrival a page that moves on); the
/// sign-in form's cookie is spent.
pub(crate) async fn open_session(
    state: &AppState,
    principal: &Principal,
    sign_in: SessionSignIn<'_>,
    arrival: Arrival,
) -> Result<Response, ConsoleError> {
    let id = random_secret()?;
    let csrf = random_secret()?;
    let now = state.now();
    state
        .store
        .insert_console_session(&NewConsoleSession {
            id_hash: &digest(&id),
            sign_in,
            org_id: principal.org_id.as_deref(),
            csrf_secret: &csrf,
            now,
            expires_at: now + ABSOLUTE_TIMEOUT,
        })
        .await
        .map_err(ApiError::from)?;
    tracing::info!(principal = %principal.audit_id(), "console sign-in");
    let session = set_cookie(state, COOKIE, &id, "/console", ABSOLUTE_TIMEOUT)?;
    let spent = set_cookie(state, SIGN_IN_COOKIE, "", "/console/sign-in", 0)?;
    let home = view::home_of(principal);
    let mut response = match arrival {
        Arrival::SameSite => Redirect::to(&home).into_response(),
        // A redirect here would continue the identity provider's cross-site navigation, on
        // which the browser does not send the new `SameSite=Strict` cookie; a page of ours
        // that moves on starts a same-site one.
        Arrival::CrossSite => view::moving_page(
            "Signed in",
            &home,
            html! {
                h1 { "Signed in" }
                p { a id="continue" href=(home) autofocus { "Continue to the console" } }
            },
        )
        .into_response(),
    };
    response.headers_mut().append(header::SET_COOKIE, session);
    response.headers_mut().append(header::SET_COOKIE, spent);
    Ok(response)
}

/// `POST /console/sign-out`: ends the session in the database (the cookie is then worth
/// nothing, wherever a copy of it is) and clears the cookie.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, ConsoleError> {
    state
        .store
        .delete_console_session(&signed_in.id_hash)
        .await
        .map_err(ApiError::from)?;
    tracing::info!(principal = %signed_in.principal.audit_id(), "console sign-out");
    let cleared = set_cookie(&state, COOKIE, "", "/console", 0)?;
    let mut response = Redirect::to("/console/sign-in").into_response();
    response.headers_mut().append(header::SET_COOKIE, cleared);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name_among_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; mcpg_console_x=2"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("mcpg_console=abc"));
        assert_eq!(cookie(&headers, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn an_empty_expected_secret_never_matches() {
        assert!(!matches("", ""));
        assert!(matches("abc", "abc"));
        assert!(!matches("abd", "abc"));
        assert!(!matches("ab", "abc"));
    }

    #[test]
    fn the_stored_digest_is_not_the_id() {
        let id = "session-id";
        assert_ne!(digest(id), id);
        assert_eq!(digest(id).len(), 64);
    }
}
