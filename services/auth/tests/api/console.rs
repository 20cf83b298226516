//! The operator console over plain HTTP (the browser tests are in `console_browser`):
//! sessions, CSRF, the security headers, and that pages do exactly what the API lets the
//! same caller do.

use std::collections::BTreeMap;
use std::sync::Arc;

use mcpg_license_core::ManualClock;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    Backend, TestApp, now, on_both_backends, spawn_app, spawn_app_on_clock, spawn_app_with,
};
use crate::rbac::{grant, user_token};

on_both_backends!(
    signing_in_with_a_token_opens_a_session_that_signing_out_ends,
    on_https_every_console_cookie_is_host_only_and_secure,
    revoking_the_token_ends_its_sessions,
    a_viewer_sees_no_mutating_control_and_a_forged_post_is_refused,
    forms_create_the_fleet_and_show_the_credential_once,
    the_access_page_grants_roles_and_issues_tokens_shown_once,
    the_overview_charts_tokens_and_active_gateways_per_day,
    the_vendor_sees_keys_and_trust_and_starts_a_rotation,
    signing_in_through_the_orgs_identity_provider_checks_pkce_state_and_nonce,
);

/// A browser without a browser: keeps the console's cookies, follows no redirect.
pub struct Console {
    base: String,
    client: reqwest::Client,
    /// The cookies the console set, by name.
    pub cookies: BTreeMap<String, String>,
}

/// An answer: status, headers and body text.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// Where a redirect points.
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a CSRF token") + marker.len();
        let end = self.body[start..].find('"').expect("end of the value") + start;
        self.body[start..end].to_owned()
    }
}

impl Console {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.address.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if cookie.is_empty() {
            request
        } else {
            request.header(reqwest::header::COOKIE, cookie)
        };
        let response = request.send().await.expect("request sent");
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().expect("cookie text");
            let pair = text.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("name=value");
            if text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Starts a sign-in through `org`'s identity provider and follows the provider's
    /// redirect; returns the path and query of the console's callback.
    pub async fn through_idp(&mut self, org: &str) -> String {
        let form = self.get("/console/sign-in").await;
        let started = self
            .post(
                "/console/sign-in/idp",
                &[("csrf", &form.csrf()), ("org", org)],
            )
            .await;
        assert_eq!(started.status, StatusCode::OK, "{}", started.body);
        let marker = "id=\"idp-continue\" class=\"button\" href=\"";
        let at = started.body.find(marker).expect("the link to the IdP") + marker.len();
        let end = started.body[at..].find('"').expect("end of the link") + at;
        let link = started.body[at..end].replace("&amp;", "&");
        let at_idp = self
            .client
            .get(link)
            .send()
            .await
            .expect("the identity provider answers");
        assert!(at_idp.status().is_redirection(), "{}", at_idp.status());
        let back = at_idp.headers()[LOCATION].to_str().expect("location");
        let back = reqwest::Url::parse(back).expect("callback URL");
        assert_eq!(back.path(), "/console/oidc/callback");
        format!("{}?{}", back.path(), back.query().unwrap_or_default())
    }

    /// Signs in with `token`; returns the answer to the form.
    pub async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        self.post("/console/sign-in", &[("csrf", &csrf), ("token", token)])
            .await
    }
}

/// Org `acme` (Enterprise, 30 days) with workspace `main` and environment `prod`.
async fn acme(app: &TestApp) {
    app.create_org("acme").await;
    app.set_license("acme", json!({"tier": "enterprise", "valid_for_days": 30}))
        .await;
    app.expect(
        Method::POST,
        "/v1/orgs/acme/workspaces",
        Some(json!({"slug": "main"})),
        StatusCode::CREATED,
    )
    .await;
    app.expect(
        Method::POST,
        "/v1/orgs/acme/workspaces/main/environments",
        Some(json!({"slug": "prod"})),
        StatusCode::CREATED,
    )
    .await;
}

