//! The refresh storm's simulator (`bench/storm.sh`; not a test).
//!
//! A fleet returns to `mcpg-auth` after the service was down for a day. Each simulated
//! gateway follows `mcpg-entitlements`' own retry rules — the library's
//! [`mcpg_entitlements::schedule::backoff`] is called, not re-implemented: full-jitter
//! exponential backoff from 30 s to 30 min after each failure, and a server's
//! `Retry-After` honoured within the same bounds.
//!
//! The clock: the day of outage is simulated, not waited for. Nothing reaches the service
//! while it is down, so each gateway's failures during the day are drawn from the backoff
//! (its first failing refresh uniformly within the 8 hours before the outage began, then
//! retry after retry until one falls after the return): what the day leaves behind is
//! each gateway's failure count and the time of its first attempt after the return. From
//! the return on, everything runs in real time against the real service, whose rate limits
//! run in real time too, so the drain time is measured, not scaled.
//!
//! `--mode spread` starts every gateway at its simulated first attempt (the fleet as the
//! backoff leaves it); `--mode together` sends every gateway's first attempt at the
//! return (the worst case: a fleet restarted at once, or a network partition healing in
//! front of gateways that all queued their attempt). A 200 makes a gateway fresh; it asks
//! no more in this run (its next refresh is 8 h away).
//!
//! Beside the storm, a quiet org's gateway asks for tokens at `--quiet-rate` per second and
//! a probe reads `/readyz` at `--probe-rate`, each on its own connection, latencies from
//! the scheduled time (no coordinated omission).
//!
//! Prints one JSON object (time until every gateway is fresh, per org group; the peak of
//! 429s per second; statuses; the quiet org's and the probe's latencies) and writes a
//! per-second timeline to `--timeline` (CSV).

#[path = "common/mod.rs"]
mod common;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use common::{Target, duration, latency_summary, load_credentials, send_on};
use mcpg_entitlements::schedule::{Backoff, backoff};
use tokio::sync::{Mutex, mpsc};

#[derive(Parser)]
struct Args {
    /// The service, `http://HOST:PORT`.
    #[arg(long)]
    url: String,
    /// The fleet: JSON lines with `credential` and `org`.
    #[arg(long)]
    fleet: std::path::PathBuf,
    /// A gateway of an org that is not part of the storm.
    #[arg(long)]
    quiet_credential: String,
    /// The quiet gateway's token requests per second.
    #[arg(long, default_value_t = 20)]
    quiet_rate: u64,
    /// `/readyz` probes per second.
    #[arg(long, default_value_t = 10)]
    probe_rate: u64,
    /// How the fleet's first attempts after the return are spread.
    #[arg(long, value_enum, default_value_t = Mode::Together)]
    mode: Mode,
    /// How long the service was down (simulated).
    #[arg(long, default_value = "1d")]
    outage: String,
    /// Requests in flight at once (keep-alive connections of the fleet).
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Give up after this long (real time).
    #[arg(long, default_value = "20m")]
    max_time: String,
    /// Seed of the simulation's randomness.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Per-second timeline (CSV).
    #[arg(long)]
    timeline: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Together,
    Spread,
}

/// The refresh interval before the outage (`rfa` is 8 h after issue).
const REFRESH_INTERVAL_S: u64 = 8 * 3600;

struct Gateway {
    authorization: String,
    group: usize,
    steps: Backoff,
}

/// Where each gateway's first attempt after the return falls (milliseconds after it), how
/// many failures it has behind it and its backoff's state, per the library's backoff.
fn after_the_outage(outage: Duration, rng: &mut fastrand::Rng) -> (u64, u32, Backoff) {
    let outage_ms = outage.as_millis() as i64;
    // The first refresh to fail: uniformly within the refresh interval before the outage
    // began, or (a short outage) within it.
    let mut at = -outage_ms
        + rng
            .i64(0..(REFRESH_INTERVAL_S as i64 * 1000))
            .min(outage_ms);
    let mut failures = 0u32;
    let mut steps = Backoff::default();
    while at < 0 {
        failures += 1;
        at += backoff(steps.fail(None), None, rng).as_millis() as i64;
    }
    (at as u64, failures, steps)
}

/// What a request's answer does to the simulation.
struct Outcome {
    gateway: usize,
    at_ms: u64,
    status: Option<u16>,
    retry_after: Option<u64>,
}

