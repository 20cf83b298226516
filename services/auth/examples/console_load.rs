//! The console's latency check (issue 16: every page ≤ 50 ms p99 for an org with 10,000
//! gateways and 100,000 audit entries; not a test — run it in release):
//!
//! ```sh
//! cargo run --release -p mcpg-auth --example console_load -- --requests 200
//! ```
//!
//! It starts the service in-process on SQLite in a temporary data dir (loopback, port 0),
//! builds the org through the API (license, a workspace, an environment, 10,000 gateways in
//! batches), then adds what the API cannot make quickly straight to the database: audit
//! entries up to 100,000 through the store's own append (so the chain stays valid), the
//! gateways' last token times spread over ten days (every health occurs), and 30 days of
//! daily usage rows for every gateway (300,000 rows, what the overview's charts read).
//! Then it signs in to the console and requests each page `--requests` times in a row,
//! and prints one JSON object per page (p50, p99, max in ms). It exits 1 when a page's p99
//! is over `--budget-ms`.

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use mcpg_auth::bench::{AuditAction, DatabaseOptions, Event, Store};
use mcpg_auth::{Application, RateLimitSettings, Settings};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// Requests per page.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Gateways of the org.
    #[arg(long, default_value_t = 10_000)]
    gateways: usize,
    /// Audit entries of the org.
    #[arg(long, default_value_t = 100_000)]
    audit_entries: usize,
    /// The p99 each page must stay under, in milliseconds.
    #[arg(long, default_value_t = 50.0)]
    budget_ms: f64,
}

