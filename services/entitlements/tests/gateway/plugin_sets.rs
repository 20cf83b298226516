//! Plugin sets: a token's `ps` claim narrows the checks, its configs are taken only when
//! the claim vouches for them, kept beside the token across restarts, and served by the
//! sidecar.

use std::fs;
use std::path::{Path, PathBuf};

use mcpg_entitlements::{PluginSetRejection, Reason, RefreshError, State, sidecar};
use mcpg_license_core::{ManualClock, PluginSet, PluginSetEntry, Tier};
use serde_json::{Value, json};

use crate::support::*;

fn set() -> PluginSet {
    let entry = |id: &str, config| PluginSetEntry {
        id: id.into(),
        config,
    };
    PluginSet::new(vec![
        entry(
            "identity.oidc",
            json!({"issuer": "https://idp.test", "scopes": ["openid"]}),
        ),
        entry("identity.apikey", Value::Null),
        entry("vendor.custom", json!({"k": 1})),
    ])
    .expect("valid set")
}

fn set_file(dir: &Path) -> PathBuf {
    fs::read_dir(dir)
        .expect("state dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("plugin-set-"))
        })
        .expect("a plugin set file")
}

#[tokio::test]
async fn a_token_with_a_plugin_set_narrows_checks_and_hands_out_the_configs() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    fed.set_plugin_set(Some(set()));
    let gateway = federated(dir.path(), &clock, &fed);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));

    let oidc = gateway.check(&acme(), "identity.oidc");
    assert_eq!((oidc.allowed, oidc.reason), (true, Reason::Allowed));
    let audit = gateway.check(&acme(), "observability.audit");
    assert_eq!(
        (audit.allowed, audit.reason),
        (false, Reason::NotInPluginSet)
    );
    let retry = gateway.check_default("reliability.retry");
    assert_eq!(
        retry.reason,
        Reason::NotInPluginSet,
        "free but outside the set"
    );
    let cedar = gateway.check(&acme(), "policy.cedar");
    assert_eq!(
        cedar.reason,
        Reason::NotEntitled,
        "the license's denial comes first"
    );

    let handle = gateway.handle(&acme()).expect("tenant");
    assert_eq!(
        handle.plugin_config("identity.oidc").as_deref(),
        Some(&json!({"issuer": "https://idp.test", "scopes": ["openid"]}))
    );
    assert_eq!(handle.plugin_config("identity.apikey"), None);
    let words = gateway.explain(Some(&acme()), "observability.audit");
    assert!(
        words.starts_with(&format!(
            "observability.audit is denied: it is entitled but not in the plugin set of acme/platform/prod ({}); ask an operator to add it",
            set().digest()
        )),
        "{words}"
    );

    let snapshot = gateway.snapshot();
    let shown = snapshot.default.plugin_set.expect("status shows the set");
    assert_eq!(shown.digest, set().digest());
    assert_eq!(
        shown.ids,
        ["identity.apikey", "identity.oidc", "vendor.custom"],
        "unknown plugins are shown too"
    );
    assert!(
        !snapshot
            .default
            .allowed_plugins
            .contains(&"observability.audit".to_owned())
    );

    // A later token without a set lifts it.
    fed.set_plugin_set(None);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    assert!(gateway.check(&acme(), "observability.audit").allowed);
    assert_eq!(handle.plugin_set(), None);
}

