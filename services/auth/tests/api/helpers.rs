//! `spawn_app(backend)` and the typed client the tests drive the service with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mcpg_auth::Application;
use mcpg_auth::RateLimitSettings;
use mcpg_auth::Settings;
use mcpg_license_core::{Jwks, KeySet, ManualClock, PublicKey, TrustStore};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Declares a test that runs on both backends: `name::on_sqlite` and `name::on_postgres`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                match $crate::helpers::Backend::postgres() {
                    Some(backend) => super::$name(backend).await,
                    None => eprintln!("skipped: MCPG_TEST_POSTGRES_URL unset"),
                }
            }
        }
    )+};
}
pub(crate) use on_both_backends;

/// Which database a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    /// SQLite in the data dir.
    Sqlite,
    /// PostgreSQL: the server URL (a database is created per test).
    Postgres(String),
}

impl Backend {
    /// PostgreSQL, when `MCPG_TEST_POSTGRES_URL` is set.
    pub fn postgres() -> Option<Self> {
        std::env::var("MCPG_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .map(Backend::Postgres)
    }
}

/// A PostgreSQL database that lives as long as the test, with its two roles: the owner
/// (runs migrations) and the service's unprivileged role. All three are uniquely named and
/// dropped after the test.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    owner: String,
    app: String,
    /// URL of the test's database as the service's role (`--database-url`).
    pub url: String,
    /// URL of the test's database as its owner (`--migrate-database-url`).
    pub owner_url: String,
    /// URL of the test's database as the server's superuser.
    pub superuser_url: String,
}

impl TestDatabase {
    /// Creates a uniquely named database, owned by a new owner role, and a new app role,
    /// on the server at `admin_url`.
    pub async fn create_for_test(admin_url: &str) -> Self {
        use sqlx::Connection;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("mcpg_test_{id}");
        let (owner, app) = (format!("mcpg_owner_{id}"), format!("mcpg_app_{id}"));
        let password = uuid::Uuid::new_v4().simple().to_string();
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("connect to MCPG_TEST_POSTGRES_URL");
        for statement in [
            format!("CREATE ROLE {owner} LOGIN PASSWORD '{password}'"),
            format!("CREATE ROLE {app} LOGIN PASSWORD '{password}'"),
            format!("CREATE DATABASE {name} OWNER {owner}"),
        ] {
            sqlx::query(&statement)
                .execute(&mut conn)
                .await
                .expect("create test database and roles");
        }
        let as_role = |role: Option<&str>| {
            let mut url = reqwest::Url::parse(admin_url).expect("MCPG_TEST_POSTGRES_URL is a URL");
            url.set_path(&format!("/{name}"));
            if let Some(role) = role {
                url.set_username(role).expect("URL with a host");
                url.set_password(Some(&password)).expect("URL with a host");
            }
            url.to_string()
        };
        Self {
            admin_url: admin_url.to_owned(),
            url: as_role(Some(&app)),
            owner_url: as_role(Some(&owner)),
            superuser_url: as_role(None),
            name,
            owner,
            app,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let statements = [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            format!("DROP ROLE IF EXISTS {}", self.app),
            format!("DROP ROLE IF EXISTS {}", self.owner),
        ];
        // Drop runs outside async context; a short-lived runtime on its own thread drops them.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    for statement in statements {
                        let _ = sqlx::query(&statement).execute(&mut conn).await;
                    }
                }
            });
        })
        .join();
    }
}

/// A running server and what the tests need to talk to it.
pub struct TestApp {
    /// Base URL of the API.
    pub address: String,
    /// Base URL of the operations listener (`/metrics`, probes, version).
    pub ops_address: String,
    /// The issuer URL the server runs as.
    pub issuer: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The bootstrap admin token.
    pub admin_token: String,
    /// The data directory (kept alive for the test).
    pub data_dir: tempfile::TempDir,
    /// The settings it was started with (to restart it).
    pub settings: Settings,
    /// The clock the server runs on, when a test controls time.
    pub clock: Option<Arc<ManualClock>>,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The PostgreSQL database, dropped after the server.
    pub database: Option<TestDatabase>,
}

