//! docs/KEY-CEREMONY.md, run as written: every `sh` block, in order, as one bash script in an
//! empty directory with the built `mcpg-license` and `mcpg-ctl` on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `sh` blocks of a Markdown document, in order.
fn shell_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block");
    blocks
}

#[test]
fn the_key_ceremony_document_runs_as_written() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/KEY-CEREMONY.md");
    let markdown = std::fs::read_to_string(&doc).expect("docs/KEY-CEREMONY.md");
    let blocks = shell_blocks(&markdown);
    assert!(
        blocks.len() >= 8,
        "the ceremony has its steps: {}",
        blocks.len()
    );
    let script = blocks.join("\n");
    for command in ["keygen", "certify", "issue", "revoke", "--share", "--seal"] {
        assert!(script.contains(command), "the ceremony runs {command}");
    }

    let work = tempfile::tempdir().expect("tempdir");
    let bin_dir = |exe: &str| -> PathBuf {
        Path::new(exe)
            .parent()
            .expect("binary directory")
            .to_owned()
    };
    let path = std::env::join_paths(
        [
            bin_dir(env!("CARGO_BIN_EXE_mcpg-license")),
            bin_dir(env!("CARGO_BIN_EXE_mcpg-ctl")),
        ]
        .into_iter()
        .chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .expect("PATH");
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(work.path())
        .env("PATH", path)
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "the ceremony failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // What the ceremony leaves behind: public files on the offline machine, one share per
    // custodian, and no whole secret of a root anywhere.
    let listing = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(work.path().join(dir))
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        listing("ceremony"),
        ["mcpg-root-2027.jwk.json", "mcpg-root-2027.public.paserk"]
    );
    for i in 1..=5 {
        assert_eq!(
            listing(&format!("custodian-{i}")),
            [format!("mcpg-root-2027.share-{i}-of-5.json")]
        );
    }
    for entry in walk(work.path()) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains("k4.secret."),
            "{} holds a plain secret key",
            entry.display()
        );
    }
    for license in [
        "sovereign-bank.license",
        "auth-2027.cert",
        "auth-2027.root-2028.cert",
    ] {
        assert!(work.path().join(license).is_file(), "{license} was made");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