#[derive(Default, Clone)]
struct Second {
    ok: u64,
    limited: u64,
    server_errors: u64,
    other: u64,
    errors: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let base = Target::parse(&args.url)?;
    let token = Arc::new(base.with_path("/v1/federation/token"));
    let outage = duration(&args.outage)?;
    let max_time = duration(&args.max_time)?;
    let mut rng = fastrand::Rng::with_seed(args.seed);

    let mut groups: Vec<String> = Vec::new();
    let mut gateways = Vec::new();
    let mut due = BinaryHeap::new();
    let mut failures_at_return = Vec::new();
    for (object, authorization) in load_credentials(&args.fleet, None)? {
        let org = object["org"]
            .as_str()
            .context("a fleet line without org")?
            .to_owned();
        let group = match groups.iter().position(|g| *g == org) {
            Some(i) => i,
            None => {
                groups.push(org);
                groups.len() - 1
            }
        };
        let (first_ms, failures, steps) = after_the_outage(outage, &mut rng);
        failures_at_return.push(failures);
        let first_ms = match args.mode {
            Mode::Together => 0,
            Mode::Spread => first_ms,
        };
        due.push(Reverse((first_ms, gateways.len())));
        gateways.push(Gateway {
            authorization,
            group,
            steps,
        });
    }
    let total = gateways.len();
    let gateways = Arc::new(Mutex::new(gateways));

