//! A check the binaries' tests share: every subcommand's `--help` shows examples.

/// The paths (`mcpg-ctl org list`) of every subcommand under `command` whose help has no
/// `Examples:` section; clap's generated `help` subcommand is skipped.
pub fn subcommands_without_examples(command: &clap::Command) -> Vec<String> {
    let mut missing = Vec::new();
    walk(command, command.get_name(), &mut missing);
    missing
}

fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let sub_path = format!("{path} {}", sub.get_name());
        let has_examples = [sub.get_after_help(), sub.get_after_long_help()]
            .into_iter()
            .flatten()
            .any(|text| text.to_string().contains("Examples:"));
        if !has_examples {
            missing.push(sub_path.clone());
        }
        walk(sub, &sub_path, missing);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subcommand_without_examples_is_named_by_its_path() {
        let command = clap::Command::new("tool")
            .subcommand(
                clap::Command::new("org")
                    .after_help("Examples:\n  tool org list")
                    .subcommand(clap::Command::new("list")),
            )
            .subcommand(clap::Command::new("keys").after_long_help("Examples:\n  tool keys"));
        assert_eq!(subcommands_without_examples(&command), ["tool org list"]);
    }
}