async fn signing_in_with_a_token_opens_a_session_that_signing_out_ends(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut console = Console::new(&app);
    let page = console.get("/console/orgs").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/console/sign-in");

    let refused = console.sign_in("mcpg_pat_not-a-real-token").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("unauthenticated"), "{}", refused.body);
    assert!(!console.cookies.contains_key("mcpg_console"));

    let signed_in = console.sign_in(&app.admin_token).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location(), "/console/orgs");
    let cookie = signed_in
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("mcpg_console="))
        .expect("a session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(
        !cookie.contains("Secure"),
        "the test issuer is http, so the cookie cannot be Secure"
    );
    let session = console.cookies["mcpg_console"].clone();
    assert!(session.len() >= 43, "256 random bits");

    let orgs = console.get("/console/orgs").await;
    assert_eq!(orgs.status, StatusCode::OK);
    assert!(orgs.body.contains("Organizations"));
    let csp = orgs.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert_eq!(
        csp,
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(orgs.headers["referrer-policy"], "no-referrer");
    assert_eq!(orgs.headers["x-content-type-options"], "nosniff");
    assert_eq!(orgs.headers["cache-control"], "no-store");
    assert!(!orgs.body.contains("<script>"), "no inline script");
    assert!(!orgs.body.contains("style="), "no inline style");

    let csrf = orgs.csrf();
    let out = console.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!console.cookies.contains_key("mcpg_console"));
    // The old cookie, replayed, opens nothing: the session is gone from the database.
    console.cookies.insert("mcpg_console".into(), session);
    let replayed = console.get("/console/orgs").await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER);
    assert_eq!(replayed.location(), "/console/sign-in");
    // A path under the prefix that names no page is a page too, with the API's code.
    let missing = console.get("/console/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("not_found"), "{}", missing.body);
    assert!(
        missing.body.contains("<h1>Refused</h1>"),
        "{}",
        missing.body
    );
    assert!(missing.headers.contains_key("content-security-policy"));
}

async fn on_https_every_console_cookie_is_host_only_and_secure(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.issuer = Some("https://auth.example.test".to_owned());
    })
    .await;
    let mut console = Console::new(&app);
    let form = console.get("/console/sign-in").await;
    let set: Vec<String> = form
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect();
    assert!(!set.is_empty());
    for cookie in &set {
        assert!(cookie.starts_with("__Host-"), "{cookie}");
        assert!(
            cookie.contains("; Path=/;") && cookie.ends_with("; Secure"),
            "{cookie}"
        );
    }
    // The whole sign-in works under the prefixed names, and an unprefixed cookie, as a
    // sibling subdomain could set, opens nothing.
    let signed_in = console.sign_in(&app.admin_token).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let session = console.cookies["__Host-mcpg_console"].clone();
    assert_eq!(console.get("/console/orgs").await.status, StatusCode::OK);
    console.cookies.clear();
    console.cookies.insert("mcpg_console".into(), session);
    let planted = console.get("/console/orgs").await;
    assert_eq!(planted.status, StatusCode::SEE_OTHER);
    assert_eq!(planted.location(), "/console/sign-in");
}

