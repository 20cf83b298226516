//! The per-request layers around the routes: [`RequestContextLayer`] (request id, tracing
//! span, the id echoed on the response), [`GuardLayer`] (load shedding and the request
//! timeout) and [`LatencyLayer`] (the latency histogram by route template).
//!
//! They replace six generic layers (tower-http's set/propagate request id and trace layers,
//! tower's load-shed, concurrency-limit and timeout behind axum's `HandleError`, and a
//! `from_fn` middleware). hyper clones the service for every request, and those layers cost
//! the token endpoint, the hot path, a boxed future per clone of the concurrency limit, a
//! boxed service clone and eagerly formatted span fields. These clone an `Arc` at most,
//! box nothing, and give the span plain `&str` fields.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Timeout;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::http::error::ApiError;
use crate::infra::telemetry::{REQUESTS_REFUSED, latency_histogram, method_label};

/// The header carrying the request id, both ways.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client; a longer or odd one is replaced by our own.
const MAX_REQUEST_ID: usize = 128;

/// Gives each request an id (the client's `x-request-id` when it is short, printable
/// text, a fresh UUID otherwise), runs it inside a `request` span carrying method, path,
/// id and (once known) org, and echoes the id on the response.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestContextLayer;

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContext { inner }
    }
}

/// The service of [`RequestContextLayer`].
#[derive(Debug, Clone)]
pub(crate) struct RequestContext<S> {
    inner: S,
}

impl<S> Service<Request> for RequestContext<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = WithRequestId<Instrumented<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let id = match request.headers().get(&REQUEST_ID) {
            Some(id) if acceptable_id(id) => id.clone(),
            _ => {
                let id = fresh_id();
                request.headers_mut().insert(REQUEST_ID, id.clone());
                id
            }
        };
        let span = tracing::info_span!(
            "request",
            method = method_label(request.method()),
            path = request.uri().path(),
            request_id = id.to_str().unwrap_or("-"),
            org = tracing::field::Empty,
        );
        // Routing and extraction start inside `call`: run it in the span too.
        let future = span.in_scope(|| self.inner.call(request));
        WithRequestId {
            future: future.instrument(span),
            id: Some(id),
        }
    }
}

/// A client's id is kept when it is 1–128 visible ASCII characters (it is logged and
/// stored with audit entries).
fn acceptable_id(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID && bytes.iter().all(u8::is_ascii_graphic)
}

fn fresh_id() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"))
}

pin_project! {
    /// The response future of [`RequestContext`]: adds the request id to the response.
    pub(crate) struct WithRequestId<F> {
        #[pin]
        future: F,
        id: Option<HeaderValue>,
    }
}

impl<F, E> Future for WithRequestId<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.future.poll(cx))?;
        if let Some(id) = this.id.take() {
            response.headers_mut().insert(REQUEST_ID, id);
        }
        Poll::Ready(Ok(response))
    }
}

/// Sheds load and bounds each request's time: a request arriving while `max_in_flight`
/// others are in progress gets 503 at once, and one still running after `timeout` is
/// dropped and answered 503.
#[derive(Debug, Clone)]
pub(crate) struct GuardLayer {
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl GuardLayer {
    /// A guard admitting `max_in_flight` requests at a time, each for at most `timeout`.
    pub(crate) fn new(max_in_flight: usize, timeout: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight.min(Semaphore::MAX_PERMITS))),
            timeout,
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            permits: self.permits.clone(),
            timeout: self.timeout,
        }
    }
}

/// The service of [`GuardLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Guard<S> {
    inner: S,
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Guarded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Probes and scrapes are never shed: a busy instance must still answer its health
        // checks (or its orchestrator restarts it) and its metrics (or nobody sees why).
        let permit = if is_operations_path(request.uri().path()) {
            None
        } else {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return Guarded::Shed,
            }
        };
        Guarded::Admitted {
            future: tokio::time::timeout(self.timeout, self.inner.call(request)),
            _permit: permit,
        }
    }
}

