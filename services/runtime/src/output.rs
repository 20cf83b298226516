//! The one output convention of the MCPG binaries: `-o, --output table|json`. Tables and
//! text are for people; JSON is for scripts and goes to stdout alone, while messages,
//! warnings and progress go to stderr.

/// How a command that prints data prints it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned tables and text, for people.
    #[default]
    Table,
    /// JSON on stdout, for scripts.
    Json,
}

impl Output {
    /// This format, or JSON when a command's older `--json` flag (kept as an alias) is set.
    pub fn or_json(self, json_alias: bool) -> Self {
        match json_alias {
            true => Output::Json,
            false => self,
        }
    }

    /// Whether JSON is asked for.
    pub fn is_json(self) -> bool {
        self == Output::Json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_alias_turns_any_format_into_json() {
        assert_eq!(Output::Table.or_json(true), Output::Json);
        assert_eq!(Output::Table.or_json(false), Output::Table);
        assert_eq!(Output::Json.or_json(false), Output::Json);
        assert!(Output::Json.is_json());
        assert!(!Output::default().is_json());
    }
}
