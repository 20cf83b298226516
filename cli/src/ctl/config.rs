//! `mcpg-ctl`'s own file of contexts: named servers with their tokens, and which one is
//! current. Where it lives, its format, and reading and writing it safely (mode 0600, in a
//! 0700 directory, replaced atomically).
//!
//! ```toml
//! current = "auth.example.com"
//!
//! [contexts."auth.example.com"]
//! server = "https://auth.example.com"
//! token = "mcpg_pat_…"
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::files::{self, FileError, SECRET_MODE};

/// The variable naming the file directly (tests, scripts).
pub const CONFIG_VAR: &str = "MCPG_CTL_CONFIG";

/// The largest contexts file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The contexts file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CtlConfig {
    /// The context used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// The contexts by name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One server and the token used with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Base URL of the mcpg-auth service.
    pub server: String,
    /// The API token; absent after `logout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Why the contexts file could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// Neither MCPG_CTL_CONFIG, XDG_CONFIG_HOME nor HOME says where it is.
    #[error("cannot tell where the contexts file is: set MCPG_CTL_CONFIG, XDG_CONFIG_HOME or HOME")]
    NoLocation,
    /// The file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file is not a valid contexts file (the message names the line).
    #[error("{} is not a valid mcpg-ctl contexts file: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        message: String,
    },
    /// The contexts file could not be written out.
    #[error("cannot encode the contexts file: {0}")]
    Encode(String),
}

/// Where the contexts file is: `$MCPG_CTL_CONFIG`, else `$XDG_CONFIG_HOME/mcpg/config.toml`,
/// else `~/.config/mcpg/config.toml`. `var` reads the environment (a parameter for tests).
pub fn config_path(var: impl Fn(&str) -> Option<String>) -> Result<PathBuf, ConfigError> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(path) = set(CONFIG_VAR) {
        return Ok(PathBuf::from(path));
    }
    // The XDG spec ignores a relative XDG_CONFIG_HOME.
    if let Some(dir) = set("XDG_CONFIG_HOME").filter(|d| Path::new(d).is_absolute()) {
        return Ok(Path::new(&dir).join("mcpg").join("config.toml"));
    }
    match set("HOME") {
        Some(home) => Ok(Path::new(&home).join(".config/mcpg/config.toml")),
        None => Err(ConfigError::NoLocation),
    }
}

/// The contexts file's path from the process environment.
pub fn default_path() -> Result<PathBuf, ConfigError> {
    config_path(|name| std::env::var(name).ok())
}

impl CtlConfig {
    /// Parses the file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|error| ConfigError::Malformed {
            path: path.to_owned(),
            message: error.to_string().trim_end().to_owned(),
        })
    }

    /// Reads the file at `path`; a missing file is an empty configuration. Warns on stderr
    /// when group or others may read it (it holds tokens).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bytes = match mcpg_runtime::read_bounded(path, MAX_CONFIG_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(FileError::Read {
                    path: path.to_owned(),
                    source,
                }
                .into());
            }
        };
        if let Some(mode) = files::loose_permissions(path) {
            eprintln!(
                "warning: {} holds API tokens but has mode {mode:04o}; run `chmod 600` on it",
                path.display()
            );
        }
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::Malformed {
            path: path.to_owned(),
            message: "not UTF-8 text".into(),
        })?;
        Self::parse(&text, path)
    }

    /// Writes the file at `path` with mode 0600 (its directory created with 0700): a
    /// temporary file beside it, synced, then renamed over it, so a reader sees the old or
    /// the new file and never half of one.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string(self).map_err(|e| ConfigError::Encode(e.to_string()))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        files::create_private_dir(dir)?;
        files::write_output(path, text.as_bytes(), SECRET_MODE, true)?;
        // The rename is durable once the directory is synced.
        let _ = File::open(dir).and_then(|d| d.sync_all());
        Ok(())
    }

    /// The context called `name`.
    pub fn context(&self, name: &str) -> Option<&Context> {
        self.contexts.get(name)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn sample() -> CtlConfig {
        let mut config = CtlConfig {
            current: Some("prod".into()),
            ..CtlConfig::default()
        };
        config.contexts.insert(
            "prod".into(),
            Context {
                server: "https://auth.example.com".into(),
                token: Some("mcpg_pat_x".into()),
            },
        );
        config.contexts.insert(
            "lab.local".into(),
            Context {
                server: "http://127.0.0.1:8421".into(),
                token: None,
            },
        );
        config
    }

    #[test]
    fn the_file_format_is_current_and_contexts_tables() {
        let text = "current = \"prod\"\n\n[contexts.prod]\nserver = \"https://auth.example.com\"\ntoken = \"mcpg_pat_x\"\n\n[contexts.\"lab.local\"]\nserver = \"http://127.0.0.1:8421\"\n";
        let parsed = CtlConfig::parse(text, Path::new("c.toml")).expect("valid");
        assert_eq!(parsed, sample());
        let written = toml::to_string(&sample()).expect("encodes");
        assert_eq!(
            CtlConfig::parse(&written, Path::new("c.toml")).expect("round trip"),
            sample()
        );
        assert!(written.starts_with("current = \"prod\""), "{written}");
        assert!(written.contains("[contexts.prod]"), "{written}");
    }

    #[test]
    fn a_malformed_file_names_the_file_and_the_line() {
        let text = "current = \"prod\"\n[contexts.prod]\nserver = https://x\n";
        let error = CtlConfig::parse(text, Path::new("/tmp/ctl.toml")).expect_err("malformed");
        let message = error.to_string();
        assert!(message.contains("/tmp/ctl.toml"), "{message}");
        assert!(message.contains("line 3"), "{message}");
        let unknown = CtlConfig::parse("curent = \"x\"\n", Path::new("c.toml"))
            .expect_err("unknown key")
            .to_string();
        assert!(unknown.contains("curent"), "{unknown}");
    }

    #[test]
    fn saved_files_are_private_and_replace_the_old_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mcpg").join("config.toml");
        sample().save(&path).expect("saved");
        let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
        let mut changed = sample();
        changed.current = Some("lab.local".into());
        changed.save(&path).expect("saved again");
        assert_eq!(CtlConfig::load(&path).expect("loads"), changed);
        let entries = std::fs::read_dir(path.parent().expect("dir"))
            .expect("dir")
            .count();
        assert_eq!(entries, 1, "no temporary file left behind");
        assert_eq!(
            CtlConfig::load(&dir.path().join("missing.toml")).expect("missing is empty"),
            CtlConfig::default()
        );
    }

    #[test]
    fn the_path_comes_from_mcpg_config_then_xdg_then_home() {
        const ALL: &[(&str, &str)] = &[
            ("MCPG_CTL_CONFIG", "/x/ctl.toml"),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/a"),
        ];
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            config_path(env(ALL)).expect("path"),
            Path::new("/x/ctl.toml")
        );
        assert_eq!(
            config_path(env(&ALL[1..])).expect("path"),
            Path::new("/xdg/mcpg/config.toml")
        );
        assert_eq!(
            config_path(env(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/home/a")])).expect("path"),
            Path::new("/home/a/.config/mcpg/config.toml")
        );
        assert!(config_path(env(&[])).is_err());
    }
}