#[tokio::test]
async fn a_served_set_other_than_the_signed_one_is_refused_and_the_state_kept() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    fed.set_plugin_set(Some(set()));
    let mut edited = served(&set());
    edited["plugins"][1]["config"]["issuer"] = json!("https://evil.test");
    fed.serve_set(ServedSet::Other(edited.clone()));
    let gateway = federated(dir.path(), &clock, &fed);

    // Never trusted, not even as the first token.
    let first = gateway.refresh_now().await;
    assert!(
        matches!(
            first,
            Err(RefreshError::PluginSet(PluginSetRejection::Mismatch { .. }))
        ),
        "{first:?}"
    );
    assert_eq!(
        gateway.check_default("identity.oidc").reason,
        Reason::NotFederated
    );
    let kept_sets = fs::read_dir(dir.path())
        .expect("state dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("plugin-set-"))
        .count();
    assert_eq!(kept_sets, 0, "nothing from a refused response is kept");

    fed.serve_set(ServedSet::Matching);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    let good_digest = set().digest();

    for (served, code) in [
        (ServedSet::Other(edited), "mismatch"),
        (ServedSet::Omitted, "missing"),
    ] {
        fed.serve_set(served);
        clock.advance(HOUR);
        let error = gateway.refresh_now().await.expect_err("refused");
        assert_eq!(error.code(), "plugin_set_mismatch");
        assert!(
            matches!(
                (&error, code),
                (
                    RefreshError::PluginSet(PluginSetRejection::Mismatch { .. }),
                    "mismatch"
                ) | (
                    RefreshError::PluginSet(PluginSetRejection::Missing(_)),
                    "missing"
                )
            ),
            "{error:?}"
        );
        let handle = gateway.default_handle();
        assert_eq!(handle.state(), State::Active, "the current token is kept");
        assert_eq!(
            handle.plugin_config("identity.oidc").as_deref(),
            Some(&json!({"issuer": "https://idp.test", "scopes": ["openid"]}))
        );
        assert_eq!(handle.plugin_set().expect("set").digest(), good_digest);
    }
    let federation = &gateway.snapshot().federation[0];
    assert_eq!(federation.consecutive_failures, 2);
    assert!(
        gateway
            .next_refresh_at()
            .is_some_and(|at| at > clock_now(&clock)),
        "backs off"
    );
}

fn clock_now(clock: &ManualClock) -> i64 {
    mcpg_license_core::Clock::now(clock)
}

#[tokio::test]
async fn a_plugin_set_beside_a_token_without_ps_is_ignored() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let response = fed
        .authority
        .lock()
        .expect("lock")
        .mint_with(&claims("acme", Tier::Team, START), Some(served(&set())));
    fed.set(Behaviour::Fixed(response));
    let gateway = federated(dir.path(), &clock, &fed);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    assert!(gateway.check_default("observability.audit").allowed);
    assert_eq!(gateway.default_handle().plugin_set(), None);
    assert_eq!(
        gateway.default_handle().plugin_config("identity.oidc"),
        None
    );
}

#[tokio::test]
async fn the_set_survives_a_restart_and_an_edited_set_file_is_discarded() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    fed.set_plugin_set(Some(set()));
    assert_eq!(
        federated(dir.path(), &clock, &fed).refresh_now().await,
        Ok(State::Active)
    );
    let oidc_config = json!({"issuer": "https://idp.test", "scopes": ["openid"]});

    // A restart with the federation down resumes the set with its configs.
    fed.set(Behaviour::Outage { retry_after: None });
    let calls = fed.calls();
    let restarted = federated(dir.path(), &clock, &fed);
    assert_eq!(fed.calls(), calls, "building makes no call");
    let handle = restarted.default_handle();
    assert_eq!(
        handle.plugin_config("identity.oidc").as_deref(),
        Some(&oidc_config)
    );
    assert_eq!(
        restarted.check_default("observability.audit").reason,
        Reason::NotInPluginSet
    );
    assert!(restarted.next_refresh_at().is_some_and(|at| at > START));

    // A crash after a refresh wrote the next set's file but before it wrote the token: the
    // file the kept token names is still there, and the orphan is removed at start.
    let kept_file = set_file(dir.path());
    let name = kept_file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let (stem, _) = name
        .rsplit_once('-')
        .expect("plugin-set-<credential>-<digest>.json");
    let orphan = dir.path().join(format!("{stem}-00000000000000ff.json"));
    fs::write(&orphan, fs::read(&kept_file).expect("set file")).expect("orphan");
    let after_crash = federated(dir.path(), &clock, &fed);
    assert_eq!(
        after_crash
            .default_handle()
            .plugin_config("identity.oidc")
            .as_deref(),
        Some(&oidc_config),
        "the configs of the kept token survive the crash"
    );
    assert!(!orphan.exists(), "the next set's orphaned file is removed");
    assert!(kept_file.exists());

    // An edited set file is discarded: the signed ids still decide, no config is trusted,
    // and the configs are fetched again at once.
    let path = set_file(dir.path());
    let text = fs::read_to_string(&path).expect("set file");
    assert!(text.contains("https://idp.test"));
    fs::write(&path, text.replace("https://idp.test", "https://evil.test")).expect("edit");
    let tampered = federated(dir.path(), &clock, &fed);
    let handle = tampered.default_handle();
    assert_eq!(handle.state(), State::Active, "the token itself is kept");
    assert_eq!(handle.plugin_config("identity.oidc"), None);
    let kept = handle.plugin_set().expect("the claim's ids");
    assert!(!kept.configs_available());
    assert_eq!(kept.digest(), set().digest());
    assert_eq!(
        tampered.check_default("observability.audit").reason,
        Reason::NotInPluginSet
    );
    assert!(tampered.check_default("identity.oidc").allowed);
    assert_eq!(tampered.next_refresh_at(), Some(START), "refresh due now");
    let snapshot = tampered.snapshot();
    assert!(
        !snapshot
            .default
            .plugin_set
            .expect("shown")
            .configs_available
    );

    // The next good answer brings the configs back and rewrites the file.
    fed.set(Behaviour::Serve {
        org: "acme".into(),
        tier: Tier::Team,
    });
    assert_eq!(tampered.refresh_now().await, Ok(State::Active));
    assert_eq!(
        handle.plugin_config("identity.oidc").as_deref(),
        Some(&oidc_config)
    );
    let rewritten = fs::read_to_string(&path).expect("set file");
    assert!(!rewritten.contains("evil"));
}

