//! What reading a gateway's usage report costs the token path, in process: the ten-plugin
//! report of `bench/usage-report.json` (format 2, counts as pairs, as `mcpg-entitlements`
//! sends it) read as the token path reads it, next to the floor of any reader (serde_json
//! skipping the same text without keeping anything), the same report in format 1
//! (`bench/usage-report-v1.json`, counts as objects) and a one-plugin report.
//!
//! `cargo bench -p mcpg-auth --bench usage_report -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mcpg_auth::bench::read_usage_report;

/// The `usage` member of a token body the load benchmarks send.
fn usage_member(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).expect("the bench body is JSON");
    serde_json::to_string(&value["usage"]).expect("serialisable")
}

fn reports(c: &mut Criterion) {
    let ten = usage_member(include_str!("../../../bench/usage-report.json"));
    assert_eq!(read_usage_report(&ten), Ok(10), "the bench report is valid");
    let ten_v1 = usage_member(include_str!("../../../bench/usage-report-v1.json"));
    assert_eq!(
        read_usage_report(&ten_v1),
        Ok(10),
        "the format 1 report is valid"
    );
    let one = r#"{"v":2,"since":"2026-11-03T08:00:00Z","until":"2026-11-03T16:00:00Z","version":"0.1.0","plugins":{"policy.cedar":[9120,212]}}"#;
    assert_eq!(
        read_usage_report(one),
        Ok(1),
        "the one-plugin report is valid"
    );

    let mut group = c.benchmark_group("usage_report");
    group.bench_function("skip_ten_plugins", |b| {
        b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(&ten)).is_ok())
    });
    group.bench_function("read_ten_plugins", |b| {
        b.iter(|| read_usage_report(black_box(&ten)))
    });
    group.bench_function("skip_ten_plugins_v1", |b| {
        b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(&ten_v1)).is_ok())
    });
    group.bench_function("read_ten_plugins_v1", |b| {
        b.iter(|| read_usage_report(black_box(&ten_v1)))
    });
    group.bench_function("read_one_plugin", |b| {
        b.iter(|| read_usage_report(black_box(one)))
    });
    group.finish();
}

criterion_group!(benches, reports);
criterion_main!(benches);
