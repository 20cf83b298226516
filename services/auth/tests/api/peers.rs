//! Replicas hear each other's changes (PostgreSQL LISTEN/NOTIFY): a change committed on one
//! replica takes effect on another within about a second, although both cache grants for
//! minutes and reload keys hourly; a replica that loses its listening session says so,
//! reconnects and starts over from the database.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cluster_root::spawn_replica;
use crate::helpers::{Backend, TestApp, assert_error, spawn_app, spawn_app_with};

/// How soon another replica's change must take effect here: it takes milliseconds; the
/// margin is for a loaded test machine, and still far below the 600 s cache and the hourly
/// key reload the replicas run with.
const WITHIN: Duration = Duration::from_secs(2);

/// Caches long enough that only a notification can explain a change seen within [`WITHIN`];
/// one KEK for the replicas (a random one, generated for this test).
fn slow_caches(settings: &mut mcpg_auth::Settings) {
    settings.grant_cache_ttl = Duration::from_secs(600);
    settings.key_reload_interval = Duration::from_secs(3600);
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("random bytes");
    let kek: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    settings.kek = mcpg_auth::KekSource::Inline(kek.into());
}

/// Two replicas on one fresh PostgreSQL database, both with slow caches; `None` (and a
/// visible message) when no PostgreSQL is configured.
async fn two_replicas() -> Option<(TestApp, TestApp)> {
    let Some(backend) = Backend::postgres() else {
        eprintln!("skipped: MCPG_TEST_POSTGRES_URL unset");
        return None;
    };
    let first = spawn_app_with(backend, slow_caches).await;
    let second = spawn_replica(&first, tempfile::tempdir().expect("tempdir")).await;
    wait_for_listener(&first, "listening").await;
    wait_for_listener(&second, "listening").await;
    Some((first, second))
}

/// The `tier` claim of a token response (its signature is checked elsewhere).
fn tier_of(body: &Value) -> String {
    use base64::Engine;
    let token = body["token"].as_str().expect("token");
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("claims");
    claims["tier"].as_str().expect("tier").to_owned()
}

/// Terminates the replicas' listening sessions (as a database restart would); how many.
async fn terminate_listeners(admin: &sqlx::PgPool) -> usize {
    let terminated: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'mcpg-auth change listener'",
    )
    .fetch_all(admin)
    .await
    .expect("terminate");
    terminated.len()
}

/// The server pids of the replicas' listening sessions.
async fn listener_pids(admin: &sqlx::PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'mcpg-auth change listener'",
    )
    .fetch_all(admin)
    .await
    .expect("listening sessions")
}

async fn readyz(app: &TestApp) -> Value {
    app.client
        .get(format!("{}/readyz", app.ops_address))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json")
}

