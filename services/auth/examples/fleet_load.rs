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
//! Plain HTTP/1.1 over hyper's connection API: the client must cost less than the server,
//! since both share the machine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hyper::Request;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

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

struct Target {
    host: String,
    authority: String,
    path: String,
}

fn target(url: &str) -> anyhow::Result<Target> {
    let rest = url
        .strip_prefix("http://")
        .context("the URL must start with http://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    Ok(Target {
        host: authority.to_owned(),
        authority: authority.to_owned(),
        path: format!("/{path}"),
    })
}

fn duration(text: &str) -> anyhow::Result<Duration> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let number: u64 = number.parse().context("a duration like 10s or 2m")?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(number),
        "ms" => Duration::from_millis(number),
        "m" => Duration::from_secs(number * 60),
        _ => bail!("unknown duration unit {unit:?}"),
    })
}

fn load_credentials(path: &std::path::Path, limit: Option<usize>) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let credential = match line.trim_start().starts_with('{') {
            true => serde_json::from_str::<serde_json::Value>(line)?["credential"]
                .as_str()
                .context("a JSON line without credential")?
                .to_owned(),
            false => line.trim().to_owned(),
        };
        out.push(format!("Bearer {credential}"));
        if limit.is_some_and(|limit| out.len() >= limit) {
            break;
        }
    }
    if out.is_empty() {
        bail!("no credentials in {}", path.display());
    }
    Ok(out)
}

async fn connect(target: &Target) -> anyhow::Result<SendRequest<String>> {
    let stream = TcpStream::connect(&target.authority).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
}

async fn send(
    sender: &mut SendRequest<String>,
    target: &Target,
    authorization: &str,
) -> anyhow::Result<u16> {
    sender.ready().await?;
    let request = Request::post(&target.path)
        .header("host", &target.host)
        .header("authorization", authorization)
        .header("content-length", "0")
        .body(String::new())?;
    let response: hyper::Response<Incoming> = sender.send_request(request).await?;
    let status = response.status().as_u16();
    http_body_util_collect(response.into_body()).await?;
    Ok(status)
}

/// Reads the body to its end (the connection is reused).
async fn http_body_util_collect(mut body: Incoming) -> anyhow::Result<()> {
    use hyper::body::Body;
    use std::future::poll_fn;
    use std::pin::Pin;
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        frame?;
    }
    Ok(())
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
        match send(s, &target, credential).await {
            Ok(status) => {
                let micros = scheduled.elapsed().as_micros();
                tally
                    .latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
                *tally.statuses.entry(status).or_default() += 1;
            }
            Err(_) => {
                tally.errors += 1;
                sender = None;
            }
        }
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = Arc::new(target(&args.url)?);
    let credentials = Arc::new(load_credentials(&args.credentials, args.credentials_limit)?);
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
    all.latencies_us.sort_unstable();
    let answered = all.latencies_us.len() as u64;
    let summary = serde_json::json!({
        "credentials": credentials.len(),
        "requests": answered,
        "errors": all.errors,
        "statuses": all.statuses,
        "requests_per_second": answered as f64 / elapsed,
        "next_offset": (next.load(Ordering::Relaxed) + args.offset) % credentials.len() as u64,
        "latency_ms": {
            "p50": percentile(&all.latencies_us, 50.0),
            "p90": percentile(&all.latencies_us, 90.0),
            "p99": percentile(&all.latencies_us, 99.0),
            "p99_9": percentile(&all.latencies_us, 99.9),
            "max": percentile(&all.latencies_us, 100.0),
        },
    });
    println!("{summary}");
    Ok(())
}