const ORG: &str = "loadco";

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::with_data_dir(dir.path());
    settings.listen = "127.0.0.1:0".parse()?;
    settings.ops_listen = "127.0.0.1:0".parse()?;
    settings.bootstrap_token_file = Some(dir.path().join("bootstrap.token"));
    settings.rate_limits = RateLimitSettings {
        org_rps: 0,
        admin_rps: 0,
        ..RateLimitSettings::default()
    };
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let token = std::fs::read_to_string(dir.path().join("bootstrap.token"))?
        .trim()
        .to_owned();
    let api = Api {
        client: reqwest::Client::new(),
        base: base.clone(),
        token: token.clone(),
    };
    let started = Instant::now();
    let org_id = seed_api(&api, args.gateways).await?;
    seed_database(&dir.path().join("mcpg.db"), &org_id, args.audit_entries).await?;
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());

    let console = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = sign_in(&console, &base, &token).await?;
    let env = format!("/console/orgs/{ORG}/workspaces/main/environments/prod");
    let pages = [
        "/console/orgs".to_owned(),
        format!("/console/orgs/{ORG}"),
        format!("/console/orgs/{ORG}/fleet"),
        env.clone(),
        format!("{env}?health=lapsed"),
        format!("{env}?health=never"),
        format!("/console/orgs/{ORG}/audit"),
        format!("/console/orgs/{ORG}/audit?after_seq=90000"),
        format!("/console/orgs/{ORG}/audit?action=gateway.register"),
        format!("/console/orgs/{ORG}/audit?action=no.such.action"),
        format!("/console/orgs/{ORG}/access"),
        "/console/keys".to_owned(),
    ];
    let mut over = false;
    for page in &pages {
        let mut millis = Vec::with_capacity(args.requests);
        for _ in 0..args.requests {
            let sent = Instant::now();
            let response = console
                .get(format!("{base}{page}"))
                .header(reqwest::header::COOKIE, &cookie)
                .send()
                .await?;
            let status = response.status();
            response.bytes().await?;
            millis.push(sent.elapsed().as_secs_f64() * 1_000.0);
            anyhow::ensure!(status.is_success(), "{page}: {status}");
        }
        millis.sort_by(f64::total_cmp);
        let p99 = percentile(&millis, 0.99);
        over |= p99 > args.budget_ms;
        println!(
            "{}",
            json!({
                "page": page,
                "requests": args.requests,
                "p50_ms": round(percentile(&millis, 0.50)),
                "p99_ms": round(p99),
                "max_ms": round(millis.last().copied().unwrap_or_default()),
                "within_budget": p99 <= args.budget_ms,
            })
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(if over {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }
}

/// The org, its license, workspace, environment and gateways; returns the org's id.
async fn seed_api(api: &Api, gateways: usize) -> anyhow::Result<String> {
    use reqwest::Method;
    let org = api
        .call(
            Method::POST,
            "/v1/orgs",
            json!({"slug": ORG, "display_name": "Load Co"}),
        )
        .await?;
    let org_id = org["id"].as_str().context("org id")?.to_owned();
    api.call(
        Method::PUT,
        &format!("/v1/orgs/{ORG}/license"),
        json!({"tier": "enterprise", "valid_for_days": 365,
               "limits": {"max_gateways": gateways + 10}}),
    )
    .await?;
    api.call(
        Method::POST,
        &format!("/v1/orgs/{ORG}/workspaces"),
        json!({"slug": "main"}),
    )
    .await?;
    api.call(
        Method::POST,
        &format!("/v1/orgs/{ORG}/workspaces/main/environments"),
        json!({"slug": "prod"}),
    )
    .await?;
    let batch = format!("/v1/orgs/{ORG}/workspaces/main/environments/prod/gateways/batch");
    for start in (0..gateways).step_by(1_000) {
        let names: Vec<Value> = (start..(start + 1_000).min(gateways))
            .map(|n| json!({"name": format!("edge-{n:05}")}))
            .collect();
        api.call(Method::POST, &batch, json!({"gateways": names}))
            .await?;
    }
    Ok(org_id)
}

/// Audit entries up to `entries` (through the store's append, so the chain verifies),
/// last token times over ten days (every health, a tenth never federated), and 30 days of
/// usage rows for every gateway.
async fn seed_database(path: &std::path::Path, org_id: &str, entries: usize) -> anyhow::Result<()> {
    let store = Store::connect(&DatabaseOptions::default(), path).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let tenant = store.tenant(org_id);
    let existing = tenant
        .append_audit(
            &[Event::new(
                AuditAction::WorkspaceCreate,
                "load/seed",
                json!({}),
            )],
            now,
        )
        .await? as usize;
    let mut written = existing;
    while written < entries {
        let n = (entries - written).min(1_000);
        let events: Vec<Event> = (0..n)
            .map(|i| {
                Event::new(
                    AuditAction::WorkspaceCreate,
                    format!("load/ws-{}", written + i),
                    json!({"n": written + i}),
                )
            })
            .collect();
        tenant.append_audit(&events, now).await?;
        written += n;
    }
    store.close().await;

    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await?;
    sqlx::query(
        "UPDATE gateways SET last_token_at = CASE WHEN abs(random()) % 10 = 0 THEN NULL \
         ELSE $1 - abs(random()) % (10 * 86400) END WHERE org_id = $2",
    )
    .bind(now)
    .bind(org_id)
    .execute(&pool)
    .await?;
    let mut tx = pool.begin().await?;
    for back in 0..30_i64 {
        let day = mcpg_license_core::clock::to_rfc3339(now - back * 86_400)[..10].to_owned();
        sqlx::query(
            "INSERT INTO usage_gateway_days (org_id, day, gateway_id, workspace, environment, \
             tokens, hours, days) SELECT org_id, $1, id, 'main', 'prod', 3, 7, 1 \
             FROM gateways WHERE org_id = $2",
        )
        .bind(&day)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    pool.close().await;
    Ok(())
}

/// Signs in to the console; returns the `Cookie` header of the session.
async fn sign_in(client: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<String> {
    let form = client.get(format!("{base}/console/sign-in")).send().await?;
    let cookie = form
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("sign-in cookie")?
        .to_owned();
    let body = form.text().await?;
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).context("csrf field")? + marker.len();
    let csrf = &body[start..start + body[start..].find('"').context("csrf end")?];
    let signed_in = client
        .post(format!("{base}/console/sign-in"))
        .header(reqwest::header::COOKIE, cookie)
        .form(&[("csrf", csrf), ("token", token)])
        .send()
        .await?;
    let session = signed_in
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("mcpg_console="))
        .and_then(|v| v.split(';').next())
        .context("session cookie")?
        .to_owned();
    Ok(session)
}