async fn revoking_the_token_ends_its_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    acme(&app).await;
    grant(&app, "acme", "alice@acme.com", "admin", json!({})).await;
    let token = user_token(&app, "acme", "alice@acme.com").await;
    let mut console = Console::new(&app);
    let signed_in = console.sign_in(&token).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    // A single-org caller lands on the org.
    let home = console.get("/console/orgs").await;
    assert_eq!(home.location(), "/console/orgs/acme");
    let overview = console.get("/console/orgs/acme").await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.body.contains("enterprise"));

    let listed = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/users/alice@acme.com/tokens",
            None,
            StatusCode::OK,
        )
        .await;
    let id = listed[0]["id"].as_str().expect("token id");
    app.expect(
        Method::DELETE,
        &format!("/v1/orgs/acme/users/alice@acme.com/tokens/{id}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let after = console.get("/console/orgs/acme").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location(), "/console/sign-in");
}

async fn a_viewer_sees_no_mutating_control_and_a_forged_post_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    acme(&app).await;
    app.register_gateway("acme", "edge-1").await;
    let binding = grant(
        &app,
        "acme",
        "vera@acme.com",
        "viewer",
        json!({"workspace": "main", "environment": "prod"}),
    )
    .await;
    assert_eq!(binding["role"], "viewer", "{binding}");
    let token = user_token(&app, "acme", "vera@acme.com").await;
    let mut console = Console::new(&app);
    console.sign_in(&token).await;

    let fleet = console.get("/console/orgs/acme/fleet").await;
    assert_eq!(fleet.status, StatusCode::OK, "{}", fleet.body);
    assert!(fleet.body.contains("main › prod"));
    let env = console
        .get("/console/orgs/acme/workspaces/main/environments/prod")
        .await;
    assert_eq!(env.status, StatusCode::OK);
    assert!(env.body.contains("edge-1"));
    for page in [&fleet, &env] {
        for control in [
            "Create workspace",
            "Create environment",
            "Register gateway",
            "Revoke",
        ] {
            assert!(!page.body.contains(control), "a viewer sees {control:?}");
        }
        // The only POST form a viewer gets is signing out.
        assert_eq!(page.body.matches("method=\"post\"").count(), 1);
    }
    let overview = console.get("/console/orgs/acme").await;
    assert!(
        !overview.body.contains("/access\""),
        "no Access link for a viewer"
    );
    assert_eq!(
        console.get("/console/orgs/acme/access").await.status,
        StatusCode::FORBIDDEN
    );
    assert!(!overview.body.contains("Suspend organization"));
    assert!(!overview.body.contains("Set license"));

    let csrf = env.csrf();
    let forged = console
        .post(
            "/console/orgs/acme/workspaces/main/environments/prod/gateways",
            &[("csrf", &csrf), ("name", "sneaky")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("forbidden"), "{}", forged.body);
    let forged = console
        .post(
            "/console/orgs/acme/status",
            &[("csrf", &csrf), ("status", "suspended")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let gateways = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/workspaces/main/environments/prod/gateways",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(gateways.as_array().map(Vec::len), Some(1), "{gateways}");
    // Another org is the same 404 as one that does not exist.
    app.create_org("other").await;
    let hidden = console.get("/console/orgs/other").await;
    let missing = console.get("/console/orgs/nowhere").await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(hidden.body.contains("not_found"));
}

async fn forms_create_the_fleet_and_show_the_credential_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_org("acme").await;
    app.set_license("acme", json!({"tier": "enterprise", "valid_for_days": 30}))
        .await;
    let mut console = Console::new(&app);
    console.sign_in(&app.admin_token).await;
    let fleet = console.get("/console/orgs/acme/fleet").await;
    let csrf = fleet.csrf();
    let created = console
        .post(
            "/console/orgs/acme/workspaces",
            &[("csrf", &csrf), ("slug", "main")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let created = console
        .post(
            "/console/orgs/acme/workspaces/main/environments",
            &[("csrf", &csrf), ("slug", "prod")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let garbled = console.get("/console/orgs/acme/audit?after_seq=abc").await;
    assert_eq!(garbled.status, StatusCode::BAD_REQUEST);
    assert!(
        garbled.body.contains("invalid_request"),
        "a page, not axum's text"
    );
    let bad = console
        .post(
            "/console/orgs/acme/workspaces",
            &[("csrf", &csrf), ("slug", "Not A Slug")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("invalid_request"));

    let env_path = "/console/orgs/acme/workspaces/main/environments/prod";
    let registered = console
        .post(
            &format!("{env_path}/gateways"),
            &[("csrf", &csrf), ("name", "edge-1")],
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.body
    );
    assert_eq!(registered.headers["cache-control"], "no-store");
    let start = registered
        .body
        .find("mcpg_gw_")
        .expect("the credential, shown once");
    let end = registered.body[start..]
        .find('"')
        .expect("end of the value")
        + start;
    let credential = registered.body[start..end].to_owned();
    app.token_ok(&credential).await;

    let listed = console.get(env_path).await;
    assert!(listed.body.contains("edge-1"));
    assert!(
        !listed.body.contains(&credential),
        "the credential is shown once only"
    );

    // Without the session's CSRF token, or with another, a POST changes nothing.
    let no_csrf = console
        .post(&format!("{env_path}/gateways"), &[("name", "edge-2")])
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let wrong = console
        .post(
            &format!("{env_path}/gateways"),
            &[
                ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                ("name", "edge-2"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.body.contains("CSRF"));
    let gateways = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/workspaces/main/environments/prod/gateways",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(gateways.as_array().map(Vec::len), Some(1), "{gateways}");

    // The audit page filters by action and by day, and verifies the chain.
    let today = &mcpg_license_core::clock::to_rfc3339(now())[..10];
    let registered = console
        .get(&format!(
            "/console/orgs/acme/audit?action=gateway.register&since={today}&until={today}"
        ))
        .await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.body);
    assert!(registered.body.contains("<td>gateway.register</td>"));
    assert!(!registered.body.contains("<td>workspace.create</td>"));
    let yesterday = &mcpg_license_core::clock::to_rfc3339(now() - 86_400)[..10];
    let none = console
        .get(&format!("/console/orgs/acme/audit?until={yesterday}"))
        .await;
    assert!(none.body.contains("No entries match."), "{}", none.body);
    let verified = console
        .post("/console/orgs/acme/audit/verify", &[("csrf", &csrf)])
        .await;
    assert_eq!(verified.status, StatusCode::OK);
    assert!(
        verified.body.contains("The chain verifies."),
        "{}",
        verified.body
    );

    // Revoking through the form ends the credential.
    let id = gateways[0]["id"].as_str().expect("id");
    let revoked = console
        .post(
            &format!("{env_path}/gateways/{id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let (status, _) = app.token(&credential).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_idle_and_at_their_absolute_timeout() {
    let clock = Arc::new(ManualClock::new(now()));
    let app = spawn_app_on_clock(Backend::Sqlite, clock.clone()).await;
    let mut console = Console::new(&app);
    console.sign_in(&app.admin_token).await;
    clock.advance(29 * 60);
    assert_eq!(console.get("/console/orgs").await.status, StatusCode::OK);
    clock.advance(31 * 60);
    let idle = console.get("/console/orgs").await;
    assert_eq!(idle.location(), "/console/sign-in", "idle for 31 minutes");

    console.sign_in(&app.admin_token).await;
    // Busy all along: a request every 20 minutes for 12 hours.
    for _ in 0..35 {
        clock.advance(20 * 60);
        assert_eq!(console.get("/console/orgs").await.status, StatusCode::OK);
    }
    clock.advance(20 * 60);
    let ended = console.get("/console/orgs").await;
    assert_eq!(
        ended.location(),
        "/console/sign-in",
        "12 hours after sign-in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_form_needs_its_own_csrf_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut console = Console::new(&app);
    let refused = console
        .post(
            "/console/sign-in",
            &[("csrf", "guess"), ("token", app.admin_token.as_str())],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!console.cookies.contains_key("mcpg_console"));
    let assets = console.get("/console/assets/console.js").await;
    assert_eq!(assets.status, StatusCode::OK);
    assert!(
        assets.headers["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/javascript")
    );
    assert!(assets.headers.contains_key("content-security-policy"));
}

async fn the_access_page_grants_roles_and_issues_tokens_shown_once(backend: Backend) {
    let app = spawn_app(backend).await;
    acme(&app).await;
    let mut console = Console::new(&app);
    console.sign_in(&app.admin_token).await;
    let page = console.get("/console/orgs/acme/access").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = page.csrf();
    let granted = console
        .post(
            "/console/orgs/acme/access/bindings",
            &[
                ("csrf", &csrf),
                ("email", "Bob@Acme.com"),
                ("role", "viewer"),
                ("workspace", "main"),
                ("environment", "prod"),
            ],
        )
        .await;
    assert_eq!(granted.status, StatusCode::SEE_OTHER, "{}", granted.body);
    let wrong_scope = console
        .post(
            "/console/orgs/acme/access/bindings",
            &[("csrf", &csrf), ("email", "c@acme.com"), ("role", "viewer")],
        )
        .await;
    assert_eq!(wrong_scope.status, StatusCode::BAD_REQUEST);
    assert!(wrong_scope.body.contains("invalid_request"));

    let issued = console
        .post(
            "/console/orgs/acme/access/tokens",
            &[
                ("csrf", &csrf),
                ("email", "bob@acme.com"),
                ("name", "laptop"),
            ],
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    let start = issued
        .body
        .find("mcpg_pat_")
        .expect("the token, shown once");
    let end = issued.body[start..].find('"').expect("end") + start;
    let token = issued.body[start..end].to_owned();
    let gateways = "/v1/orgs/acme/workspaces/main/environments/prod/gateways";
    let (status, _) = crate::rbac::call(&app, &token, Method::GET, gateways, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the viewer binding and the token work"
    );

    let listed = console
        .get("/console/orgs/acme/access?tokens_of=bob%40acme.com")
        .await;
    assert!(listed.body.contains("laptop"));
    assert!(
        !listed.body.contains(&token),
        "a listing never shows the token"
    );
    let id_marker = "name=\"id\" value=\"";
    let at = listed.body.find(id_marker).expect("a revoke form") + id_marker.len();
    let id = listed.body[at..at + listed.body[at..].find('"').expect("end")].to_owned();
    let revoked = console
        .post(
            "/console/orgs/acme/access/tokens/revoke",
            &[("csrf", &csrf), ("email", "bob@acme.com"), ("id", &id)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let (status, _) = crate::rbac::call(&app, &token, Method::GET, gateways, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let removed = console
        .post(
            "/console/orgs/acme/access/bindings/revoke",
            &[
                ("csrf", &csrf),
                ("email", "bob@acme.com"),
                ("role", "viewer"),
                ("workspace", "main"),
                ("environment", "prod"),
            ],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    let bindings = app
        .expect(
            Method::GET,
            "/v1/orgs/acme/rbac/bindings",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(bindings.as_array().map(Vec::len), Some(0), "{bindings}");
}

async fn the_overview_charts_tokens_and_active_gateways_per_day(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.usage_flush_interval = std::time::Duration::from_millis(50);
    })
    .await;
    acme(&app).await;
    for name in ["edge-1", "edge-2"] {
        let (credential, _) = app.register_gateway("acme", name).await;
        app.token_ok(&credential).await;
        app.token_ok(&credential).await;
    }
    let mut console = Console::new(&app);
    console.sign_in(&app.admin_token).await;
    let mut charted = String::new();
    for _ in 0..100 {
        charted = console.get("/console/orgs/acme").await.body;
        if charted.contains("As a table (4 in all)") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(charted.contains("Tokens per day"), "{charted}");
    assert!(
        charted.contains("As a table (4 in all)"),
        "4 tokens: {charted}"
    );
    assert!(
        charted.contains("As a table (2 in all)"),
        "2 active gateways: {charted}"
    );
    assert!(charted.contains("<svg"), "drawn on the server");
    assert!(charted.contains("Gateways: 2 of unlimited"), "{charted}");
}

async fn the_vendor_sees_keys_and_trust_and_starts_a_rotation(backend: Backend) {
    // The rotated key must still be pending when the page is read again: the tests'
    // default publish delay (1 s) can pass first on a loaded machine.
    let app = spawn_app_with(backend, |settings| {
        settings.key_publish_delay = std::time::Duration::from_secs(300);
    })
    .await;
    let keys = app
        .expect(Method::GET, "/v1/admin/keys", None, StatusCode::OK)
        .await;
    let active = keys[0]["kid"].as_str().expect("kid").to_owned();
    let mut console = Console::new(&app);
    console.sign_in(&app.admin_token).await;
    let page = console.get("/console/keys").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(&active));
    assert!(page.body.contains("No revocation list uploaded."));
    let rotated = console
        .post("/console/keys/rotate", &[("csrf", &page.csrf())])
        .await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER, "{}", rotated.body);
    let keys = app
        .expect(Method::GET, "/v1/admin/keys", None, StatusCode::OK)
        .await;
    assert_eq!(keys.as_array().map(Vec::len), Some(2), "{keys}");
    assert!(console.get("/console/keys").await.body.contains("pending"));

    acme(&app).await;
    grant(&app, "acme", "alice@acme.com", "admin", json!({})).await;
    let token = user_token(&app, "acme", "alice@acme.com").await;
    let mut org_admin = Console::new(&app);
    org_admin.sign_in(&token).await;
    let refused = org_admin.get("/console/keys").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("forbidden"));
    let overview = org_admin.get("/console/orgs/acme").await;
    assert!(
        !overview.body.contains("/console/keys"),
        "no Keys link for an org admin"
    );
}

async fn signing_in_through_the_orgs_identity_provider_checks_pkce_state_and_nonce(
    backend: Backend,
) {
    use crate::idp::{Idp, IdpKey};
    let app = spawn_app_with(backend, |settings| settings.oidc.allow_loopback = true).await;
    let key = Arc::new(IdpKey::generate(jsonwebtoken::Algorithm::EdDSA));
    let idp = Idp::start(&[&key]).await;
    crate::oidc::configure(&app, "org-a", &idp, "tenant-a", &["EdDSA"]).await;
    idp.log_in_as(key.clone(), idp.claims("tenant-a", &["admins"]));

    let mut console = Console::new(&app);
    let callback = console.through_idp("org-a").await;
    assert!(callback.contains("code=") && callback.contains("state="));
    let done = console.get(&callback).await;
    // A page that moves on, not a redirect: the IdP's cross-site navigation would not
    // carry the new SameSite=Strict cookie.
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body
            .contains("http-equiv=\"refresh\" content=\"0;url=/console/orgs\"")
    );
    assert!(console.cookies.contains_key("mcpg_console"));
    assert!(
        !console.cookies.contains_key("mcpg_console_idp"),
        "the flight cookie is spent"
    );
    assert_eq!(
        console.get("/console/orgs").await.location(),
        "/console/orgs/org-a"
    );
    let overview = console.get("/console/orgs/org-a").await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
    assert!(
        overview.body.contains("user-of-tenant-a"),
        "the IdP's subject signs"
    );
    // The mapped role is the org admin's: the Access page is open.
    assert_eq!(
        console.get("/console/orgs/org-a/access").await.status,
        StatusCode::OK
    );
    // The callback once more: the flight is over, and the code was redeemed.
    let replayed = console.get(&callback).await;
    assert_eq!(replayed.status, StatusCode::FORBIDDEN);

    // A callback whose state is not the one this browser sent is refused.
    let mut other = Console::new(&app);
    let callback = other.through_idp("org-a").await;
    let forged = callback.replace("state=", "state=x");
    assert_eq!(other.get(&forged).await.status, StatusCode::FORBIDDEN);
    assert!(!other.cookies.contains_key("mcpg_console"));

    // A user whose role claim maps to nothing here is refused.
    idp.log_in_as(key.clone(), idp.claims("tenant-a", &["nobody"]));
    let mut unmapped = Console::new(&app);
    let callback = unmapped.through_idp("org-a").await;
    let refused = unmapped.get(&callback).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("maps to no role"), "{}", refused.body);

    // A user of another IdP tenant is not a user of this org.
    idp.log_in_as(key.clone(), idp.claims("tenant-b", &["admins"]));
    let mut stranger = Console::new(&app);
    let callback = stranger.through_idp("org-a").await;
    assert_eq!(
        stranger.get(&callback).await.status,
        StatusCode::UNAUTHORIZED
    );

    // An org without an identity provider, and no org at all: the same refusal.
    app.create_org("plain").await;
    for org in ["plain", "nowhere"] {
        let mut console = Console::new(&app);
        let form = console.get("/console/sign-in").await;
        let refused = console
            .post(
                "/console/sign-in/idp",
                &[("csrf", &form.csrf()), ("org", org)],
            )
            .await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{org}");
        assert!(
            refused
                .body
                .contains("identity provider for this organization not found")
        );
    }

    // Removing the org's identity provider ends the sessions opened through it.
    app.expect(Method::DELETE, "/v1/orgs/org-a/oidc", None, StatusCode::OK)
        .await;
    let ended = console.get("/console/orgs/org-a").await;
    assert_eq!(ended.location(), "/console/sign-in");
}
