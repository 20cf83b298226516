//! The HTTP/1 server loop: accepts connections and serves each with hyper, with a timeout on
//! reading a request's headers and a bounded drain at shutdown.
//!
//! `axum::serve` sets no timer on hyper's connections, so a client that opens a connection
//! and never finishes its headers holds it (and a task) forever, and holds off a graceful
//! shutdown until it goes away. Here each connection gets hyper's `header_read_timeout`,
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
pub struct ServeOptions {
    /// Time a client has to send a request's headers, counted from when the connection
    /// starts waiting for the request (so it is also how long an idle keep-alive connection
    /// is kept). At least a second.
    pub header_read_timeout: Duration,
    /// Longest wait for open connections once shutdown starts.
    pub drain: Duration,
}

/// Serves `service` (an axum `Router`, or any tower service of axum requests) on
/// `listener` until `stop` completes, then stops accepting, lets every connection finish
/// its request in progress, and returns once all are closed or, after `drain`, once the
/// remaining ones are dropped.
///
/// A connection that has not delivered a request's headers within `header_read_timeout`
/// is closed; errors of one connection (resets, malformed requests) end only that
/// connection; failures to accept are logged and retried after 100 ms.
pub async fn serve<S>(
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::Router;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    const OPTIONS: ServeOptions = ServeOptions {
        header_read_timeout: Duration::from_secs(1),
        drain: Duration::from_secs(1),
    };

    /// A server on an ephemeral loopback port; sending on the channel stops it.
    async fn start() -> (
        std::net::SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let router = Router::new().route("/", get(|| async { "hello" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            router,
            async move {
                let _ = stopped.await;
            },
            OPTIONS,
        ));
        (address, stop, server)
    }

    /// Stops the server and waits for it to return, at most `limit`.
    async fn stop_within(
        stop: tokio::sync::oneshot::Sender<()>,
        server: tokio::task::JoinHandle<()>,
        limit: Duration,
    ) {
        let _ = stop.send(());
        tokio::time::timeout(limit, server)
            .await
            .expect("the server stops in time")
            .expect("no panic");
    }

    /// Reads until the server closes the connection (or resets it), at most `limit`.
    async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(limit, async {
            let mut buffer = [0u8; 1024];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buffer[..n]),
                }
            }
        })
        .await;
        read.ok().map(|()| answer)
    }

    #[tokio::test]
    async fn a_complete_request_is_answered() {
        let (address, stop, server) = start().await;
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await
            .expect("send");
        let answer = read_until_closed(&mut stream, Duration::from_secs(5))
            .await
            .expect("answered and closed");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("hello"), "{answer}");
        stop_within(stop, server, Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn a_client_that_sends_headers_too_slowly_is_cut_off() {
        let (address, stop, server) = start().await;
        let mut stream = TcpStream::connect(address).await.expect("connect");
        let opened = Instant::now();
        // Half a request, then nothing: the headers never end.
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: test\r\n")
            .await
            .expect("send");
        let answer = read_until_closed(&mut stream, Duration::from_secs(10))
            .await
            .expect("the server closed the connection");
        let waited = opened.elapsed();
        assert!(
            waited >= Duration::from_millis(900),
            "closed after {waited:?}, before the timeout"
        );
        assert!(
            !String::from_utf8_lossy(&answer).contains("hello"),
            "no answer to an unfinished request"
        );
        stop_within(stop, server, Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn an_idle_connection_does_not_hold_off_shutdown() {
        let (address, stop, server) = start().await;
        let _idle = TcpStream::connect(address).await.expect("connect");
        // Let the server accept it before stopping.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stopping = Instant::now();
        // The client still holds its connection.
        stop_within(stop, server, Duration::from_secs(5)).await;
        assert!(stopping.elapsed() < Duration::from_secs(3));
    }
}
