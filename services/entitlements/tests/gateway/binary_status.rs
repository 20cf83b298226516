//! `mcpg-entitlements status` in words: the token's timeline drawn for each tenant (plain,
//! since stdout is a pipe here), and after the federation's no, that no with the time it
//! was decided, also when the next run reads only the state directory.

use mcpg_license_core::Tier;

use crate::binary::{federated_config, run};
use crate::standin::{Answer, StandIn};
use crate::support::temp_dir;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_draws_the_token_timeline_without_colour_on_a_pipe() {
    let server = StandIn::start(Answer::Token {
        org: "acme".into(),
        tier: Tier::Team,
    })
    .await;
    let dir = temp_dir();
    let config = federated_config(dir.path(), &server);
    let out = run(&config, &["status"]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(!text.contains('\x1b'), "escape codes on a pipe:\n{text}");
    assert!(
        text.contains("timeline: acme/platform/prod (active)\n"),
        "{text}"
    );
    let bar = text
        .lines()
        .find(|l| l.starts_with("  [I") || l.starts_with("  [@"))
        .unwrap_or_else(|| panic!("no bar in\n{text}"));
    assert!(bar.ends_with("]  fresh"), "{bar}");
    // A token just issued: now at the start, then R, E and G in order.
    let column = |c: char| bar.find(c).unwrap_or_else(|| panic!("no {c} in {bar}"));
    assert!(column('@') < column('R') && column('R') < column('E') && column('E') < column('G'));
    let drawn: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("timeline:"))
        .take(7)
        .collect();
    assert!(drawn.iter().all(|l| l.chars().count() <= 80), "{drawn:#?}");
    for label in ["issued", "refresh after", "expires", "grace ends"] {
        let line = drawn
            .iter()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in\n{text}"));
        assert!(line.contains("Z  ("), "{line}");
    }
    assert!(
        text.contains("(in 8h)") || text.contains("(in 7h 59m)"),
        "{text}"
    );

    let json = run(&config, &["status", "--json"]).await;
    let snapshot: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let timeline = &snapshot["default"]["timeline"];
    assert_eq!(timeline["phase"], "fresh", "{timeline}");
    assert_eq!(
        timeline["expires_at"],
        snapshot["default"]["license"]["expires_at"]
    );
    assert!(
        timeline["grace_ends_rfc3339"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_gateway_says_revoked_and_when_also_from_the_state_directory_alone() {
    let server = StandIn::start(Answer::Token {
        org: "acme".into(),
        tier: Tier::Team,
    })
    .await;
    let dir = temp_dir();
    let config = federated_config(dir.path(), &server);
    assert_eq!(run(&config, &["status"]).await.status.code(), Some(0));
    // A new process with an empty state directory federates again, and hears the no.
    server.then(Answer::Error {
        status: 403,
        code: "license_revoked",
        retry_after: None,
    });
    let state_files: Vec<_> = std::fs::read_dir(dir.path().join("state"))
        .expect("state dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    for file in state_files {
        std::fs::remove_file(file).expect("remove");
    }
    let first = run(&config, &["status"]).await;
    let text = stdout(&first);
    assert!(
        text.contains("state:    revoked\n")
            && text.contains("revoked:  license_revoked (decided "),
        "{text}"
    );
    let restarted = run(&config, &["--no-refresh", "status"]).await;
    let again = stdout(&restarted);
    let decided = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("revoked:"))
            .and_then(|l| l.split("(decided ").nth(1))
            .and_then(|rest| rest.split(',').next())
            .map(str::to_owned)
    };
    assert!(again.contains("state:    revoked\n"), "{again}");
    assert!(!again.contains("not_federated"), "{again}");
    assert!(!again.contains("1970"), "{again}");
    assert_eq!(decided(&again), decided(&text), "{text}\n---\n{again}");
    assert!(decided(&again).is_some_and(|t| t.starts_with("20")));
}
