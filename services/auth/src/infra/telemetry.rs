//! Logs, request spans and metrics.
//!
//! The `metrics` facade has one process-wide recorder; it is installed once here (tests
//! start many servers in one process and share it), and every metric family is described
//! (`# HELP`) right after, in [`describe`]: a new metric needs a constant here and a row
//! there. Values are in base units (seconds, bytes).

mod process;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::Method;
use metrics::{Histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::build_info;
use crate::domain::settings::LogFormat;
use crate::infra::store::OrgUsage;

/// Request latency histogram, labelled by method, route template and status (no org).
pub(crate) const REQUEST_DURATION: &str = "mcpg_http_request_duration_seconds";
/// Requests the guard answered 503, by reason: `overloaded` (shed before routing, past
/// `--max-in-flight`) or `timeout` (cut off at the request timeout; the handler may have
/// partly run). Neither is in [`REQUEST_DURATION`].
pub(crate) const REQUESTS_REFUSED: &str = "mcpg_http_requests_refused_total";
/// Refused management requests (401, 403, the uniform 404 of a hidden org), by reason;
/// no org label, so `/metrics` names no org a caller tried to reach.
pub(crate) const DENIED_REQUESTS: &str = "mcpg_denied_requests_total";
/// Management requests of a caller of one org refused on another org's routes.
pub(crate) const CROSS_TENANT_PROBES: &str = "mcpg_cross_tenant_probes_total";
/// Token requests, labelled by org and outcome.
pub(crate) const TOKENS_ISSUED: &str = "mcpg_tokens_issued_total";
/// Gateways that obtained a token in the last 24 h, by org.
pub(crate) const GATEWAYS_SEEN: &str = "mcpg_gateways_seen_24h";
/// Seconds until the org's license ends (negative once ended), by org.
pub(crate) const LICENSE_EXPIRY: &str = "mcpg_license_expiry_seconds";
/// Seconds until the active signing key's issuer certificate expires.
pub(crate) const CERTIFICATE_EXPIRY: &str = "mcpg_certificate_expiry_seconds";
/// What an org uses of a quota, by org and quota (`workspaces`, `environments`, `gateways`).
pub(crate) const QUOTA_USAGE: &str = "mcpg_quota_usage";
/// The license's limit of a quota, by org and quota (absent when the license sets none).
pub(crate) const QUOTA_LIMIT: &str = "mcpg_quota_limit";
/// Management API requests that reached an org's rate limit check, by org and outcome
/// (`allowed`, `rate_limited`).
pub(crate) const ORG_REQUESTS: &str = "mcpg_org_requests_total";
/// Applied generations of the tenants file (1 after the start).
pub(crate) const TENANTS_GENERATION: &str = "mcpg_tenants_generation";
/// When the tenants file was last applied (Unix seconds).
pub(crate) const TENANTS_APPLIED_AT: &str = "mcpg_tenants_last_applied_timestamp_seconds";
/// Changed tenants files that were not applied (invalid or not applicable).
pub(crate) const TENANTS_FAILURES: &str = "mcpg_tenants_reload_failures_total";
/// Replicas on this database whose heartbeat is recent (this one included), as this
/// replica last read it: what the cluster-wide rate limits are divided by.
pub(crate) const REPLICAS_ALIVE: &str = "mcpg_replicas_alive";
/// Always 1, labelled with the version and commit of the running binary.
pub(crate) const BUILD_INFO: &str = "mcpg_build_info";
/// PostgreSQL: 1 while this replica listens for the other replicas' changes, 0 while it
/// cannot (their changes then reach it when its caches expire).
pub(crate) const CHANGE_LISTENER_UP: &str = "mcpg_change_listener_up";
/// Changes announced by other replicas that this one applied.
pub(crate) const PEER_CHANGES: &str = "mcpg_peer_changes_received_total";
/// Unrevoked gateway credentials in the token path's in-memory directory.
pub(crate) const DIRECTORY_GATEWAYS: &str = "mcpg_directory_gateways";
/// Token requests' grant lookups by where they were answered: `source="directory"` (in
/// memory) or `"database"` (the directory could not say: not loaded yet, the org just
/// changed, or the replica is not hearing the others' changes).
pub(crate) const GRANT_LOOKUPS: &str = "mcpg_token_grant_lookups_total";
/// Directory loads: `scope="all"` (at start, after a replica reconnects) or `"org"`.
pub(crate) const DIRECTORY_LOADS: &str = "mcpg_directory_loads_total";
/// Usage reports carried by token requests, by outcome (`accepted`, `malformed`,
/// `oversized`); an ignored report never refuses the token.
pub(crate) const USAGE_REPORTS: &str = "mcpg_usage_reports_total";
/// Org-days found over a license limit (`limit="max_gateways"` or `"plugin"`), counted by
/// the replica that recorded them (once per org, limit and day across the cluster).
pub(crate) const USAGE_OVER_LIMIT: &str = "mcpg_usage_over_limit_total";

pub(crate) use process::record_process_metrics;

/// Every family this service exports, with its unit and `# HELP` text.
const DESCRIPTIONS: [(&str, Kind, Option<Unit>, &str); 30] = [
    (
        REQUEST_DURATION,
        Kind::Histogram,
        Some(Unit::Seconds),
        "Time to answer a request, by method, route template and status.",
    ),
    (
        REQUESTS_REFUSED,
        Kind::Counter,
        Some(Unit::Count),
        "Requests answered 503 by the guard, by reason (overloaded, timeout).",
    ),
    (
        DENIED_REQUESTS,
        Kind::Counter,
        Some(Unit::Count),
        "Management requests refused access (401, 403, the 404 of a missing or hidden org), by reason.",
    ),
    (
        CROSS_TENANT_PROBES,
        Kind::Counter,
        Some(Unit::Count),
        "Management requests of a caller of one org refused on another org's routes.",
    ),
    (
        TOKENS_ISSUED,
        Kind::Counter,
        Some(Unit::Count),
        "Token requests, by org and outcome.",
    ),
    (
        GATEWAYS_SEEN,
        Kind::Gauge,
        Some(Unit::Count),
        "Gateways that obtained a token in the last 24 hours, by org.",
    ),
    (
        LICENSE_EXPIRY,
        Kind::Gauge,
        Some(Unit::Seconds),
        "Seconds until the org's license ends (negative once ended), by org.",
    ),
    (
        CERTIFICATE_EXPIRY,
        Kind::Gauge,
        Some(Unit::Seconds),
        "Seconds until the active signing key's issuer certificate expires.",
    ),
    (
        QUOTA_USAGE,
        Kind::Gauge,
        Some(Unit::Count),
        "What an org uses of a quota, by org and quota.",
    ),
    (
        QUOTA_LIMIT,
        Kind::Gauge,
        Some(Unit::Count),
        "The license's limit of a quota, by org and quota.",
    ),
    (
        ORG_REQUESTS,
        Kind::Counter,
        Some(Unit::Count),
        "Management requests checked against an org's rate limit, by org and outcome.",
    ),
    (
        TENANTS_GENERATION,
        Kind::Gauge,
        Some(Unit::Count),
        "Applied generations of the tenants file.",
    ),
    (
        TENANTS_APPLIED_AT,
        Kind::Gauge,
        Some(Unit::Seconds),
        "When the tenants file was last applied, in Unix seconds.",
    ),
    (
        TENANTS_FAILURES,
        Kind::Counter,
        Some(Unit::Count),
        "Changed tenants files that were not applied.",
    ),
    (
        REPLICAS_ALIVE,
        Kind::Gauge,
        Some(Unit::Count),
        "Replicas on this database with a recent heartbeat, as this replica last read it.",
    ),
    (
        BUILD_INFO,
        Kind::Gauge,
        None,
        "Always 1: the version and commit of the running binary.",
    ),
    (
        process::RESIDENT_MEMORY,
        Kind::Gauge,
        Some(Unit::Bytes),
        "Resident memory size in bytes.",
    ),
    (
        process::VIRTUAL_MEMORY,
        Kind::Gauge,
        Some(Unit::Bytes),
        "Virtual memory size in bytes.",
    ),
    (
        process::CPU_SECONDS,
        Kind::Counter,
        Some(Unit::Seconds),
        "Total user and system CPU time spent, in seconds.",
    ),
    (
        process::OPEN_FDS,
        Kind::Gauge,
        Some(Unit::Count),
        "Open file descriptors.",
    ),
    (
        process::MAX_FDS,
        Kind::Gauge,
        Some(Unit::Count),
        "The limit on open file descriptors.",
    ),
    (
        process::START_TIME,
        Kind::Gauge,
        Some(Unit::Seconds),
        "Start time of the process since the Unix epoch, in seconds.",
    ),
    (
        process::THREADS,
        Kind::Gauge,
        Some(Unit::Count),
        "Threads of the process.",
    ),
    (
        CHANGE_LISTENER_UP,
        Kind::Gauge,
        None,
        "1 while this replica listens for the other replicas' changes (PostgreSQL NOTIFY), 0 while it cannot and relies on cache expiry.",
    ),
    (
        PEER_CHANGES,
        Kind::Counter,
        Some(Unit::Count),
        "Changes announced by other replicas that this replica applied.",
    ),
    (
        GRANT_LOOKUPS,
        Kind::Counter,
        Some(Unit::Count),
        "Token requests' grant lookups by where they were answered: source=directory (in memory) or database.",
    ),
    (
        DIRECTORY_GATEWAYS,
        Kind::Gauge,
        Some(Unit::Count),
        "Unrevoked gateway credentials in the token path's in-memory directory.",
    ),
    (
        DIRECTORY_LOADS,
        Kind::Counter,
        Some(Unit::Count),
        "Loads of the credential directory from the database: scope=all (at start, after a replica reconnects) or org (after a change to one org).",
    ),
    (
        USAGE_REPORTS,
        Kind::Counter,
        Some(Unit::Count),
        "Usage reports carried by token requests, by outcome: accepted, malformed or oversized (ignored; the token is issued all the same).",
    ),
    (
        USAGE_OVER_LIMIT,
        Kind::Counter,
        Some(Unit::Count),
        "Org-days recorded over a license limit, by org and limit (max_gateways, plugin); nothing is cut off.",
    ),
];

/// The type of a metric family, which picks the `describe_*` call.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Gives every family its `# HELP` text and sets `mcpg_build_info` (the exporter writes a
/// description only for families that have a value, so describing all up front is free).
fn describe() {
    for (name, kind, unit, help) in DESCRIPTIONS {
        match (kind, unit) {
            (Kind::Counter, Some(unit)) => metrics::describe_counter!(name, unit, help),
            (Kind::Counter, None) => metrics::describe_counter!(name, help),
            (Kind::Gauge, Some(unit)) => metrics::describe_gauge!(name, unit, help),
            (Kind::Gauge, None) => metrics::describe_gauge!(name, help),
            (Kind::Histogram, Some(unit)) => metrics::describe_histogram!(name, unit, help),
            (Kind::Histogram, None) => metrics::describe_histogram!(name, help),
        }
    }
    metrics::gauge!(
        BUILD_INFO,
        "version" => build_info::VERSION,
        "commit" => build_info::COMMIT
    )
    .set(1.0);
}

/// Installs the tracing subscriber (filter from `MCPG_LOG`, default `info`; see
/// [`mcpg_runtime::log`]). Safe to call more than once.
pub fn init_tracing(format: LogFormat) {
    mcpg_runtime::log::init_tracing(format, "info");
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
            if metrics::set_global_recorder(recorder).is_ok() {
                describe();
            }
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
