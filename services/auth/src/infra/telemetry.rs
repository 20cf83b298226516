//! Logs, request spans and metrics.
//!
//! The `metrics` facade has one process-wide recorder; it is installed once here (tests
//! start many servers in one process and share it).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::Method;
use metrics::Histogram;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::domain::settings::LogFormat;
use crate::infra::store::OrgUsage;

/// Request latency histogram, labelled by method, route template and status (no org).
pub(crate) const REQUEST_DURATION: &str = "mcpg_http_request_duration_seconds";
/// Requests the guard answered 503, by reason: `overloaded` (shed before routing, past
/// `--max-in-flight`) or `timeout` (cut off at the request timeout; the handler may have
/// partly run). Neither is in [`REQUEST_DURATION`].
pub(crate) const REQUESTS_REFUSED: &str = "mcpg_http_requests_refused_total";
/// Token requests, labelled by org and outcome.
pub(crate) const TOKENS_ISSUED: &str = "mcpg_tokens_issued_total";
/// Gateways that obtained a token in the last 24 h, by org.
pub(crate) const GATEWAYS_SEEN: &str = "mcpg_gateways_seen_24h";
/// Days until the org's license ends (negative once ended), by org.
pub(crate) const LICENSE_DAYS_LEFT: &str = "mcpg_license_days_to_expiry";
/// Gauge: days until the active signing key's issuer certificate expires.
pub(crate) const CERTIFICATE_DAYS_LEFT: &str = "mcpg_certificate_days_to_expiry";
/// What an org uses of a quota, by org and quota (`workspaces`, `environments`, `gateways`).
pub(crate) const QUOTA_USAGE: &str = "mcpg_quota_usage";
/// The license's limit of a quota, by org and quota (absent when the license sets none).
pub(crate) const QUOTA_LIMIT: &str = "mcpg_quota_limit";
/// Management API requests that reached an org's rate limit check, by org and outcome
/// (`allowed`, `rate_limited`).
pub(crate) const ORG_REQUESTS: &str = "mcpg_org_requests_total";

/// Installs the tracing subscriber (filter from `MCPG_LOG`, default `info`). Safe to call
/// more than once.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_env("MCPG_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The process's Prometheus handle, installing the recorder on first use.
pub(crate) fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5, 5.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_owned()), &buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The method as a label; other methods share one label (a client picks the method, and
/// labels must stay few).
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The histogram of one route, method and status, registered once per worker thread: the
/// registry lookup (label strings, hashing) would otherwise cost every request.
pub(crate) fn latency_histogram(route: &str, method: &'static str, status: u16) -> Histogram {
    /// Per route template: the series seen so far, by method and status.
    type Series = Vec<(&'static str, u16, Histogram)>;
    thread_local! {
        static HISTOGRAMS: RefCell<HashMap<String, Series>> = RefCell::new(HashMap::new());
    }
    HISTOGRAMS.with_borrow_mut(|histograms| {
        let series = match histograms.get_mut(route) {
            Some(series) => series,
            None => histograms.entry(route.to_owned()).or_default(),
        };
        if let Some((_, _, histogram)) =
            series.iter().find(|(m, s, _)| *m == method && *s == status)
        {
            return histogram.clone();
        }
        let histogram = metrics::histogram!(
            REQUEST_DURATION,
            "method" => method,
            "route" => route.to_owned(),
            "status" => status.to_string()
        );
        series.push((method, status, histogram.clone()));
        histogram
    })
}

/// Sets the quota gauges from the store's per-org usage.
pub(crate) fn record_usage(usage: &[OrgUsage]) {
    for org in usage {
        let quotas = [
            ("workspaces", org.workspaces, org.limits.max_workspaces),
            (
                "environments",
                org.environments,
                org.limits.max_environments,
            ),
            ("gateways", org.gateways, org.limits.max_gateways),
        ];
        for (quota, used, limit) in quotas {
            let labels = [("org", org.org.clone()), ("quota", quota.to_owned())];
            metrics::gauge!(QUOTA_USAGE, &labels).set(used as f64);
            if let Some(limit) = limit {
                metrics::gauge!(QUOTA_LIMIT, &labels).set(limit as f64);
            }
        }
    }
}

/// Notes the org a request acts on in its span.
pub(crate) fn record_org(org: &str) {
    tracing::Span::current().record("org", org);
}
