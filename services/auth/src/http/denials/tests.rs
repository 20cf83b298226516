//! The denial log under a flood, and what its lines name.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{DenialEvent, DenialLog, DenialReason, INFO_BURST, INFO_PER_SECOND, WARN_BURST};
use crate::http::extract::Principal;

/// A log sink the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("sink").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("sink").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Runs `body` with the log going to the returned sink.
fn capture(body: impl FnOnce()) -> Vec<String> {
    let sink = Captured::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, body);
    sink.lines()
}

fn org_key() -> Principal {
    Principal {
        token_id: "tok_7f3a".into(),
        org_id: Some("org_acme".into()),
        user_id: None,
        impersonator_id: None,
        oidc: None,
    }
}

fn event(caller: Option<&Principal>) -> DenialEvent<'_> {
    DenialEvent {
        reason: DenialReason::OrgNotFound,
        route: "/v1/orgs/{org}/workspaces",
        method: "GET",
        caller,
    }
}

#[test]
fn a_flood_of_refusals_writes_a_bounded_number_of_lines_and_a_summary() {
    let log = DenialLog::default();
    let caller = org_key();
    let start = Instant::now();
    let lines = capture(|| {
        for _ in 0..5_000 {
            log.refused(&event(Some(&caller)), start);
        }
        for _ in 0..5_000 {
            log.refused(&event(None), start + Duration::from_secs(1));
        }
        log.report_suppressed();
    });
    let denied = lines
        .iter()
        .filter(|l| l.contains("request denied"))
        .count();
    assert_eq!(denied as u32, INFO_BURST + INFO_PER_SECOND, "{lines:#?}");
    // One summary when the bucket refills, one from the periodic report: together they
    // account for every line not written.
    let suppressed: u32 = lines
        .iter()
        .filter_map(|l| l.split("suppressed ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse::<u32>().ok())
        .sum();
    assert_eq!(
        suppressed,
        10_000 - INFO_BURST - INFO_PER_SECOND,
        "{lines:#?}"
    );
}

#[test]
fn a_refusal_line_names_the_caller_and_route_but_no_credential() {
    let log = DenialLog::default();
    let caller = org_key();
    let lines = capture(|| log.refused(&event(Some(&caller)), Instant::now()));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    for expected in [
        "INFO",
        "reason=\"org_not_found\"",
        "principal_kind=\"org_api_key\"",
        "principal_id=\"tok_7f3a\"",
        "route=\"/v1/orgs/{org}/workspaces\"",
    ] {
        assert!(line.contains(expected), "{expected} missing from {line}");
    }
    assert!(!line.contains("mcpg_pat_"), "no credential text: {line}");
    let anonymous = capture(|| log.refused(&event(None), Instant::now()));
    assert!(anonymous[0].contains("principal_kind=\"anonymous\""));
}

#[test]
fn probe_warnings_have_their_own_smaller_budget() {
    let log = DenialLog::default();
    let caller = org_key();
    let now = Instant::now();
    let lines = capture(|| {
        for _ in 0..100 {
            log.probe(&event(Some(&caller)), "globex", now);
        }
        log.report_suppressed();
    });
    let warnings: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("cross-tenant probe:"))
        .collect();
    assert_eq!(warnings.len() as u32, WARN_BURST);
    assert!(warnings.iter().all(|l| l.contains("WARN")
        && l.contains("target_org=\"globex\"")
        && l.contains("principal_org=\"org_acme\"")));
    let expected = format!("suppressed {} cross-tenant probe lines", 100 - WARN_BURST);
    assert!(lines.iter().any(|l| l.contains(&expected)), "{lines:#?}");
}
