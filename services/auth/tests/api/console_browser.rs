//! The operator console in a real browser: headless Chromium driven over WebDriver by
//! Debian's `chromedriver`, which each test starts on an ephemeral port. The browser is
//! kept on loopback (every other host resolves to nothing and goes to a dead proxy).
//! Each test saves a screenshot under `target/console-screenshots/`.
//!
//! Without Chromium the tests say so and pass, unless `MCPG_REQUIRE_CHROMIUM=1` (CI), in
//! which case they fail.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use mcpg_license_core::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::process::{Child, Command};

use crate::console::Console;
use crate::helpers::{Backend, TestApp, now, spawn_app, spawn_app_on_clock, spawn_app_with};
use crate::rbac::{grant, user_token};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session and the chromedriver serving it. Chromedriver leads a
/// process group of its own, which Chromium joins; dropping the browser ends the group, so
/// a test that fails before [`Browser::finish`] leaves no Chromium behind.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    name: &'static str,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(group) = self.driver.id() {
            // `kill -- -PGID`: the whole group (chromedriver, Chromium and its helpers).
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{group}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Starts chromedriver and a browser for test `name`, or `None` (with a visible message)
/// when Chromium is not installed and not required.
async fn browser(name: &'static str) -> Option<Browser> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var("MCPG_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "MCPG_REQUIRE_CHROMIUM=1 but {CHROMIUM} or {CHROMEDRIVER} is missing \
             (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped {name}: Chromium not installed ({CHROMIUM}, {CHROMEDRIVER})");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = tempfile::tempdir().expect("profile dir");
    let args = json!([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--no-pings",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--disable-breakpad",
        "--disable-crash-reporter",
        // Loopback only: nothing else resolves, and anything else would go to a dead proxy.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        format!("--user-data-dir={}", profile.path().display()),
    ]);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"binary": CHROMIUM, "args": args}),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&url)
        .await
        .expect("a WebDriver session with headless Chromium");
    Some(Browser {
        client,
        driver,
        _profile: profile,
        name,
    })
}

impl Browser {
    async fn goto(&self, app: &TestApp, path: &str) {
        self.client
            .goto(&format!("{}{path}", app.address))
            .await
            .expect("navigation");
    }

    async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_owned()
    }

    async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .expect("body")
            .text()
            .await
            .expect("text")
    }

    async fn fill(&self, id: &str, value: &str) {
        let field = self.client.find(Locator::Id(id)).await.expect("field");
        field.send_keys(value).await.expect("typing");
    }

    /// Runs `action`, which leaves the page (a form sent, a link followed), and waits until
    /// the next page has loaded: WebDriver's click does not always wait for it.
    async fn navigating(&self, action: impl std::future::Future<Output = ()>) {
        let old = self
            .client
            .find(Locator::Css("html"))
            .await
            .expect("a page");
        action.await;
        for _ in 0..200 {
            // The old page's root goes stale once the new document replaced it.
            if old.tag_name().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for _ in 0..200 {
            let state = self
                .client
                .execute("return document.readyState;", vec![])
                .await
                .expect("ready state");
            if state == "complete" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the next page never finished loading");
    }

    async fn press(&self, button_text: &str) {
        let xpath = format!("//button[normalize-space(.)='{button_text}']");
        let button = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .expect("button");
        self.navigating(async { button.click().await.expect("click") })
            .await;
    }

    async fn follow(&self, link_text: &str) {
        let link = self
            .client
            .find(Locator::LinkText(link_text))
            .await
            .expect("link");
        self.navigating(async { link.click().await.expect("click") })
            .await;
    }

    async fn sign_in(&self, app: &TestApp, token: &str) {
        self.goto(app, "/console").await;
        assert_eq!(self.path().await, "/console/sign-in");
        self.fill("token", token).await;
        self.press("Sign in").await;
    }

    /// The value of the session cookie (HttpOnly: WebDriver sees it, page scripts do not).
    async fn session_cookie(&self) -> String {
        self.client
            .get_named_cookie("mcpg_console")
            .await
            .expect("the session cookie")
            .value()
            .to_owned()
    }

    /// Saves a screenshot and ends the session.
    async fn finish(self) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{}.png", self.name)), png).expect("screenshot saved");
        self.client.clone().close().await.expect("session closed");
    }
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("console-screenshots")
}

