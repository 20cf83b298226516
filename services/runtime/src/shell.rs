//! Shell completions and man pages generated from a binary's clap definition, so that the
//! four binaries share one `completion SHELL` and one `man --out DIR` instead of four copies.
//!
//! A binary adds two subcommands taking [`CompletionArgs`] and [`ManArgs`] and calls
//! [`print_completion`] or [`write_man_pages`] with its own `Cli::command()`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The shells a completion script can be generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// GNU Bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
    /// Elvish.
    Elvish,
    /// PowerShell.
    Powershell,
}

impl Shell {
    fn generator(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
            Shell::Elvish => clap_complete::Shell::Elvish,
            Shell::Powershell => clap_complete::Shell::PowerShell,
        }
    }
}

/// Arguments of `completion`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompletionArgs {
    /// The shell to generate the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Arguments of `man`.
#[derive(Debug, Clone, clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages to (created if missing); existing pages are replaced.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Writes the completion script of `command` for `shell` to `out`.
pub fn write_completion(command: clap::Command, shell: Shell, out: &mut dyn Write) {
    let mut command = command;
    let name = command.get_name().to_owned();
    clap_complete::generate(shell.generator(), &mut command, name, out);
}

/// Prints the completion script of `command` for `shell` on stdout.
pub fn print_completion(command: clap::Command, shell: Shell) {
    write_completion(command, shell, &mut io::stdout().lock());
}

/// Writes one man page (section 1) for `command` and one for each of its subcommands, at
/// any depth (`mcpg-ctl.1`, `mcpg-ctl-org.1`, `mcpg-ctl-org-create.1`, …), into `dir`.
/// Hidden subcommands and clap's `help` get none. Returns the files written, in order.
pub fn write_man_pages(command: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut command = command.disable_help_subcommand(true);
    // Building sets every subcommand's display name to its full path (`mcpg-ctl-org-create`).
    command.build();
    let mut written = Vec::new();
    write_pages(command, dir, &mut written)?;
    Ok(written)
}

fn write_pages(command: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> io::Result<()> {
    let man = clap_mangen::Man::new(command.clone());
    let mut page = Vec::new();
    man.render(&mut page)?;
    let path = dir.join(man.get_filename());
    fs::write(&path, page)?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool() -> clap::Command {
        clap::Command::new("tool")
            .version("1.0")
            .arg(clap::Arg::new("server").long("server").global(true))
            .subcommand(
                clap::Command::new("org")
                    .subcommand(clap::Command::new("create").about("Create an org")),
            )
            .subcommand(clap::Command::new("secret").hide(true))
    }

    #[test]
    fn completions_name_the_subcommands_for_every_shell() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::Powershell,
        ] {
            let mut out = Vec::new();
            write_completion(tool(), shell, &mut out);
            let script = String::from_utf8(out).expect("UTF-8");
            assert!(script.contains("create"), "{shell:?}: {script}");
            assert!(script.contains("server"), "{shell:?}: {script}");
        }
    }

    #[test]
    fn man_pages_are_written_per_command_and_subcommand() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("man1");
        let written = write_man_pages(tool(), &out).expect("pages written");
        let mut names: Vec<String> = written
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        names.sort();
        assert_eq!(names, ["tool-org-create.1", "tool-org.1", "tool.1"]);
        let page = fs::read_to_string(out.join("tool-org-create.1")).expect("page");
        assert!(page.contains(".TH tool-org-create 1"), "{page}");
        assert!(page.contains("Create an org"), "{page}");
    }
}
