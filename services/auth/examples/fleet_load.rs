//! The fleet benchmark's load generator (`bench/fleet-load.sh`; not a test).
//!
//! Drives `POST /v1/federation/token` the way a fleet does: every request carries the
//! next credential of a list (request `j` uses credential `j mod N`), so with N larger
//! than what the grant cache holds over a walk, every request is a miss. With
//! `--credentials-limit 1` it is the one-gateway figure, measured by the same client.
//!
//! Two modes: closed loop on `--connections` keep-alive connections (throughput), or
//! `--rate R` requests per second on a fixed schedule whose latencies are measured from
//! each request's *scheduled* time (no coordinated omission). Prints one JSON object:
//! requests, statuses, requests/s, latency percentiles in milliseconds.
//!
//! Plain HTTP/1.1 over hyper's connection API (`common/`).

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use common::{Target, connect, duration, latency_summary, load_credentials, send};

#[derive(Parser)]
struct Args {
    /// The token endpoint, `http://HOST:PORT/v1/federation/token`.
    #[arg(long)]
    url: String,
    /// Credentials: one per line, plain or a JSON object with `credential`.
    #[arg(long)]
    credentials: std::path::PathBuf,
    /// Use only the first N credentials (1: one gateway asking again and again).
    #[arg(long)]
    credentials_limit: Option<usize>,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// How long to send, e.g. `10s`.
    #[arg(long, default_value = "10s")]
    duration: String,
    /// Fixed request rate (per second) instead of a closed loop.
    #[arg(long)]
    rate: Option<u64>,
    /// Walk the credentials from this index (to start where the last run stopped).
    #[arg(long, default_value_t = 0)]
    offset: u64,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
}

async fn worker(
    target: Arc<Target>,
    credentials: Arc<Vec<String>>,
    next: Arc<AtomicU64>,
    start: Instant,
    end: Instant,
    rate: Option<u64>,
    offset: u64,
) -> Tally {
    let mut tally = Tally::default();
    let mut sender = None;
    loop {
        let j = next.fetch_add(1, Ordering::Relaxed);
        let scheduled = match rate {
            Some(rate) => start + Duration::from_nanos(j.saturating_mul(1_000_000_000) / rate),
            None => Instant::now(),
        };
        if scheduled >= end {
            break;
        }
        if rate.is_some() {
            tokio::time::sleep_until(scheduled.into()).await;
        }
        let credential = &credentials[((j + offset) % credentials.len() as u64) as usize];
        if sender.is_none() {
            match connect(&target).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    tally.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        match send(s, &target, Some(credential)).await {
            Ok(answer) => {
                let micros = scheduled.elapsed().as_micros();
                tally
                    .latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
                *tally.statuses.entry(answer.status).or_default() += 1;
            }
            Err(_) => {
                tally.errors += 1;
                sender = None;
            }
        }
    }
    tally
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = Arc::new(Target::parse(&args.url)?);
    let credentials: Vec<String> = load_credentials(&args.credentials, args.credentials_limit)?
        .into_iter()
        .map(|(_, header)| header)
        .collect();
    let credentials = Arc::new(credentials);
    let length = duration(&args.duration)?;
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + length;
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        tasks.push(tokio::spawn(worker(
            target.clone(),
            credentials.clone(),
            next.clone(),
            start,
            end,
            args.rate,
            args.offset,
        )));
    }
    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await?;
        all.latencies_us.extend(tally.latencies_us);
        all.errors += tally.errors;
        for (status, count) in tally.statuses {
            *all.statuses.entry(status).or_default() += count;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let answered = all.latencies_us.len() as u64;
    let summary = serde_json::json!({
        "credentials": credentials.len(),
        "requests": answered,
        "errors": all.errors,
        "statuses": all.statuses,
        "requests_per_second": answered as f64 / elapsed,
        "next_offset": (next.load(Ordering::Relaxed) + args.offset) % credentials.len() as u64,
        "latency_ms": latency_summary(all.latencies_us),
    });
    println!("{summary}");
    Ok(())
}