    // The fleet's connections: workers taking (gateway, authorization) jobs.
    let start = Instant::now();
    let (jobs, job_queue) = mpsc::channel::<(usize, String)>(args.concurrency);
    let job_queue = Arc::new(Mutex::new(job_queue));
    let (outcomes, mut outcome_queue) = mpsc::unbounded_channel::<Outcome>();
    for _ in 0..args.concurrency {
        let job_queue = job_queue.clone();
        let outcomes = outcomes.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let mut sender = None;
            loop {
                let Some((gateway, authorization)) = job_queue.lock().await.recv().await else {
                    return;
                };
                let answer = send_on(&mut sender, &token, Some(&authorization)).await;
                let outcome = Outcome {
                    gateway,
                    at_ms: start.elapsed().as_millis() as u64,
                    status: answer.as_ref().map(|a| a.status),
                    retry_after: answer.and_then(|a| a.retry_after),
                };
                if outcomes.send(outcome).is_err() {
                    return;
                }
            }
        });
    }
    drop(outcomes);

    // The quiet org and the probe, on their own connections, until the storm is over.
    let over = Arc::new(AtomicBool::new(false));
    let quiet = tokio::spawn(steady(
        token.clone(),
        Some(format!("Bearer {}", args.quiet_credential)),
        args.quiet_rate,
        start,
        over.clone(),
    ));
    let probe = tokio::spawn(steady(
        Arc::new(base.with_path("/readyz")),
        None,
        args.probe_rate,
        start,
        over.clone(),
    ));

    // The dispatcher: sends what is due, reschedules what was refused.
    let mut seconds: Vec<Second> = Vec::new();
    let mut fresh_at: Vec<Option<u64>> = vec![None; total];
    let mut fresh = 0usize;
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut in_flight = 0usize;
    while fresh < total && start.elapsed() < max_time && (in_flight > 0 || !due.is_empty()) {
        let now_ms = start.elapsed().as_millis() as u64;
        while in_flight < args.concurrency {
            match due.peek() {
                Some(Reverse((at, _))) if *at <= now_ms => {}
                _ => break,
            }
            let Some(Reverse((_, gateway))) = due.pop() else {
                break;
            };
            let authorization = gateways.lock().await[gateway].authorization.clone();
            jobs.send((gateway, authorization)).await?;
            in_flight += 1;
        }
        let wake = due
            .peek()
            .map(|Reverse((at, _))| start + Duration::from_millis(*at))
            .unwrap_or(start + max_time)
            .min(start + max_time);
        let outcome = tokio::select! {
            outcome = outcome_queue.recv() => outcome,
            _ = tokio::time::sleep_until(wake.into()), if in_flight < args.concurrency => continue,
        };
        let Some(outcome) = outcome else { break };
        in_flight -= 1;
        let second = (outcome.at_ms / 1000) as usize;
        if seconds.len() <= second {
            seconds.resize(second + 1, Second::default());
        }
        let tally = &mut seconds[second];
        let key = outcome
            .status
            .map_or_else(|| "error".to_owned(), |s| s.to_string());
        *statuses.entry(key).or_default() += 1;
        match outcome.status {
            Some(200) => {
                tally.ok += 1;
                fresh_at[outcome.gateway] = Some(outcome.at_ms);
                fresh += 1;
                continue;
            }
            Some(429) => tally.limited += 1,
            Some(s) if s >= 500 => tally.server_errors += 1,
            Some(_) => tally.other += 1,
            None => tally.errors += 1,
        }
        if matches!(outcome.status, Some(s) if s != 429 && s < 500) {
            continue; // refused for good (a revoked credential): not part of a storm
        }
        let mut gateways = gateways.lock().await;
        let gateway = &mut gateways[outcome.gateway];
        let retry_after = outcome.retry_after.map(Duration::from_secs);
        let wait = backoff(gateway.steps.fail(retry_after), retry_after, &mut rng);
        due.push(Reverse((
            outcome.at_ms + wait.as_millis() as u64,
            outcome.gateway,
        )));
    }
    drop(jobs);
    let elapsed = start.elapsed();
    over.store(true, Ordering::Relaxed);

    let gateways = gateways.lock().await;
    let mut per_group: BTreeMap<&str, (usize, usize, u64)> = BTreeMap::new();
    for (i, gateway) in gateways.iter().enumerate() {
        let entry = per_group.entry(groups[gateway.group].as_str()).or_default();
        entry.0 += 1;
        if let Some(at) = fresh_at[i] {
            entry.1 += 1;
            entry.2 = entry.2.max(at);
        }
    }
    // Orgs of the same size are one line: "100 orgs of 500 gateways".
    let mut by_size: BTreeMap<usize, (usize, usize, u64)> = BTreeMap::new();
    for (size, done, last) in per_group.values() {
        let entry = by_size.entry(*size).or_default();
        entry.0 += 1;
        entry.1 += done;
        entry.2 = entry.2.max(*last);
    }
    let sizes: Vec<serde_json::Value> = by_size
        .iter()
        .rev()
        .map(|(size, (orgs, done, last))| {
            serde_json::json!({
                "orgs": orgs, "gateways_per_org": size, "fresh": done,
                "all_fresh_after_s": (*done == orgs * size).then_some(*last as f64 / 1000.0),
            })
        })
        .collect();
    let peak_429 = seconds.iter().map(|s| s.limited).max().unwrap_or(0);
    let server_errors: u64 = seconds.iter().map(|s| s.server_errors).sum();
    let mut failures = failures_at_return;
    failures.sort_unstable();
    let (quiet, probe) = (quiet.await?, probe.await?);
    let summary = serde_json::json!({
        "mode": match args.mode { Mode::Together => "together", Mode::Spread => "spread" },
        "gateways": total,
        "fresh": fresh,
        "all_fresh_after_s": (fresh == total).then_some(elapsed.as_secs_f64()),
        "by_org_size": sizes,
        "statuses": statuses,
        "peak_429_per_second": peak_429,
        "server_errors": server_errors,
        "median_failures_at_return": failures.get(failures.len() / 2),
        "quiet_org_token_ms": quiet,
        "readyz_ms": probe,
    });
    println!("{summary}");
    if let Some(path) = &args.timeline {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(file, "second,ok,429,5xx,other,errors")?;
        for (i, s) in seconds.iter().enumerate() {
            writeln!(
                file,
                "{i},{},{},{},{},{}",
                s.ok, s.limited, s.server_errors, s.other, s.errors
            )?;
        }
        file.flush()?;
    }
    // Idle workers wait on a queue that is closed now; nothing else runs.
    Ok(())
}

/// Requests at a fixed rate on one connection until `over`; latencies from each request's
/// scheduled time. Answers other than 200 are counted beside them.
async fn steady(
    target: Arc<Target>,
    authorization: Option<String>,
    rate: u64,
    start: Instant,
    over: Arc<AtomicBool>,
) -> serde_json::Value {
    let mut latencies = Vec::new();
    let mut not_ok = 0u64;
    let mut sender = None;
    let rate = rate.max(1);
    for j in 0u64.. {
        let scheduled = start + Duration::from_nanos(j.saturating_mul(1_000_000_000) / rate);
        if over.load(Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep_until(scheduled.into()).await;
        match send_on(&mut sender, &target, authorization.as_deref()).await {
            Some(answer) if answer.status == 200 => {
                latencies.push(u32::try_from(scheduled.elapsed().as_micros()).unwrap_or(u32::MAX))
            }
            _ => not_ok += 1,
        }
    }
    let mut summary = latency_summary(latencies);
    summary["not_ok"] = not_ok.into();
    summary
}