/// The issuer the tests' settings name: the certificates tests make for external keys are
/// for it (`federation::without_an_issuer_the_bound_address_is_the_issuer` unsets it).
pub const TEST_ISSUER: &str = "http://127.0.0.1:8421";

/// The settings tests start with: port 0 for both listeners, a fixed issuer, fast key
/// reloads, bootstrap token in a file.
pub fn test_settings(data_dir: &std::path::Path) -> Settings {
    let mut settings = Settings::with_data_dir(data_dir);
    settings.listen = "127.0.0.1:0".parse().expect("addr");
    settings.ops_listen = "127.0.0.1:0".parse().expect("addr");
    settings.issuer = Some(TEST_ISSUER.to_owned());
    settings.key_reload_interval = Duration::from_millis(100);
    settings.key_publish_delay = Duration::from_secs(1);
    settings.bootstrap_token_file = Some(data_dir.join("bootstrap.token"));
    // Tests drive hundreds of requests a second; the rate-limit tests set their own limits.
    settings.rate_limits = RateLimitSettings {
        org_rps: 0,
        admin_rps: 0,
        ..RateLimitSettings::default()
    };
    settings
}

/// Starts a server on `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts a server on `backend` with adjusted settings.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_full(backend, adjust, None).await
}

/// Starts a server on `backend` whose time is `clock`.
pub async fn spawn_app_on_clock(backend: Backend, clock: Arc<ManualClock>) -> TestApp {
    spawn_app_full(backend, |_| {}, Some(clock)).await
}

/// Starts a server on `backend` with adjusted settings and, when given, an injected clock.
pub async fn spawn_app_full(
    backend: Backend,
    adjust: impl FnOnce(&mut Settings),
    clock: Option<Arc<ManualClock>>,
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(data_dir.path());
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres(url) => Some(TestDatabase::create_for_test(&url).await),
    };
    if let Some(db) = &database {
        settings.database_url = Some(db.url.clone().into());
        settings.migrate_database_url = Some(db.owner_url.clone().into());
    }
    adjust(&mut settings);
    let mut app = TestApp {
        address: String::new(),
        ops_address: String::new(),
        issuer: String::new(),
        client: reqwest::Client::new(),
        admin_token: String::new(),
        data_dir,
        settings,
        clock,
        stop: None,
        server: None,
        database,
    };
    app.start().await;
    app.admin_token = std::fs::read_to_string(app.data_dir.path().join("bootstrap.token"))
        .expect("bootstrap token file")
        .trim()
        .to_owned();
    app
}

impl TestApp {
    /// (Re)starts the server with the stored settings.
    pub async fn start(&mut self) {
        let application = match &self.clock {
            Some(clock) => {
                Application::build_with_clock(self.settings.clone(), clock.clone()).await
            }
            None => Application::build(self.settings.clone()).await,
        }
        .expect("server builds");
        self.address = format!("http://127.0.0.1:{}", application.port());
        self.ops_address = format!("http://127.0.0.1:{}", application.ops_port());
        self.issuer = application.issuer().to_owned();
        let (stop, stopped) = oneshot::channel();
        self.stop = Some(stop);
        self.server = Some(tokio::spawn(application.run_until(async move {
            let _ = stopped.await;
        })));
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }

