//! Request extractors that answer in our error shape: JSON bodies, management
//! principals (API tokens and identity tokens of the orgs' OIDC providers) and gateway
//! credentials.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::domain::credential::{Credential, CredentialKind};
use crate::domain::rbac::Role;
use crate::http::denials::CallerSlot;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::infra::oidc::{self, OidcError};
use crate::infra::store::{Actor, ApiTokenRecord};

/// A JSON object body; malformed, mistyped or oversized bodies, and JSON that is not an
/// object, become [`ApiError`]s.
#[derive(Debug, Clone)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(not_json());
        }
        let body = read_body(request, state).await?;
        object(&body).map(Self)
    }
}

/// The token request's body, read but not yet parsed: [`OptionalJson::parse`] reads it as
/// empty (`T::default()`) or a JSON object whose members may borrow from the body (the
/// usage report is read in the same pass: `domain::usage::ReportMember`). Its
/// `Content-Type` is not checked: the body is informational, and a gateway's tokens must
/// not depend on a header its HTTP client may set differently.
#[derive(Debug, Clone)]
pub(crate) struct OptionalJson(Bytes);

impl<S: Send + Sync> FromRequest<S> for OptionalJson {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        read_body(request, state).await.map(Self)
    }
}

impl OptionalJson {
    /// The body's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The body as `T`, parsed in one pass with no path tracking: this is the token path.
    /// No nesting pre-pass as for [`ApiJson`]: what `T` reads nests as deep as its own
    /// types (serde_json's recursion limit bounds it), and what it skips serde_json skips
    /// without recursion.
    pub(crate) fn parse<'a, T: Deserialize<'a> + Default>(&'a self) -> Result<T, ApiError> {
        let body = &self.0[..];
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::BadRequest("body must be a JSON object".into()));
        }
        // Checked once here, the body's strings need no check of their own as they are read.
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::BadRequest("body is not valid JSON: not UTF-8".into()))?;
        serde_json::from_str(text).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::BadRequest(format!("invalid body: {e}")),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ApiError::BadRequest(format!("body is not valid JSON: {e}"))
            }
            serde_json::error::Category::Io => ApiError::BadRequest("cannot read body".into()),
        })
    }
}

async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            _ => ApiError::BadRequest("cannot read body".into()),
        })
}

/// For `#[serde(default, deserialize_with = "crate::http::extract::present")]` on an optional
/// member whose schema does not allow `null`: absent gives `None`, `null` is an error
/// (plain `Option` would read `null` as absent).
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// An integer member of a JSON body. JSON Schema counts `6.0` as the integer 6, so an
/// integral number written with a fraction or an exponent is accepted; `6.5`, or a value
/// outside `T`, is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Integer<T>(pub(crate) T);

impl<'de, T: TryFrom<i64> + TryFrom<u64>> serde::Deserialize<'de> for Integer<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntegerVisitor(std::marker::PhantomData))
    }
}

struct IntegerVisitor<T>(std::marker::PhantomData<T>);

impl<T: TryFrom<i64> + TryFrom<u64>> serde::de::Visitor<'_> for IntegerVisitor<T> {
    type Value = Integer<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an integer in range")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::try_from(v)
            .map(Integer)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        T::try_from(v)
            .map(Integer)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // 2^63 and 2^64 are exact in f64: the casts below are in range, not saturated.
        const I64_MIN: f64 = -9_223_372_036_854_775_808.0;
        const U64_END: f64 = 18_446_744_073_709_551_616.0;
        let unexpected = serde::de::Unexpected::Float(v);
        if v.fract() != 0.0 || !(I64_MIN..U64_END).contains(&v) {
            return Err(E::invalid_value(unexpected, &self));
        }
        if v < 0.0 {
            self.visit_i64(v as i64)
        } else {
            self.visit_u64(v as u64)
        }
    }
}

