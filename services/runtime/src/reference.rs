//! The README's CLI reference, generated from the clap definitions so the two cannot drift.
//!
//! Each binary has a test that calls [`check_readme`] with its command: the README's block
//! between `<!-- cli-reference NAME begin -->` and `<!-- cli-reference NAME end -->` must be
//! exactly [`reference()`] of the command in a `text` fence. With `MCPG_UPDATE_README=1` the
//! test rewrites the block instead (cargo runs test binaries one after another, and within
//! one test binary the checks take turns, so they do not race on the file).

use std::fmt::Write as _;
use std::path::Path;

/// The variable that makes [`check_readme`] rewrite the README instead of comparing.
pub const UPDATE_VARIABLE: &str = "MCPG_UPDATE_README";

/// One line per leaf subcommand (`  org create <SLUG> --display-name <TEXT> [--trial-until
/// <RFC3339>]`), its first line of help under it; first the binary with its global options.
pub fn reference(command: &clap::Command) -> String {
    let mut out = String::new();
    let globals: Vec<String> = command
        .get_arguments()
        .filter(|arg| shown(arg))
        .map(|arg| argument(arg, false))
        .collect();
    let mut words = globals;
    if command.has_subcommands() {
        words.push("COMMAND".to_owned());
    }
    wrap(command.get_name(), &words, &mut out);
    for sub in command.get_subcommands() {
        leaves(sub, sub.get_name(), &mut out);
    }
    out
}

fn leaves(command: &clap::Command, path: &str, out: &mut String) {
    if command.get_name() == "help" || command.is_hide_set() {
        return;
    }
    if command.has_subcommands() {
        for sub in command.get_subcommands() {
            leaves(sub, &format!("{path} {}", sub.get_name()), out);
        }
        return;
    }
    let positionals = command
        .get_arguments()
        .filter(|arg| shown(arg) && arg.is_positional());
    let options = command
        .get_arguments()
        .filter(|arg| shown(arg) && !arg.is_positional());
    let words: Vec<String> = positionals
        .chain(options)
        .map(|arg| argument(arg, true))
        .collect();
    wrap(&format!("  {path}"), &words, out);
    if let Some(about) = command.get_about() {
        let about = about.to_string();
        let first = about.lines().next().unwrap_or_default().trim();
        if !first.is_empty() {
            let _ = writeln!(out, "      {first}");
        }
    }
}

/// The longest line before the arguments wrap onto a continuation line.
const WIDTH: usize = 100;

/// `head` and `words` on one line, continued on lines indented under the command when the
/// line would pass [`WIDTH`].
fn wrap(head: &str, words: &[String], out: &mut String) {
    let indent = " ".repeat(head.len() + 1);
    let mut line = head.to_owned();
    for word in words {
        if line.len() + 1 + word.len() > WIDTH && line.len() > indent.len() {
            let _ = writeln!(out, "{line}");
            line = indent.clone();
            line.push_str(word);
        } else {
            line.push(' ');
            line.push_str(word);
        }
    }
    let _ = writeln!(out, "{line}");
}

/// Shown in the reference: not hidden, not clap's own `--help`/`--version`, and not an
/// option inherited from the top level (those are listed once, on the first line).
fn shown(arg: &clap::Arg) -> bool {
    !arg.is_hide_set() && !matches!(arg.get_id().as_str(), "help" | "version")
}

/// `<SLUG>`, `[FILE]...`, `--tier <TIER>`, `[--json]`, `[--limit <KEY=VALUE>]...`.
fn argument(arg: &clap::Arg, in_subcommand: bool) -> String {
    let repeated = arg.get_num_args().is_some_and(|n| n.max_values() > 1)
        || matches!(
            arg.get_action(),
            clap::ArgAction::Append | clap::ArgAction::Count
        );
    let takes_value = arg.get_action().takes_values();
    let value = value_text(arg);
    let text = if arg.is_positional() {
        value
    } else {
        let name = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => arg.get_id().to_string(),
        };
        if takes_value {
            format!("{name} {value}")
        } else {
            name
        }
    };
    let required = arg.is_required_set() && (in_subcommand || !arg.is_global_set());
    let text = if required && arg.is_positional() {
        format!("<{text}>")
    } else if required {
        text
    } else {
        format!("[{text}]")
    };
    if repeated { format!("{text}...") } else { text }
}

/// `<VALUE>` for an option (the possible values when there are a few), `NAME` for a
/// positional (bracketed by the caller).
fn value_text(arg: &clap::Arg) -> String {
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|value| !value.is_hide_set())
        .map(|value| value.get_name().to_owned())
        .collect();
    if !possible.is_empty() && possible.len() <= 6 && arg.get_action().takes_values() {
        let joined = possible.join("|");
        return if arg.is_positional() {
            joined
        } else {
            format!("<{joined}>")
        };
    }
    let name = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string);
    if arg.is_positional() {
        name
    } else {
        format!("<{name}>")
    }
}

