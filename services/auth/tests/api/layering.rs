//! The three layers of `mcpg-auth` (`domain` < `infra` < `http`): a module may import
//! from its own layer and the ones below, never from one above. Read from the source, so
//! a back-edge fails here before it grows into an import circle.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const LAYERS: [&str; 3] = ["domain", "infra", "http"];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Every `crate::<layer>` a file names, in code or in paths inside macros.
fn layers_named(text: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if rank(&word).is_some() {
            named.insert(word);
        }
    }
    named
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut placed = 0;
    let mut back_edges = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default();
        let Some(own) = rank(top) else {
            // lib.rs and main.rs sit above the layers and may name any of them.
            assert!(
                ["lib.rs", "main.rs"].contains(&top),
                "{} is outside the three layers",
                relative.display()
            );
            continue;
        };
        placed += 1;
        let text = std::fs::read_to_string(file).expect("readable source file");
        for layer in layers_named(&text) {
            if rank(&layer).is_some_and(|named| named > own) {
                back_edges.push(format!("{} → crate::{layer}", relative.display()));
            }
        }
    }
    assert!(placed > 50, "the layers hold the modules ({placed} found)");
    assert!(
        back_edges.is_empty(),
        "imports from a higher layer:\n{}",
        back_edges.join("\n")
    );
}

#[test]
fn the_scan_sees_a_back_edge() {
    let named = layers_named("use crate::http::state::AppState;\nlet x = crate::infra::store::X;");
    assert_eq!(
        named.into_iter().collect::<Vec<_>>(),
        vec!["http".to_owned(), "infra".to_owned()]
    );
}

/// Change events are derived from audit entries as they are appended through the write
/// transaction (`infra/store/changes.rs`); an append that bypassed it would change data
/// without dropping the caches built on it.
#[test]
fn audit_entries_are_appended_only_through_the_write_transaction() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let bypasses: Vec<String> = files
        .iter()
        .filter(|file| !file.ends_with("infra/store/changes.rs"))
        .filter(|file| {
            std::fs::read_to_string(file)
                .expect("readable source file")
                .contains("AuditTx::append_audit(")
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(bypasses.is_empty(), "direct audit appends: {bypasses:?}");
}
