//! What the load generators of `bench/` share (not an example itself): a target URL, a
//! plain HTTP/1.1 keep-alive connection over hyper's connection API (the client must cost
//! less than the server, since both share the machine), durations and percentiles.

#![allow(dead_code)] // each example uses its own part

use std::time::Duration;

use anyhow::{Context, bail};
use hyper::Request;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests go: `http://HOST:PORT/PATH`.
pub struct Target {
    pub authority: String,
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .context("the URL must start with http://")?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        Ok(Self {
            authority: authority.to_owned(),
            path: format!("/{path}"),
        })
    }

    /// The same server, another path.
    pub fn with_path(&self, path: &str) -> Self {
        Self {
            authority: self.authority.clone(),
            path: path.to_owned(),
        }
    }
}

/// `10s`, `500ms`, `2m`, `1h`, `1d`.
pub fn duration(text: &str) -> anyhow::Result<Duration> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let number: u64 = number.parse().context("a duration like 10s or 2m")?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(number),
        "ms" => Duration::from_millis(number),
        "m" => Duration::from_secs(number * 60),
        "h" => Duration::from_secs(number * 3600),
        "d" => Duration::from_secs(number * 86_400),
        _ => bail!("unknown duration unit {unit:?}"),
    })
}

/// Reads credentials, one per line: plain, or a JSON object with `credential`. Returns
/// each line's JSON object (or `null`) beside its `Bearer …` header value.
pub fn load_credentials(
    path: &std::path::Path,
    limit: Option<usize>,
) -> anyhow::Result<Vec<(serde_json::Value, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (object, credential) = match line.trim_start().starts_with('{') {
            true => {
                let object: serde_json::Value = serde_json::from_str(line)?;
                let credential = object["credential"]
                    .as_str()
                    .context("a JSON line without credential")?
                    .to_owned();
                (object, credential)
            }
            false => (serde_json::Value::Null, line.trim().to_owned()),
        };
        out.push((object, format!("Bearer {credential}")));
        if limit.is_some_and(|limit| out.len() >= limit) {
            break;
        }
    }
    if out.is_empty() {
        bail!("no credentials in {}", path.display());
    }
    Ok(out)
}

/// One keep-alive connection.
pub async fn connect(target: &Target) -> anyhow::Result<SendRequest<String>> {
    let stream = TcpStream::connect(&target.authority).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// What the client keeps of an answer.
pub struct Answer {
    pub status: u16,
    /// `Retry-After`, when present and a number of seconds.
    pub retry_after: Option<u64>,
}

/// Sends `POST` (with `authorization`) or `GET` (without) and reads the body to its end
/// (the connection is reused).
pub async fn send(
    sender: &mut SendRequest<String>,
    target: &Target,
    authorization: Option<&str>,
) -> anyhow::Result<Answer> {
    sender.ready().await?;
    let builder = match authorization {
        Some(value) => Request::post(&target.path)
            .header("authorization", value)
            .header("content-length", "0"),
        None => Request::get(&target.path),
    };
    let request = builder
        .header("host", &target.authority)
        .body(String::new())?;
    let response: hyper::Response<Incoming> = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    drain(response.into_body()).await?;
    Ok(Answer {
        status,
        retry_after,
    })
}

/// [`send`] on a kept connection, made when there is none; a kept connection the server
/// closed meanwhile (idle keep-alive) is replaced and the request sent once more, as HTTP
/// clients do. `None`: no answer (the connection is dropped).
pub async fn send_on(
    sender: &mut Option<SendRequest<String>>,
    target: &Target,
    authorization: Option<&str>,
) -> Option<Answer> {
    let fresh = sender.is_none();
    if fresh {
        *sender = connect(target).await.ok();
    }
    if let Some(s) = sender.as_mut()
        && let Ok(answer) = send(s, target, authorization).await
    {
        return Some(answer);
    }
    *sender = None;
    if fresh {
        return None;
    }
    *sender = connect(target).await.ok();
    let answer = send(sender.as_mut()?, target, authorization).await.ok();
    if answer.is_none() {
        *sender = None;
    }
    answer
}

/// Reads a body to its end.
async fn drain(mut body: Incoming) -> anyhow::Result<()> {
    use hyper::body::Body;
    use std::future::poll_fn;
    use std::pin::Pin;
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        frame?;
    }
    Ok(())
}

/// The `p`th percentile of sorted microseconds, in milliseconds.
pub fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

/// p50/p90/p99/p99.9/max of unsorted microseconds, in milliseconds, as JSON.
pub fn latency_summary(mut micros: Vec<u32>) -> serde_json::Value {
    micros.sort_unstable();
    serde_json::json!({
        "count": micros.len(),
        "p50": percentile(&micros, 50.0),
        "p90": percentile(&micros, 90.0),
        "p99": percentile(&micros, 99.0),
        "p99_9": percentile(&micros, 99.9),
        "max": percentile(&micros, 100.0),
    })
}