/// Compares the README's reference block for `command` with [`reference()`]; with
/// `MCPG_UPDATE_README=1` rewrites it instead. The error says how to fix a stale README.
pub fn check_readme(command: &clap::Command, readme: &Path) -> Result<(), String> {
    // Two binaries' checks may run on two threads of one test binary (`mcpg-ctl` and
    // `mcpg-license` share the `cli` crate): one read-compare-write at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let name = command.get_name();
    let begin = format!("<!-- cli-reference {name} begin -->\n");
    let end = format!("<!-- cli-reference {name} end -->");
    let text = std::fs::read_to_string(readme)
        .map_err(|e| format!("cannot read {}: {e}", readme.display()))?;
    let start = text
        .find(&begin)
        .map(|at| at + begin.len())
        .ok_or_else(|| format!("{} has no `{}` line", readme.display(), begin.trim_end()))?;
    let stop = text[start..]
        .find(&end)
        .map(|at| start + at)
        .ok_or_else(|| format!("{} has no `{end}` line", readme.display()))?;
    let expected = format!("```text\n{}```\n", reference(command));
    if text[start..stop] == expected {
        return Ok(());
    }
    if std::env::var_os(UPDATE_VARIABLE).is_some_and(|v| v == "1") {
        let updated = format!("{}{expected}{}", &text[..start], &text[stop..]);
        return std::fs::write(readme, updated)
            .map_err(|e| format!("cannot write {}: {e}", readme.display()));
    }
    let first_difference = text[start..stop]
        .lines()
        .zip(expected.lines())
        .find(|(have, want)| have != want)
        .map_or_else(
            || "the blocks differ in length".to_owned(),
            |(have, want)| format!("README: {have:?}\n  clap:   {want:?}"),
        );
    Err(format!(
        "the CLI reference of {name} in {} is stale:\n  {first_difference}\n\
         regenerate it with `{UPDATE_VARIABLE}=1 cargo test --workspace readme`",
        readme.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool() -> clap::Command {
        clap::Command::new("tool")
            .arg(
                clap::Arg::new("server")
                    .long("server")
                    .value_name("URL")
                    .global(true),
            )
            .subcommand(
                clap::Command::new("org").subcommand(
                    clap::Command::new("create")
                        .about("Create an org.\n\nMore words.")
                        .arg(clap::Arg::new("slug").required(true))
                        .arg(
                            clap::Arg::new("display-name")
                                .long("display-name")
                                .value_name("TEXT")
                                .required(true),
                        )
                        .arg(
                            clap::Arg::new("limit")
                                .long("limit")
                                .value_name("KEY=VALUE")
                                .action(clap::ArgAction::Append),
                        )
                        .arg(
                            clap::Arg::new("json")
                                .long("json")
                                .action(clap::ArgAction::SetTrue),
                        )
                        .arg(
                            clap::Arg::new("output")
                                .long("output")
                                .value_parser(["table", "json"]),
                        )
                        .arg(clap::Arg::new("secret").long("secret").hide(true)),
                ),
            )
            .subcommand(clap::Command::new("status").about("Show the status."))
    }

    #[test]
    fn the_reference_has_one_line_per_leaf_with_its_arguments_and_about() {
        assert_eq!(
            reference(&tool()),
            "tool [--server <URL>] COMMAND\n\
             \x20 org create <SLUG> --display-name <TEXT> [--limit <KEY=VALUE>]... [--json] [--output <table|json>]\n\
             \x20     Create an org.\n\
             \x20 status\n\
             \x20     Show the status.\n"
        );
    }

    #[test]
    fn a_stale_readme_is_named_and_a_current_one_passes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let readme = dir.path().join("README.md");
        let block = format!("```text\n{}```\n", reference(&tool()));
        let current = format!(
            "# Tool\n<!-- cli-reference tool begin -->\n{block}<!-- cli-reference tool end -->\nmore\n"
        );
        std::fs::write(&readme, &current).expect("write");
        assert_eq!(check_readme(&tool(), &readme), Ok(()));

        std::fs::write(&readme, current.replace("[--json]", "[--yaml]")).expect("write");
        let stale = check_readme(&tool(), &readme).expect_err("stale");
        assert!(
            stale.contains("[--yaml]") && stale.contains("[--json]"),
            "{stale}"
        );

        std::fs::write(&readme, "# Tool\n").expect("write");
        let missing = check_readme(&tool(), &readme).expect_err("no markers");
        assert!(
            missing.contains("<!-- cli-reference tool begin -->"),
            "{missing}"
        );
    }
}
