//! End to end against the real `mcpg-auth` on an ephemeral port (SQLite, development root):
//! federation per tier, outages, revocation and key rotation.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mcpg_auth::Application;
use mcpg_entitlements::{Gateway, GatewayBuilder, ModeSettings, Reason, Settings, State};
use mcpg_license_core::{PublicKey, TrustStore};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A running `mcpg-auth`.
struct Federation {
    data_dir: tempfile::TempDir,
    address: String,
    admin_token: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Federation {
    async fn start() -> Self {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut settings = mcpg_auth::Settings::with_data_dir(data_dir.path());
        settings.listen = "127.0.0.1:0".parse().expect("addr");
        settings.key_reload_interval = Duration::from_millis(100);
        settings.key_publish_delay = Duration::from_secs(1);
        settings.bootstrap_token_file = Some(data_dir.path().join("bootstrap.token"));
        let application = Application::build(settings)
            .await
            .expect("mcpg-auth builds");
        let address = format!("http://127.0.0.1:{}", application.port());
        let (stop, stopped) = oneshot::channel();
        let server = tokio::spawn(application.run_until(async move {
            let _ = stopped.await;
        }));
        let admin_token = std::fs::read_to_string(data_dir.path().join("bootstrap.token"))
            .expect("bootstrap token")
            .trim()
            .to_owned();
        Self {
            data_dir,
            address,
            admin_token,
            http: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
        }
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: StatusCode,
    ) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "{path}: {body}");
        body
    }

    /// An org with a license of `tier`, workspace `main`, environment `prod` and a gateway;
    /// returns the gateway credential.
    async fn tenant(&self, org: &str, tier: &str) -> String {
        self.admin(
            Method::POST,
            "/v1/orgs",
            Some(json!({"slug": org, "display_name": org})),
            StatusCode::CREATED,
        )
        .await;
        self.admin(
            Method::PUT,
            &format!("/v1/orgs/{org}/license"),
            Some(json!({"tier": tier, "valid_for_days": 30})),
            StatusCode::OK,
        )
        .await;
        self.admin(
            Method::POST,
            &format!("/v1/orgs/{org}/workspaces"),
            Some(json!({"slug": "main"})),
            StatusCode::CREATED,
        )
        .await;
        self.admin(
            Method::POST,
            &format!("/v1/orgs/{org}/workspaces/main/environments"),
            Some(json!({"slug": "prod"})),
            StatusCode::CREATED,
        )
        .await;
        let gateway = self
            .admin(
                Method::POST,
                &format!("/v1/orgs/{org}/workspaces/main/environments/prod/gateways"),
                Some(json!({"name": "gw-1"})),
                StatusCode::CREATED,
            )
            .await;
        gateway["credential"]
            .as_str()
            .expect("credential")
            .to_owned()
    }

    fn trust(&self) -> TrustStore {
        let text = std::fs::read_to_string(self.data_dir.path().join("dev-root.public.paserk"))
            .expect("dev root");
        TrustStore::new([PublicKey::from_paserk(text.trim()).expect("root")])
    }

    fn gateway(&self, credential: &str, state_dir: &Path) -> Gateway {
        GatewayBuilder::new(Settings {
            mode: ModeSettings::Federated {
                url: self.address.clone(),
                credential: SecretString::from(credential.to_owned()),
                timeout: Duration::from_secs(5),
            },
            state_dir: state_dir.to_owned(),
            trust: self.trust(),
            revocation_list: None,
        })
        .build()
        .expect("gateway starts")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_federate_and_check_plugins_for_each_tier() {
    let federation = Federation::start().await;
    for (tier, team_plugin, enterprise_plugin) in [
        ("free", false, false),
        ("team", true, false),
        ("enterprise", true, true),
    ] {
        let org = format!("org-{tier}");
        let credential = federation.tenant(&org, tier).await;
        let state = tempfile::tempdir().expect("state");
        let gateway = federation.gateway(&credential, state.path());
        assert_eq!(gateway.refresh_now().await, Ok(State::Active), "{tier}");
        let tenant =
            mcpg_entitlements::TenantKey::parse(&format!("{org}/main/prod")).expect("tenant");
        assert_eq!(gateway.default_tenant(), Some(tenant.clone()));
        assert!(gateway.check(&tenant, "identity.apikey").allowed, "{tier}");
        assert_eq!(
            gateway.check(&tenant, "workspace.rbac").allowed,
            team_plugin,
            "{tier}"
        );
        let enterprise = gateway.check(&tenant, "environment.rbac");
        assert_eq!(enterprise.allowed, enterprise_plugin, "{tier}");
        if !enterprise_plugin {
            assert_eq!(enterprise.reason, Reason::NotEntitled);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entitlements_are_kept_when_the_server_stops_and_end_when_the_license_is_revoked() {
    let mut federation = Federation::start().await;
    let credential = federation.tenant("acme", "team").await;
    let state = tempfile::tempdir().expect("state");
    let gateway = federation.gateway(&credential, state.path());
    gateway.refresh_now().await.expect("federates");

    federation
        .admin(
            Method::POST,
            "/v1/orgs/acme/license/revoke",
            None,
            StatusCode::OK,
        )
        .await;
    let revoked = gateway.refresh_now().await.expect_err("revoked");
    assert_eq!(revoked.code(), "license_revoked");
    let decision = gateway.check_default("workspace.rbac");
    assert_eq!(
        (decision.allowed, decision.reason, decision.state),
        (false, Reason::Revoked, State::Revoked)
    );

    let other = federation.tenant("globex", "team").await;
    let kept = federation.gateway(&other, tempfile::tempdir().expect("state").path());
    kept.refresh_now().await.expect("federates");
    federation.stop().await;
    let outage = kept.refresh_now().await.expect_err("server is down");
    assert_eq!(outage.code(), "outage");
    let decision = kept.check_default("workspace.rbac");
    assert_eq!((decision.allowed, decision.state), (true, State::Active));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_keep_verifying_across_a_key_rotation() {
    let federation = Arc::new(Federation::start().await);
    let credential = federation.tenant("acme", "enterprise").await;
    let state = tempfile::tempdir().expect("state");
    let gateway = federation.gateway(&credential, state.path());
    gateway.refresh_now().await.expect("federates");
    let kid = |g: &Gateway| g.snapshot().default.license.and_then(|l| l.kid);
    let old = kid(&gateway);

    federation
        .admin(
            Method::POST,
            "/v1/admin/keys/rotate",
            None,
            StatusCode::ACCEPTED,
        )
        .await;
    let mut rotated = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(gateway.refresh_now().await, Ok(State::Active));
        if kid(&gateway) != old {
            rotated = true;
            break;
        }
    }
    assert!(rotated, "the new key never signed");
    assert_eq!(gateway.verified_issuers(), 2);
    assert!(gateway.check_default("policy.cedar").allowed);
}