/// Org `acme` (Enterprise) with workspace `main` and environment `prod`.
async fn acme(app: &TestApp) {
    app.create_org("acme").await;
    app.set_license("acme", json!({"tier": "enterprise", "valid_for_days": 30}))
        .await;
    for (path, slug) in [
        ("/v1/orgs/acme/workspaces", "main"),
        ("/v1/orgs/acme/workspaces/main/environments", "prod"),
    ] {
        app.expect(
            Method::POST,
            path,
            Some(json!({"slug": slug})),
            StatusCode::CREATED,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_in_with_a_token() {
    let Some(browser) = browser("sign_in_with_a_token").await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    browser.sign_in(&app, "mcpg_pat_wrong").await;
    assert!(browser.text().await.contains("unauthenticated"));
    browser.sign_in(&app, &app.admin_token).await;
    assert_eq!(browser.path().await, "/console/orgs");
    let heading = browser.client.find(Locator::Css("h1")).await.expect("h1");
    assert_eq!(heading.text().await.expect("text"), "Organizations");
    // The stylesheet loaded under the CSP (a rule of it is in effect).
    let skip = browser
        .client
        .find(Locator::Css("a.skip"))
        .await
        .expect("skip link");
    assert_eq!(skip.css_value("position").await.expect("css"), "absolute");
    browser.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_creates_workspace_environment_and_gateway_and_sees_the_credential_once() {
    let Some(browser) = browser("register_gateway").await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    app.create_org("acme").await;
    app.set_license("acme", json!({"tier": "enterprise", "valid_for_days": 30}))
        .await;
    browser.sign_in(&app, &app.admin_token).await;
    browser.goto(&app, "/console/orgs/acme/fleet").await;
    browser.fill("new-workspace", "main").await;
    browser.press("Create workspace").await;
    browser.fill("new-env-main", "prod").await;
    browser.press("Create environment").await;
    browser.follow("main › prod").await;
    browser.fill("gateway-name", "edge-1").await;
    browser.press("Register gateway").await;
    let field = browser
        .client
        .find(Locator::Id("credential"))
        .await
        .expect("credential");
    let credential = field.prop("value").await.expect("value").expect("a value");
    assert!(credential.starts_with("mcpg_gw_"), "{credential}");
    // The copy button is hidden without the script: shown, the script ran under the CSP.
    let copy = browser
        .client
        .find(Locator::Css("button.copy"))
        .await
        .expect("copy");
    assert!(copy.is_displayed().await.expect("displayed"));
    app.token_ok(&credential).await;
    let shot = browser.client.screenshot().await.expect("screenshot");
    std::fs::create_dir_all(screenshot_dir()).expect("dir");
    std::fs::write(screenshot_dir().join("credential_shown_once.png"), shot).expect("saved");
    browser
        .goto(&app, "/console/orgs/acme/workspaces/main/environments/prod")
        .await;
    let listing = browser.text().await;
    assert!(listing.contains("edge-1"));
    assert!(
        !listing.contains(&credential),
        "the credential is shown once only"
    );
    browser.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_viewer_sees_no_mutating_control_and_a_forged_post_is_refused() {
    let Some(browser) = browser("viewer").await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    acme(&app).await;
    app.register_gateway("acme", "edge-1").await;
    grant(
        &app,
        "acme",
        "vera@acme.com",
        "viewer",
        json!({"workspace": "main", "environment": "prod"}),
    )
    .await;
    let token = user_token(&app, "acme", "vera@acme.com").await;
    browser.sign_in(&app, &token).await;
    assert_eq!(browser.path().await, "/console/orgs/acme");
    browser
        .goto(&app, "/console/orgs/acme/workspaces/main/environments/prod")
        .await;
    assert!(browser.text().await.contains("edge-1"));
    let buttons = browser
        .client
        .find_all(Locator::Css("button"))
        .await
        .expect("buttons");
    let mut labels = Vec::new();
    for button in buttons {
        labels.push(button.text().await.expect("label"));
    }
    assert_eq!(labels, ["Sign out", "Filter"], "a viewer's only buttons");
    // A POST forged with the viewer's own session and CSRF token: refused by the API's rules.
    let csrf = browser
        .client
        .find(Locator::Css("input[name=csrf]"))
        .await
        .expect("csrf field")
        .prop("value")
        .await
        .expect("value")
        .expect("a token");
    let mut forger = Console::new(&app);
    forger
        .cookies
        .insert("mcpg_console".into(), browser.session_cookie().await);
    let forged = forger
        .post(
            "/console/orgs/acme/workspaces/main/environments/prod/gateways",
            &[("csrf", &csrf), ("name", "sneaky")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("forbidden"));
    browser.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_post_without_the_csrf_token_is_refused() {
    let Some(browser) = browser("post_without_csrf").await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    acme(&app).await;
    browser.sign_in(&app, &app.admin_token).await;
    browser.goto(&app, "/console/orgs/acme/fleet").await;
    // WebDriver's script runs outside the page's CSP: it strips the forms' CSRF fields.
    browser
        .client
        .execute(
            "document.querySelectorAll('input[name=csrf]').forEach(function (e) { e.remove(); });",
            vec![],
        )
        .await
        .expect("script");
    browser.fill("new-workspace", "sneaky").await;
    browser.press("Create workspace").await;
    let text = browser.text().await;
    assert!(text.contains("CSRF"), "{text}");
    assert!(text.contains("forbidden"), "{text}");
    let workspaces = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/workspaces",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(workspaces.as_array().map(Vec::len), Some(1), "{workspaces}");
    browser.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sign_out_invalidates_the_session_cookie() {
    let Some(browser) = browser("sign_out").await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    browser.sign_in(&app, &app.admin_token).await;
    let cookie = browser.session_cookie().await;
    browser.press("Sign out").await;
    assert_eq!(browser.path().await, "/console/sign-in");
    let mut replay = Console::new(&app);
    replay.cookies.insert("mcpg_console".into(), cookie);
    let page = replay.get("/console/orgs").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/console/sign-in");
    browser.finish().await;
}

/// Presses Tab until the focused element satisfies `is_target` (at most 40 times).
async fn tab_to(browser: &Browser, what: &str, is_target: impl Fn(&str, &str) -> bool) {
    for _ in 0..40 {
        let focused = browser.client.active_element().await.expect("focus");
        let id = focused.attr("id").await.expect("id").unwrap_or_default();
        let text = focused.text().await.expect("text");
        if is_target(&id, &text) {
            return;
        }
        focused.send_keys(&Key::Tab).await.expect("tab");
    }
    panic!("Tab never reached {what}");
}

/// Presses Enter on the focused element, which leaves the page.
async fn press_enter(browser: &Browser) {
    let focused = browser.client.active_element().await.expect("focus");
    browser
        .navigating(async { focused.send_keys(&Key::Enter).await.expect("enter") })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_keyboard_only_walk_through_sign_in_and_gateway_registration() {
    let Some(browser) = browser("keyboard_walk").await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    acme(&app).await;
    browser.goto(&app, "/console").await;
    // The token field has the focus from the start: type, Enter.
    let focused = browser.client.active_element().await.expect("focus");
    assert_eq!(
        focused.attr("id").await.expect("id").as_deref(),
        Some("token")
    );
    focused.send_keys(&app.admin_token).await.expect("typing");
    press_enter(&browser).await;
    assert_eq!(browser.path().await, "/console/orgs");
    tab_to(&browser, "the acme link", |_, text| text == "acme").await;
    press_enter(&browser).await;
    assert_eq!(browser.path().await, "/console/orgs/acme");
    tab_to(&browser, "the Fleet link", |_, text| text == "Fleet").await;
    press_enter(&browser).await;
    assert_eq!(browser.path().await, "/console/orgs/acme/fleet");
    tab_to(&browser, "the environment", |_, text| text == "main › prod").await;
    press_enter(&browser).await;
    tab_to(&browser, "the gateway name", |id, _| id == "gateway-name").await;
    let focused = browser.client.active_element().await.expect("focus");
    focused.send_keys("edge-kbd").await.expect("typing");
    press_enter(&browser).await;
    let credential = browser
        .client
        .find(Locator::Id("credential"))
        .await
        .expect("credential shown")
        .prop("value")
        .await
        .expect("value")
        .expect("a value");
    assert!(credential.starts_with("mcpg_gw_"));
    // The skip link is the first stop of every signed-in page.
    browser.goto(&app, "/console/orgs/acme").await;
    let start = browser.client.active_element().await.expect("focus");
    start.send_keys(&Key::Tab).await.expect("tab");
    let first = browser.client.active_element().await.expect("focus");
    assert_eq!(first.text().await.expect("text"), "Skip to content");
    browser.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_fleet_shows_a_gateway_fresh_after_it_federated_and_in_grace_past_exp() {
    let Some(browser) = browser("fleet_health").await else {
        return;
    };
    let clock = Arc::new(ManualClock::new(now()));
    let app = spawn_app_on_clock(Backend::Sqlite, clock.clone()).await;
    acme(&app).await;
    let (credential, _) = app.register_gateway("acme", "edge-1").await;
    app.token_ok(&credential).await;
    browser.sign_in(&app, &app.admin_token).await;
    let env = "/console/orgs/acme/workspaces/main/environments/prod";
    // Token times are written by the housekeeping task (every 10 s).
    let mut fresh = false;
    for _ in 0..30 {
        browser.goto(&app, &format!("{env}?health=fresh")).await;
        if browser.text().await.contains("edge-1") {
            fresh = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(fresh, "the gateway is listed as fresh after it federated");
    clock.advance(25 * 3_600);
    // The session idled out meanwhile: sign in again.
    browser.sign_in(&app, &app.admin_token).await;
    browser.goto(&app, &format!("{env}?health=in_grace")).await;
    let text = browser.text().await;
    assert!(text.contains("edge-1"), "{text}");
    assert!(text.contains("in grace"), "{text}");
    browser.goto(&app, &format!("{env}?health=fresh")).await;
    assert!(browser.text().await.contains("No gateways match."));
    browser.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_in_through_a_stand_in_identity_provider_with_pkce() {
    use crate::idp::{Idp, IdpKey};
    let Some(browser) = browser("sign_in_through_idp").await else {
        return;
    };
    // No fixed issuer: the service's public URL (and so the callback) is its real address.
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.issuer = None;
        settings.oidc.allow_loopback = true;
    })
    .await;
    let key = Arc::new(IdpKey::generate(jsonwebtoken::Algorithm::EdDSA));
    let idp = Idp::start(&[&key]).await;
    crate::oidc::configure(&app, "org-a", &idp, "tenant-a", &["EdDSA"]).await;
    idp.log_in_as(key.clone(), idp.claims("tenant-a", &["readers", "ops"]));
    browser.goto(&app, "/console/sign-in").await;
    browser.fill("idp-org", "org-a").await;
    browser.press("Continue to your identity provider").await;
    let continue_link = browser
        .client
        .find(Locator::Id("idp-continue"))
        .await
        .expect("the link to the identity provider");
    continue_link.click().await.expect("click");
    // The stand-in consents at once and sends the browser back to the callback.
    for _ in 0..100 {
        if browser.path().await == "/console/orgs/org-a" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(browser.path().await, "/console/orgs/org-a");
    let text = browser.text().await;
    assert!(text.contains("user-of-tenant-a"), "{text}");
    // ops maps to operator: no Access link (org admins only).
    assert!(!text.contains("Access"), "{text}");
    browser.finish().await;
}

/// Every visible control of the page has a label (`label for`, an enclosing label or
/// `aria-label`), and every button and link has text or `aria-label`.
async fn assert_labelled(browser: &Browser, page: &str) {
    let unlabelled = browser
        .client
        .execute(
            "var bad = [];\
             document.querySelectorAll('input:not([type=hidden]), select, textarea').forEach(function (e) {\
               var label = (e.id && document.querySelector('label[for=\"' + e.id + '\"]'))\
                 || e.closest('label') || e.getAttribute('aria-label');\
               if (!label) { bad.push(e.outerHTML); }\
             });\
             document.querySelectorAll('button, a').forEach(function (e) {\
               if (!(e.textContent.trim() || e.getAttribute('aria-label'))) { bad.push(e.outerHTML); }\
             });\
             return bad;",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(unlabelled, json!([]), "{page}: controls without a label");
}

/// Whether the page fits the window's width (no sideways scrolling of the page itself).
async fn fits_width(browser: &Browser) -> bool {
    browser
        .client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await
        .expect("script")
        == json!(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_every_control_has_a_label_and_every_page_fits_a_phone() {
    let Some(browser) = browser("phone").await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    acme(&app).await;
    app.register_gateway("acme", "edge-1").await;
    browser.goto(&app, "/console/sign-in").await;
    assert_labelled(&browser, "/console/sign-in").await;
    browser.sign_in(&app, &app.admin_token).await;
    let pages = [
        "/console/orgs",
        "/console/orgs/acme",
        "/console/orgs/acme/fleet",
        "/console/orgs/acme/workspaces/main/environments/prod",
        "/console/orgs/acme/access",
        "/console/orgs/acme/audit",
        "/console/keys",
    ];
    for page in pages {
        browser.goto(&app, page).await;
        assert_labelled(&browser, page).await;
    }
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("a phone-sized window");
    for page in pages {
        browser.goto(&app, page).await;
        assert!(
            fits_width(&browser).await,
            "{page} scrolls sideways on a phone"
        );
    }
    browser
        .goto(&app, "/console/orgs/acme/workspaces/main/environments/prod")
        .await;
    browser.finish().await;
}
