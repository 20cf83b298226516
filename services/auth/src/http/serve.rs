//! The HTTP/1 server loop: accepts connections and serves each with hyper, with a timeout on
//! reading a request's headers and a bounded drain at shutdown.
//!
//! `axum::serve` sets no timer on hyper's connections, so a client that opens a connection
//! and never finishes its headers held it (and a task) forever, and held off a graceful
//! shutdown until it went away. Here each connection gets hyper's `header_read_timeout`,
//! and shutdown waits for open connections at most `drain` before it goes on.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{Service, ServiceExt};

/// How the server treats slow clients and shutdown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeOptions {
    /// Time a client has to send a request's headers, counted from when the connection
    /// starts waiting for the request (so it is also how long an idle keep-alive connection
    /// is kept). At least a second.
    pub(crate) header_read_timeout: Duration,
    /// Longest wait for open connections once shutdown starts.
    pub(crate) drain: Duration,
}

/// Serves `service` on `listener` until `stop` completes, then stops accepting, lets every
/// connection finish its request in progress, and returns once all are closed or, after
/// `drain`, once the remaining ones are dropped.
pub(crate) async fn serve<S>(
    listener: TcpListener,
    service: S,
    stop: impl Future<Output = ()>,
    options: ServeOptions,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let header_read_timeout = options.header_read_timeout.max(Duration::from_secs(1));
    // `stopping` tells the connections to finish, `dropping` to give up; each holds a
    // receiver of `open` until it ends, so `open.closed()` completes when the last one has.
    let (stopping, stopping_rx) = watch::channel(false);
    let (dropping, dropping_rx) = watch::channel(false);
    let (open, open_rx) = watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors or a connection reset before accept: wait a
                    // little rather than spin, and go on.
                    tracing::warn!(error = %error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Answers are small and written whole: never hold one back for a delayed ACK.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            service
                .clone()
                .map_request(|request: hyper::Request<Incoming>| request.map(Body::new)),
        );
        let mut stopping = stopping_rx.clone();
        let mut dropping = dropping_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                // Client errors (resets, malformed requests, header timeouts) end only
                // their own connection; hyper has answered what it could.
                _ = connection.as_mut() => {}
                // The flag only ever turns true, so any change (or the sender gone) is
                // the signal.
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        _ = connection => {}
                        _ = dropping.changed() => {}
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(open_rx);
    if tokio::time::timeout(options.drain, open.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = open.receiver_count(),
            "connections still open after the shutdown drain; closing them"
        );
        let _ = dropping.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(1), open.closed()).await;
    }
}
