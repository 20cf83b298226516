//! The HTTP server's treatment of its connections and of a failed start: a client that
//! never finishes its headers is cut off, a stuck connection cannot hold off shutdown, a
//! start that cannot listen spends no bootstrap token, and the database file is private.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use mcpg_auth::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, spawn_app_with, test_settings};

/// Opens a connection and sends the start of a request whose headers never end.
async fn half_request(address: &str) -> TcpStream {
    let host = address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    stream
}

/// Asserts that `/healthz` answers 2xx on a connection of the app's client.
async fn assert_healthy(app: &TestApp) {
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("healthz");
    assert!(health.status().is_success(), "{}", health.status());
}

/// Waits until the server closes `stream` (EOF or reset), up to `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                // hyper may answer 408 before closing: read on to the end.
                Ok(_) => continue,
            }
        }
    });
    closed.await.is_ok()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stuck = half_request(&app.address).await;
    let started = Instant::now();
    assert!(
        closed_within(&mut stuck, Duration::from_secs(10)).await,
        "the server kept a connection with unfinished headers open for 10 s"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "closed before the timeout"
    );
    // The server still serves everyone else.
    assert_healthy(&app).await;
}

#[tokio::test]
async fn a_stuck_connection_does_not_hold_off_shutdown() {
    let mut app = spawn_app_with(Backend::Sqlite, |settings| {
        // The header timeout is far away: only the drain bound (the request timeout and
        // a second) can end the wait for the stuck connection.
        settings.header_read_timeout = Duration::from_secs(60);
        settings.request_timeout = Duration::from_secs(1);
    })
    .await;
    let _stuck = half_request(&app.address).await;
    // A complete request on a fresh connection, so one was served before the stop.
    assert_healthy(&app).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the server did not stop within 10 s of the signal");
    // The idle keep-alive connection of the client closes at once; the stuck one is
    // waited for at most the drain bound, 2 s here (and 1 s more to drop it), not the 60 s
    // of its header timeout.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_start_that_cannot_listen_spends_no_bootstrap_token() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(data_dir.path());
    settings.listen = taken.local_addr().expect("addr");
    let error = match Application::build(settings.clone()).await {
        Ok(_) => panic!("started on a port that is taken"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("cannot listen on"), "{error}");
    let token_file = data_dir.path().join("bootstrap.token");
    assert!(
        !token_file.exists(),
        "a bootstrap token was issued by a failed start"
    );

    // Once the port is free the next start issues it.
    drop(taken);
    settings.listen = "127.0.0.1:0".parse().expect("addr");
    let application = Application::build(settings).await.expect("starts");
    drop(application);
    let token = std::fs::read_to_string(&token_file).expect("bootstrap token file");
    assert!(token.trim().starts_with("mcpg_pat_"), "{token}");
}

#[tokio::test]
async fn the_sqlite_database_and_its_journal_are_private() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    // A write, so the WAL exists.
    app.create_org("acme").await;
    for name in ["mcpg.db", "mcpg.db-wal", "mcpg.db-shm"] {
        let path = app.data_dir.path().join(name);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }
}