#[tokio::test]
async fn the_sidecar_hands_out_the_config_and_the_whole_set() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    fed.set_plugin_set(Some(set()));
    let gateway = federated(dir.path(), &clock, &fed);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    let (addr, stop) = serve_sidecar(gateway).await;
    let get = |path: &str| {
        let url = format!("http://{addr}{path}");
        async move {
            let response = reqwest::get(url).await.expect("request");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };

    let (status, allowed) = get("/v1/check?plugin=identity.oidc").await;
    assert_eq!(status, 200);
    assert_eq!(allowed["allowed"], json!(true));
    assert_eq!(
        allowed["config"],
        json!({"issuer": "https://idp.test", "scopes": ["openid"]})
    );
    let (_, denied) = get("/v1/check?plugin=observability.audit&tenant=acme/platform/prod").await;
    assert_eq!(denied["reason"], json!("not_in_plugin_set"));
    assert!(denied.get("config").is_none(), "{denied}");
    let (_, no_config) = get("/v1/check?plugin=identity.apikey").await;
    assert_eq!(no_config["allowed"], json!(true));
    assert!(no_config.get("config").is_none(), "{no_config}");

    let (status, whole) = get("/v1/plugin-set").await;
    assert_eq!(status, 200);
    assert_eq!(whole["plugin_set"]["digest"], json!(set().digest()));
    assert_eq!(
        whole["plugin_set"]["plugins"],
        serde_json::to_value(set()).expect("json")
    );
    let (_, stranger) = get("/v1/plugin-set?tenant=globex").await;
    assert_eq!(stranger["plugin_set"], Value::Null);
    let (status, bad) = get("/v1/plugin-set?tenant=a//b").await;
    assert_eq!(
        (status, &bad["error"]["code"]),
        (400, &json!("invalid_tenant"))
    );

    let (_, status_page) = get("/v1/status").await;
    assert_eq!(
        status_page["default"]["plugin_set"]["digest"],
        json!(set().digest())
    );
    let _ = stop.send(());
}

/// Serves the sidecar on an ephemeral port; sending on the returned channel stops it.
pub async fn serve_sidecar(
    gateway: mcpg_entitlements::Gateway,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sidecar::serve(
        sidecar::router(gateway),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

#[tokio::test]
async fn the_sidecar_is_ready_once_the_first_decision_is_loaded() {
    let dir = temp_dir();
    let clock = ManualClock::new(START);
    let fed = FakeFederation::new(clock.clone(), Tier::Team);
    let gateway = federated(dir.path(), &clock, &fed);
    let (addr, stop) = serve_sidecar(gateway.clone()).await;
    let get = |path: &'static str| async move {
        let response = reqwest::get(format!("http://{addr}{path}"))
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.expect("JSON"))
    };
    assert_eq!(get("/healthz").await.0, 200);
    // Nothing persisted, no refresh yet: a check would say "not federated".
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["awaiting_first_decision"], 1);
    assert_eq!(gateway.refresh_now().await, Ok(State::Active));
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    // A restart resumes from the state directory: ready before any refresh.
    let restarted = federated(dir.path(), &clock, &fed);
    let (again, stop_again) = serve_sidecar(restarted).await;
    let ready = reqwest::get(format!("http://{again}/readyz"))
        .await
        .expect("request");
    assert_eq!(ready.status().as_u16(), 200);
    stop.send(()).ok();
    stop_again.send(()).ok();
}