    /// The Prometheus page of the operations listener.
    pub async fn scrape(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.ops_address))
            .send()
            .await
            .expect("metrics scraped");
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.expect("metrics text")
    }

    /// The development root's public key file.
    pub fn root_public_path(&self) -> PathBuf {
        self.data_dir.path().join("dev-root.public.paserk")
    }

    /// A trust store pinning the development root.
    pub fn trust_store(&self) -> TrustStore {
        let text = std::fs::read_to_string(self.root_public_path()).expect("dev root public key");
        TrustStore::new([PublicKey::from_paserk(text.trim()).expect("valid root")])
    }

    /// A request with the admin token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(&self.admin_token)
    }

    /// Sends JSON with the admin token and returns status and body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.admin(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        split(response).await
    }

    /// Sends JSON, asserting the expected status; returns the body.
    pub async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> Value {
        let (got, body) = self.send(method, path, body).await;
        assert_eq!(got, status, "{path}: unexpected answer {body}");
        body
    }

    /// Creates an org.
    pub async fn create_org(&self, slug: &str) -> Value {
        let body = json!({"slug": slug, "display_name": format!("Org {slug}")});
        self.expect(
            reqwest::Method::POST,
            "/v1/orgs",
            Some(body),
            StatusCode::CREATED,
        )
        .await
    }

    /// Sets an org's license.
    pub async fn set_license(&self, org: &str, license: Value) -> Value {
        self.expect(
            reqwest::Method::PUT,
            &format!("/v1/orgs/{org}/license"),
            Some(license),
            StatusCode::OK,
        )
        .await
    }

    /// Creates org, Team license (30 days), workspace `main`, environment `prod` and a gateway;
    /// returns the gateway's credential.
    pub async fn gateway(&self, org: &str) -> String {
        self.create_org(org).await;
        self.set_license(
            org,
            json!({"tier": "team", "entitlements_add": ["plugin:policy.cedar"], "limits": {"max_gateways": 10}, "valid_for_days": 30}),
        )
        .await;
        self.expect(
            reqwest::Method::POST,
            &format!("/v1/orgs/{org}/workspaces"),
            Some(json!({"slug": "main"})),
            StatusCode::CREATED,
        )
        .await;
        self.expect(
            reqwest::Method::POST,
            &format!("/v1/orgs/{org}/workspaces/main/environments"),
            Some(json!({"slug": "prod"})),
            StatusCode::CREATED,
        )
        .await;
        self.register_gateway(org, "gw-1").await.0
    }

    /// Registers a gateway in `main/prod`; returns (credential, id).
    pub async fn register_gateway(&self, org: &str, name: &str) -> (String, String) {
        let body = self
            .expect(
                reqwest::Method::POST,
                &format!("/v1/orgs/{org}/workspaces/main/environments/prod/gateways"),
                Some(json!({"name": name})),
                StatusCode::CREATED,
            )
            .await;
        (
            body["credential"]
                .as_str()
                .expect("credential shown once")
                .to_owned(),
            body["id"].as_str().expect("id").to_owned(),
        )
    }

    /// Asks for a token with a gateway credential.
    pub async fn token(&self, credential: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}/v1/federation/token", self.address))
            .bearer_auth(credential)
            .send()
            .await
            .expect("token request sent");
        split(response).await
    }

    /// Asks for a token and asserts success.
    pub async fn token_ok(&self, credential: &str) -> Value {
        let (status, body) = self.token(credential).await;
        assert_eq!(status, StatusCode::OK, "token refused: {body}");
        body
    }

    /// The served JWKS.
    pub async fn jwks(&self) -> Jwks {
        let response = self
            .client
            .get(format!("{}/.well-known/jwks.json", self.address))
            .send()
            .await
            .expect("jwks");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("jwks JSON")
    }

    /// The served JWKS as a key set.
    pub async fn key_set(&self) -> KeySet {
        KeySet::new(
            self.jwks()
                .await
                .keys
                .iter()
                .map(|jwk| jwk.public_key().expect("valid JWK")),
        )
    }
}

/// Status and JSON body (`Value::Null` when the body is not JSON).
pub async fn split(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The current Unix time.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Asserts a body is our error shape with `code`.
pub fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "unexpected body {body}");
    assert!(
        body["error"]["message"].is_string(),
        "error message missing in {body}"
    );
}