async fn wait_for_listener(app: &TestApp, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = readyz(app).await;
        if body["change_listener"] == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "change_listener never became {state}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `probe` until it returns true, for at most `within`; returns how long it took.
async fn within<F, Fut>(within: Duration, mut probe: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if probe().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Sets org `acme`'s status through `app`.
async fn set_status(app: &TestApp, status: &str) {
    app.expect(
        Method::PATCH,
        "/v1/orgs/acme",
        Some(json!({ "status": status })),
        StatusCode::OK,
    )
    .await;
}

/// Whether `app` answers `credential`'s token request with `status` within [`WITHIN`].
async fn answers_within(app: &TestApp, credential: &str, status: StatusCode) -> bool {
    within(WITHIN, || async { app.token(credential).await.0 == status })
        .await
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_on_one_replica_is_refused_on_another_within_a_second() {
    let Some((mut first, mut second)) = two_replicas().await else {
        return;
    };
    let credential = first.gateway("acme").await;
    // The second replica caches the grant (for ten minutes).
    second.token_ok(&credential).await;
    set_status(&first, "suspended").await;
    assert!(
        answers_within(&second, &credential, StatusCode::FORBIDDEN).await,
        "the suspension did not reach the second replica within 1 s"
    );
    let (_, body) = second.token(&credential).await;
    assert_error(&body, "org_suspended");
    // And back: resuming on the second replica reaches the first.
    first.token(&credential).await;
    set_status(&second, "active").await;
    assert!(
        answers_within(&first, &credential, StatusCode::OK).await,
        "the resumption did not reach the first replica within 1 s"
    );
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_gateway_and_a_changed_license_reach_the_other_replica() {
    let Some((mut first, mut second)) = two_replicas().await else {
        return;
    };
    let credential = first.gateway("acme").await;
    let (revoked, revoked_id) = first.register_gateway("acme", "gw-2").await;
    assert_eq!(tier_of(&second.token_ok(&credential).await), "team");
    second.token_ok(&revoked).await;
    first
        .expect(
            Method::DELETE,
            &format!("/v1/orgs/acme/workspaces/main/environments/prod/gateways/{revoked_id}"),
            None,
            StatusCode::OK,
        )
        .await;
    assert!(
        answers_within(&second, &revoked, StatusCode::UNAUTHORIZED).await,
        "the revocation did not reach the second replica within 1 s"
    );
    first
        .set_license("acme", json!({"tier": "enterprise", "valid_for_days": 30}))
        .await;
    let took = within(WITHIN, || async {
        let (status, body) = second.token(&credential).await;
        status == StatusCode::OK && tier_of(&body) == "enterprise"
    })
    .await;
    assert!(
        took.is_some(),
        "the new license did not reach the second replica within 1 s"
    );
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_published_by_the_other_replica_without_waiting_for_its_reload() {
    let Some((mut first, mut second)) = two_replicas().await else {
        return;
    };
    let pending = first
        .expect(
            Method::POST,
            "/v1/admin/keys/rotate",
            None,
            StatusCode::ACCEPTED,
        )
        .await;
    let new_kid = pending["kid"].as_str().expect("kid").to_owned();
    let took = within(WITHIN, || async {
        second
            .jwks()
            .await
            .keys
            .iter()
            .any(|k| k.kid.as_deref() == Some(new_kid.as_str()))
    })
    .await;
    assert!(
        took.is_some(),
        "the second replica (reloading hourly) did not publish the new key within 1 s"
    );
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listening_session_is_reported_and_listening_resumes() {
    let Some((mut first, mut second)) = two_replicas().await else {
        return;
    };
    let credential = first.gateway("acme").await;
    second.token_ok(&credential).await;
    let database = first.database.as_ref().expect("postgres");
    let admin = sqlx::PgPool::connect(&database.superuser_url)
        .await
        .expect("owner connection");
    // Cut the second replica off: terminate its listening session. The first replica's is
    // terminated too (same application name); both report it and reconnect.
    let before = listener_pids(&admin).await;
    assert_eq!(before.len(), 2, "one listening session per replica");
    assert_eq!(terminate_listeners(&admin).await, 2);
    // Reconnected with backoff (and every cache dropped, since what was announced while it
    // was deaf is lost): two new listening sessions.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now_listening = listener_pids(&admin).await;
        if now_listening.len() == 2 && now_listening.iter().all(|pid| !before.contains(pid)) {
            break;
        }
        assert!(Instant::now() < deadline, "the listeners never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_listener(&second, "listening").await;
    wait_for_listener(&first, "listening").await;
    // The grant is cached again on the second replica; only a notification can drop it.
    second.token_ok(&credential).await;
    set_status(&first, "suspended").await;
    assert!(
        answers_within(&second, &credential, StatusCode::FORBIDDEN).await,
        "changes are heard again after the reconnect"
    );
    admin.close().await;
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_cannot_listen_says_so_in_readyz_and_stays_ready() {
    let Some((mut first, mut second)) = two_replicas().await else {
        return;
    };
    let database = first.database.as_ref().expect("postgres");
    let admin = sqlx::PgPool::connect(&database.superuser_url)
        .await
        .expect("owner connection");
    // Keep terminating the listening sessions for a while: each replica sees it down.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut saw_down = None;
    while Instant::now() < deadline && saw_down.is_none() {
        terminate_listeners(&admin).await;
        let response = second
            .client
            .get(format!("{}/readyz", second.ops_address))
            .send()
            .await
            .expect("readyz");
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        if body["change_listener"] == "down" {
            saw_down = Some((status, body));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, body) = saw_down.expect("readyz reported the listener down");
    assert_eq!(status, StatusCode::OK, "still ready: {body}");
    let detail = body["changes_from_other_replicas"]
        .as_str()
        .expect("detail");
    assert!(detail.contains("within 600 s"), "{detail}");
    wait_for_listener(&second, "listening").await;
    admin.close().await;
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_there_is_no_one_to_listen_to() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let body = readyz(&app).await;
    assert_eq!(body["change_listener"], "not_applicable");
    assert!(!app.scrape().await.contains("mcpg_change_listener_up 0"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_drops_only_its_own_orgs_cached_grants() {
    let Some((mut first, mut second)) = two_replicas().await else {
        return;
    };
    let acme = first.gateway("acme").await;
    let globex = first.gateway("globex").await;
    // Both replicas' credential directories load the new orgs (a pass at most every 100 ms):
    // once loaded, an entry changes only when its org's change is heard.
    tokio::time::sleep(Duration::from_secs(2)).await;
    second.token_ok(&acme).await;
    second.token_ok(&globex).await;
    // Behind the service's back (no notification): globex is suspended in the database.
    let database = first.database.as_ref().expect("postgres");
    let admin = sqlx::PgPool::connect(&database.superuser_url)
        .await
        .expect("superuser connection");
    sqlx::query("UPDATE orgs SET status = 'suspended' WHERE slug = 'globex'")
        .execute(&admin)
        .await
        .expect("update");
    // A change to acme, announced: the second replica drops acme's grants only.
    set_status(&first, "suspended").await;
    assert!(
        answers_within(&second, &acme, StatusCode::FORBIDDEN).await,
        "acme's change was heard"
    );
    assert_eq!(
        second.token(&globex).await.0,
        StatusCode::OK,
        "globex's entry was kept: only the changed org's grants are reloaded"
    );
    admin.close().await;
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_rolls_back_announces_nothing() {
    let Some((mut first, mut second)) = two_replicas().await else {
        return;
    };
    first.gateway("acme").await;
    let database = first.database.as_ref().expect("postgres");
    let mut listener = sqlx::postgres::PgListener::connect(&database.superuser_url)
        .await
        .expect("listen");
    listener.listen("mcpg_changes").await.expect("listen");
    // Past the license's max_gateways (10; one is registered): the ninth extra is refused
    // inside its transaction, which rolls back.
    for n in 2..=10 {
        first.register_gateway("acme", &format!("gw-{n}")).await;
    }
    while tokio::time::timeout(Duration::from_millis(300), listener.recv())
        .await
        .is_ok()
    {}
    let (status, body) = first
        .send(
            Method::POST,
            "/v1/orgs/acme/workspaces/main/environments/prod/gateways",
            Some(json!({"name": "gw-11"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let heard = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(heard.is_err(), "a refused write announced {heard:?}");
    // A committed one is announced.
    set_status(&first, "suspended").await;
    let heard = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("announced")
        .expect("notification");
    assert!(heard.payload().contains(" grants "), "{}", heard.payload());
    second.stop().await;
    first.stop().await;
}