/// The deepest nesting of arrays and objects a request body may have. No documented body
/// nests deeper than a handful of levels; serde_json skips unknown members without its
/// recursion limit, so the bound is checked before parsing.
pub(crate) const MAX_JSON_DEPTH: usize = 32;

/// Deserialises `body` as `T`, which must be a JSON object: serde would also fill a struct
/// from a JSON array of its fields in order, which no route documents.
fn object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    check_object(body)?;
    match axum::Json::<T>::from_bytes(body) {
        Ok(axum::Json(value)) => Ok(value),
        Err(rejection) => Err(json_error(rejection)),
    }
}

/// Refuses a body that is not a JSON object or nests too deep, before it is parsed.
fn check_object(body: &[u8]) -> Result<(), ApiError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    }
    if nesting_exceeds(body, MAX_JSON_DEPTH) {
        return Err(ApiError::BadRequest(format!(
            "body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    Ok(())
}

/// Whether `body` opens more than `max` arrays or objects at once (brackets inside strings
/// do not count). One pass over the bytes, no allocation; malformed JSON is left to the
/// parser.
fn nesting_exceeds(body: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// `Content-Type: application/json`, or another `application/…+json` type, with any
/// parameters (the rule of axum's `Json`, which keeps its check private).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

fn not_json() -> ApiError {
    ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
}

fn json_error(rejection: JsonRejection) -> ApiError {
    // Only the parsing rejections reach here: the content type and the body size were
    // checked before the body was parsed.
    match rejection {
        // axum's texts start with its own sentence; ours says the same in fewer words.
        JsonRejection::JsonDataError(e) => ApiError::BadRequest(format!(
            "invalid body: {}",
            strip_framework_text(&e.body_text())
        )),
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(format!(
            "body is not valid JSON: {}",
            strip_framework_text(&e.body_text())
        )),
        other => ApiError::BadRequest(format!("cannot read body: {}", other.body_text())),
    }
}

fn strip_framework_text(text: &str) -> &str {
    [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to parse the request body as JSON: ",
    ]
    .iter()
    .find_map(|prefix| text.strip_prefix(prefix))
    .unwrap_or(text)
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The presented gateway credential, checked for format and checksum only.
#[derive(Debug)]
pub(crate) struct GatewayCredential(pub(crate) Credential);

impl FromRequestParts<AppState> for GatewayCredential {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::InvalidCredential)?;
        Credential::parse(CredentialKind::Gateway, token)
            .map(Self)
            .map_err(|_| ApiError::InvalidCredential)
    }
}

/// Who calls the management API.
///
/// A token without an org is the global (vendor) admin's; a token of an org is a user's
/// personal token (`user_id`), an impersonation by a global admin (`impersonator_id`,
/// time-limited) or an org API key — the last two act as the org's admin. An identity
/// token from an org's own OIDC provider (`oidc`) acts with the role its claims map to.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    /// API token id; for an OIDC login, `oidc:{issuer}#{sub}`.
    pub(crate) token_id: String,
    /// The org the token is scoped to; `None` for a global admin.
    pub(crate) org_id: Option<String>,
    /// The user a personal token belongs to.
    pub(crate) user_id: Option<String>,
    /// The global admin token an impersonation token was issued to.
    pub(crate) impersonator_id: Option<String>,
    /// An OIDC login: the role the IdP's claims map to in `org_id`, if any.
    pub(crate) oidc: Option<OidcRole>,
}

/// What an OIDC login may do in its org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OidcRole(pub(crate) Option<Role>);

impl Principal {
    /// Whether this is the global (vendor) admin.
    pub(crate) fn is_global(&self) -> bool {
        self.org_id.is_none()
    }

    /// Refuses anyone but a global admin.
    pub(crate) fn require_global(&self) -> Result<(), ApiError> {
        match self.org_id {
            None => Ok(()),
            Some(_) => Err(ApiError::Forbidden(
                "this operation needs a global admin token",
            )),
        }
    }

    /// Authenticates the request's bearer token (once per request; the answer is kept in
    /// the request's extensions). An identity token is verified preferring the org with
    /// slug `target` (the org the request addresses) when several orgs could accept it.
    pub(crate) async fn authenticate(
        parts: &mut Parts,
        state: &AppState,
        target: Option<&str>,
    ) -> Result<Self, ApiError> {
        if let Some(known) = parts.extensions.get::<Principal>() {
            // Authenticated before routing (tenant selection): the denials slot exists only now.
            CallerSlot::fill(&parts.extensions, known);
            return Ok(known.clone());
        }
        let token = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        let principal = if token.starts_with(CredentialKind::ApiToken.prefix()) {
            api_token(state, token).await?
        } else if oidc::looks_like_jwt(token) {
            oidc_login(state, token, target).await?
        } else {
            return Err(ApiError::Unauthenticated);
        };
        CallerSlot::fill(&parts.extensions, &principal);
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// Verifies an API token (`mcpg_pat_…`: a global admin token, an org API key, a personal
/// or an impersonation token) as every management request does; the console's sign-in
/// form verifies the pasted token with it too.
pub(crate) async fn api_token(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let credential = Credential::parse(CredentialKind::ApiToken, token)
        .map_err(|_| ApiError::Unauthenticated)?;
    let hash = credential.hash();
    let record = state
        .store
        .api_token_by_hash(&hash.to_hex(), state.now())
        .await?
        .filter(|record| hash.matches_hex(&record.token_hash))
        .ok_or(ApiError::Unauthenticated)?;
    Ok(Principal::from(record))
}

/// The caller a valid API token stands for.
impl From<ApiTokenRecord> for Principal {
    fn from(record: ApiTokenRecord) -> Self {
        Principal {
            token_id: record.id,
            org_id: record.org_id,
            user_id: record.user_id,
            impersonator_id: record.impersonator_id,
            oidc: None,
        }
    }
}

async fn oidc_login(
    state: &AppState,
    token: &str,
    target: Option<&str>,
) -> Result<Principal, ApiError> {
    let login = state
        .oidc
        .authenticate(&state.store, token, target, state.now())
        .await
        .map_err(|error| match error {
            OidcError::Invalid => ApiError::Unauthenticated,
            OidcError::Unavailable => ApiError::Unavailable(
                "the identity provider's keys cannot be fetched now; retry later",
            ),
            OidcError::Store(cause) => ApiError::from(cause),
        })?;
    Ok(Principal {
        token_id: login.identity,
        org_id: Some(login.org_id),
        user_id: None,
        impersonator_id: None,
        oidc: Some(OidcRole(login.role)),
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Self::authenticate(parts, state, None).await
    }
}

impl Principal {
    /// The identity the audit chain records for this caller.
    pub(crate) fn audit_id(&self) -> String {
        match (&self.org_id, &self.user_id, &self.impersonator_id) {
            (None, _, _) => format!("admin:{}", self.token_id),
            (Some(_), _, Some(admin)) => {
                format!("admin:{admin} as impersonation:{}", self.token_id)
            }
            (Some(_), Some(user), None) => format!("user:{user}"),
            (Some(_), None, None) => format!("token:{}", self.token_id),
        }
    }
}

/// The request's id (the `x-request-id` header the request-context layer sets), empty if
/// none.
pub(crate) fn request_id(parts: &Parts) -> String {
    parts
        .headers
        .get(&crate::http::layers::REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The audit actor of a management request: the authenticated principal and the request id.
impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        Ok(Actor {
            id: principal.audit_id(),
            request_id: request_id(parts),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert!(!nesting_exceeds(br#"{"a":[{"b":[]}]}"#, 4));
        assert!(nesting_exceeds(br#"{"a":[{"b":[[]]}]}"#, 4));
        assert!(!nesting_exceeds(br#"{"a":"[[[[[[\"[[[["}"#, 1));
        assert!(nesting_exceeds(&[b'['; 33], MAX_JSON_DEPTH));
    }
}
