//! Pages of the management API's lists. A list takes `?limit=` (1–[`MAX_LIMIT`], default
//! [`DEFAULT_LIMIT`]) and `?cursor=`, and answers with a JSON array (the shape it always
//! had) plus, when more items follow, the cursor of the next page in the `x-next-cursor`
//! header. Pages are keyset pages on the list's sort key, so a page costs the same however
//! deep it is and concurrent inserts never repeat an item.
//!
//! A cursor is opaque to clients: base64url of `{"r": route, "k": key}`. The route tag
//! makes a cursor of one list useless on another (400, like a garbled one).

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::http::error::{ApiError, Result};

/// Items per page unless `limit` says otherwise.
pub(super) const DEFAULT_LIMIT: u32 = 100;
/// Largest page.
pub(super) const MAX_LIMIT: u32 = 1_000;
/// The header carrying the next page's cursor; absent on the last page.
pub(super) const NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");
/// Longest cursor accepted (ours are far shorter: a route tag and a sort key).
const MAX_CURSOR: usize = 1_024;

/// Which list a cursor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ListRoute {
    Orgs,
    Workspaces,
    Environments,
    Gateways,
    UserTokens,
    Bindings,
    AdminTokens,
}

impl ListRoute {
    const fn tag(self) -> &'static str {
        match self {
            ListRoute::Orgs => "orgs",
            ListRoute::Workspaces => "workspaces",
            ListRoute::Environments => "environments",
            ListRoute::Gateways => "gateways",
            ListRoute::UserTokens => "user_tokens",
            ListRoute::Bindings => "bindings",
            ListRoute::AdminTokens => "admin_tokens",
        }
    }
}

#[derive(Debug, Deserialize)]
struct RawQuery {
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

/// The page a list request asks for.
#[derive(Debug)]
pub(super) struct PageRequest {
    limit: u32,
    cursor: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for PageRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let query: std::result::Result<Query<RawQuery>, QueryRejection> =
            Query::from_request_parts(parts, state).await;
        let Query(query) =
            query.map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))?;
        let limit = match query.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| ApiError::BadRequest(format!("limit must be 1-{MAX_LIMIT}")))?,
        };
        // `?cursor=` (empty) is the first page, as if absent.
        Ok(Self {
            limit,
            cursor: query.cursor.filter(|c| !c.is_empty()),
        })
    }
}

#[derive(Serialize)]
struct CursorOut<'a, K> {
    r: &'a str,
    k: K,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorIn<K> {
    r: String,
    k: K,
}

fn bad_cursor() -> ApiError {
    ApiError::BadRequest(
        "invalid cursor: pass the x-next-cursor of this list's previous page".into(),
    )
}

impl PageRequest {
    /// The sort key after which this page starts (`None`: the first page).
    pub(super) fn after<K: DeserializeOwned>(&self, route: ListRoute) -> Result<Option<K>> {
        let Some(text) = &self.cursor else {
            return Ok(None);
        };
        if text.len() > MAX_CURSOR {
            return Err(bad_cursor());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad_cursor())?;
        let cursor: CursorIn<K> = serde_json::from_slice(&bytes).map_err(|_| bad_cursor())?;
        if cursor.r != route.tag() {
            return Err(bad_cursor());
        }
        Ok(Some(cursor.k))
    }

    /// How many rows to fetch: one more than the page, to learn whether another follows.
    pub(super) fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The answer: at most `limit` of `rows` (fetched with [`Self::fetch`]), and the
    /// cursor after the last one when more rows follow.
    pub(super) fn answer<R, K: Serialize>(
        &self,
        route: ListRoute,
        mut rows: Vec<R>,
        key: impl Fn(&R) -> K,
    ) -> Paged<R> {
        let limit = self.limit as usize;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().and_then(|last| {
                let json = serde_json::to_vec(&CursorOut {
                    r: route.tag(),
                    k: key(last),
                })
                .ok()?;
                HeaderValue::from_str(&URL_SAFE_NO_PAD.encode(json)).ok()
            })
        } else {
            None
        };
        Paged { items: rows, next }
    }
}

/// One page: a JSON array, and the next cursor in a header.
#[derive(Debug)]
pub(super) struct Paged<T> {
    items: Vec<T>,
    next: Option<HeaderValue>,
}

impl<R> Paged<R> {
    /// The page's rows as views, leaving out those `view` turns into `None` (rows the
    /// caller may not see: a page may then be shorter than `limit`, and the cursor still
    /// follows the last row fetched).
    pub(super) fn filter_map<T>(self, view: impl FnMut(R) -> Option<T>) -> Paged<T> {
        Paged {
            items: self.items.into_iter().filter_map(view).collect(),
            next: self.next,
        }
    }

    /// The page's rows as views.
    pub(super) fn map<T: From<R>>(self) -> Paged<T> {
        self.filter_map(|row| Some(T::from(row)))
    }
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let mut response = axum::Json(self.items).into_response();
        if let Some(next) = self.next {
            response.headers_mut().insert(NEXT_CURSOR, next);
        }
        response
    }
}