/// `/healthz`, `/readyz` and (on the operations listener) `/metrics`, which the guard
/// never sheds.
fn is_operations_path(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

pin_project! {
    /// The response future of [`Guard`].
    #[project = GuardedProjection]
    pub(crate) enum Guarded<F> {
        /// Running, holding one of the in-flight permits (none for the operations
        /// endpoints) until it completes or is dropped.
        Admitted {
            #[pin]
            future: Timeout<F>,
            _permit: Option<OwnedSemaphorePermit>,
        },
        /// Refused: too many requests in flight.
        Shed,
    }
}

impl<F> Future for Guarded<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GuardedProjection::Admitted { future, .. } => {
                match std::task::ready!(future.poll(cx)) {
                    Ok(response) => Poll::Ready(response),
                    Err(_) => {
                        // Inside the request span: the line names the route and request id.
                        tracing::warn!("request timed out");
                        metrics::counter!(REQUESTS_REFUSED, "reason" => "timeout").increment(1);
                        Poll::Ready(Ok(
                            ApiError::Unavailable("the request timed out").into_response()
                        ))
                    }
                }
            }
            GuardedProjection::Shed => {
                // Counted, not logged: a line per shed request would flood the log exactly
                // when the service is overloaded.
                metrics::counter!(REQUESTS_REFUSED, "reason" => "overloaded").increment(1);
                Poll::Ready(Ok(ApiError::Unavailable(
                    "the server is overloaded; retry shortly",
                )
                .into_response()))
            }
        }
    }
}

/// Records each request's latency in the histogram of its route template, method and
/// status (applied as a route layer, so the template is known).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LatencyLayer;

impl<S> Layer<S> for LatencyLayer {
    type Service = Latency<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Latency { inner }
    }
}

/// The service of [`LatencyLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Latency<S> {
    inner: S,
}

impl<S> Service<Request> for Latency<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Timed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = method_label(request.method());
        Timed {
            start: Instant::now(),
            route,
            method,
            future: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`Latency`].
    pub(crate) struct Timed<F> {
        #[pin]
        future: F,
        start: Instant,
        route: Option<MatchedPath>,
        method: &'static str,
    }
}

impl<F, E> Future for Timed<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.future.poll(cx))?;
        let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        let elapsed = this.start.elapsed();
        let status = response.status();
        latency_histogram(route, this.method, status.as_u16()).record(elapsed.as_secs_f64());
        // 500s are logged with their cause where they are made (`ApiError`); the other
        // server errors (503: no active key, revoked certificate, IdP keys unreachable, not
        // ready) are logged here, inside the request span.
        if status.is_server_error() && status != StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(status = status.as_u16(), "answered with a server error");
        }
        tracing::debug!(
            status = response.status().as_u16(),
            latency_us = elapsed.as_micros() as u64,
            "response"
        );
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::StatusCode;
    use axum::response::Response;
    use tower::{Layer, ServiceExt};

    use super::{GuardLayer, HeaderValue, acceptable_id, fresh_id};

    async fn answer(response: Response) -> (StatusCode, String) {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_guard_sheds_requests_over_its_limit_and_times_out_slow_ones() {
        let metrics = crate::infra::telemetry::metrics_handle();
        let guard = GuardLayer::new(1, Duration::from_millis(200));
        let slow = guard.layer(tower::service_fn(|_: Request| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
        let fast = guard.layer(tower::service_fn(|_: Request| async {
            Ok::<_, Infallible>(Response::new(Body::from("done")))
        }));
        let running = tokio::spawn(slow.oneshot(Request::new(Body::empty())));
        tokio::time::sleep(Duration::from_millis(50)).await;

        let shed = fast.clone().oneshot(Request::new(Body::empty())).await;
        let (status, body) = answer(shed.expect("infallible")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("overloaded"), "{body}");

        let timed_out = running.await.expect("join").expect("infallible");
        let (status, body) = answer(timed_out).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("timed out"), "{body}");

        // Probes are answered even with every permit taken.
        let probe = Request::get("/healthz")
            .body(Body::empty())
            .expect("request");
        let probed = fast.clone().oneshot(probe).await;
        assert_eq!(
            answer(probed.expect("infallible")).await,
            (StatusCode::OK, "done".into())
        );

        // The timed-out request gave its permit back.
        let served = fast.oneshot(Request::new(Body::empty())).await;
        assert_eq!(
            answer(served.expect("infallible")).await,
            (StatusCode::OK, "done".into())
        );

        let rendered = metrics.render();
        for reason in ["overloaded", "timeout"] {
            let series = format!("mcpg_http_requests_refused_total{{reason=\"{reason}\"}}");
            assert!(
                rendered.contains(&series),
                "{series} missing from {rendered}"
            );
        }
    }

    #[test]
    fn client_ids_are_kept_only_when_short_and_printable() {
        assert!(acceptable_id(&HeaderValue::from_static("req-42")));
        assert!(!acceptable_id(&HeaderValue::from_static("")));
        assert!(!acceptable_id(&HeaderValue::from_static("two words")));
        let long = "a".repeat(129);
        assert!(!acceptable_id(
            &HeaderValue::from_str(&long).expect("header")
        ));
        let fresh = fresh_id();
        assert_eq!(fresh.len(), 36);
        assert!(acceptable_id(&fresh));
    }
}
