//! The conventions the four binaries share, checked on the real executables: shell
//! completions and man pages generated from their command lines, and global flags accepted
//! after the subcommand as well as before it.

use std::process::Output;

use crate::support::bins::Bin;
use crate::support::process;

const BINS: [Bin; 4] = [Bin::Auth, Bin::Entitlements, Bin::License, Bin::Ctl];

/// A subcommand each binary has, which its completion scripts must name.
fn a_subcommand(bin: Bin) -> &'static str {
    match bin {
        Bin::Auth => "backup",
        Bin::Entitlements => "check",
        Bin::License => "keygen",
        Bin::Ctl => "workspace",
    }
}

fn run(bin: Bin, args: &[&str]) -> Output {
    let mut command = process::command(bin);
    command.args(args);
    process::run(command)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_binary_prints_completions_for_bash_zsh_and_fish() {
    for bin in BINS {
        for shell in ["bash", "zsh", "fish"] {
            let out = run(bin, &["completion", shell]);
            let script = process::success(&out, &format!("{} completion {shell}", bin.name()));
            assert!(
                script.contains(a_subcommand(bin)),
                "{} completion {shell} does not name {}",
                bin.name(),
                a_subcommand(bin)
            );
            assert!(script.contains(bin.name()), "{script}");
            assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
        }
        let refused = run(bin, &["completion", "tcsh"]);
        assert_eq!(refused.status.code(), Some(2), "{}", bin.name());
        assert!(!text(&refused.stderr).contains("panicked"));
    }
}

#[test]
fn every_binary_writes_a_man_page_per_command_and_subcommand() {
    for bin in BINS {
        let dir = tempfile::tempdir().expect("temp dir");
        let out_dir = dir.path().join("man1");
        let out_arg = out_dir.to_string_lossy().into_owned();
        let out = run(bin, &["man", "--out", &out_arg]);
        process::success(&out, &format!("{} man", bin.name()));
        assert!(out.stdout.is_empty(), "man prints nothing on stdout");
        let main = format!("{}.1", bin.name());
        let sub = format!("{}-{}.1", bin.name(), a_subcommand(bin));
        for page in [&main, &sub, &format!("{}-man.1", bin.name())] {
            let content = std::fs::read_to_string(out_dir.join(page))
                .unwrap_or_else(|e| panic!("{page} not written: {e}"));
            let title = page.trim_end_matches(".1");
            assert!(
                content.contains(&format!(".TH {title} 1")),
                "{page} has no .TH header: {content}"
            );
        }
        assert!(!out_dir.join(format!("{}-help.1", bin.name())).exists());
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out_arg = dir.path().to_string_lossy().into_owned();
    process::success(&run(Bin::Ctl, &["man", "--out", &out_arg]), "mcpg-ctl man");
    for page in [
        "mcpg-ctl-org-create.1",
        "mcpg-ctl-context-use.1",
        "mcpg-ctl-login.1",
    ] {
        assert!(dir.path().join(page).is_file(), "{page} missing");
    }
}

#[test]
fn global_flags_are_accepted_after_the_subcommand() {
    // mcpg-auth: --data-dir after `backup` reaches the backup (which finds no database).
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("no-data");
    let data_arg = data.to_string_lossy().into_owned();
    let backup = dir.path().join("b.db").to_string_lossy().into_owned();
    for args in [
        vec!["backup", "--out", &backup, "--data-dir", &data_arg],
        vec!["--data-dir", &data_arg, "backup", "--out", &backup],
    ] {
        let out = run(Bin::Auth, &args);
        let err = text(&out.stderr);
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
        assert!(err.contains("no-data"), "the data dir was used: {err}");
    }
    // mcpg-entitlements: --config after the subcommand names the file that is missing.
    let missing = dir.path().join("missing-gateway.toml");
    let missing_arg = missing.to_string_lossy().into_owned();
    let out = run(
        Bin::Entitlements,
        &["status", "--config", &missing_arg, "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("missing-gateway.toml"),
        "{}",
        text(&out.stderr)
    );
    // mcpg-license: -o json after the subcommand, and before it.
    let keys = dir.path().join("keys").to_string_lossy().into_owned();
    for args in [
        vec!["keygen", "--out", &keys, "--name", "a", "-o", "json"],
        vec!["--output", "json", "keygen", "--out", &keys, "--name", "b"],
    ] {
        let out = run(Bin::License, &args);
        let stdout = process::success(&out, "mcpg-license keygen -o json");
        let doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
        assert!(
            doc["kid"]
                .as_str()
                .is_some_and(|k| k.starts_with("k4.pid.")),
            "{doc}"
        );
    }
    // mcpg-ctl: --server and --token after the subcommand select the (unreachable) server.
    let out = run(
        Bin::Ctl,
        &[
            "org",
            "list",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot reach http://127.0.0.1:9"));
}
