//! Which server `mcpg-ctl` talks to and with which token, in one order:
//! `--server`/`--token`/`--token-file` flags, then `MCPG_SERVER`/`MCPG_TOKEN`/
//! `MCPG_TOKEN_FILE`, then the context named by `--context` or `MCPG_CONTEXT`, then the
//! current context, then `http://127.0.0.1:8421` without a token.
//!
//! A context's token is only ever sent to that context's own server: when a flag or the
//! environment names another server, the token has to come from a flag or the environment
//! too.

use std::path::PathBuf;

use thiserror::Error;

use anyhow::Context as _;

use super::Client;
use super::config::{Context, CtlConfig};

/// The server used when nothing names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8421";

/// What the command line and the environment say (empty variables count as unset).
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `--server`.
    pub server_flag: Option<String>,
    /// `--token`.
    pub token_flag: Option<String>,
    /// `--token-file`.
    pub token_file_flag: Option<PathBuf>,
    /// `--context`.
    pub context_flag: Option<String>,
    /// `MCPG_SERVER`.
    pub server_env: Option<String>,
    /// `MCPG_TOKEN`.
    pub token_env: Option<String>,
    /// `MCPG_TOKEN_FILE`.
    pub token_file_env: Option<PathBuf>,
    /// `MCPG_CONTEXT`.
    pub context_env: Option<String>,
}

impl Inputs {
    /// The variables read from the process environment, beside the flags given.
    pub fn with_env(mut self) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        self.server_env = var("MCPG_SERVER");
        self.token_env = var("MCPG_TOKEN");
        self.token_file_env = var("MCPG_TOKEN_FILE").map(PathBuf::from);
        self.context_env = var("MCPG_CONTEXT");
        self
    }

    /// The context named by `--context`, else by `MCPG_CONTEXT`.
    pub fn named_context(&self) -> Option<&str> {
        self.context_flag.as_deref().or(self.context_env.as_deref())
    }
}

/// Where the token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The token itself.
    Value(String),
    /// A file holding it.
    File(PathBuf),
}

/// The server and token a command uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Base URL of the service.
    pub server: String,
    /// The token, if any.
    pub token: Option<TokenSource>,
}

/// A context that was named but is not in the file.
#[derive(Debug, Error)]
#[error("there is no context {name:?} in {file}{known}")]
pub struct UnknownContext {
    /// The name asked for.
    pub name: String,
    /// The contexts file.
    pub file: String,
    /// ", known: a, b" or nothing.
    known: String,
}

impl UnknownContext {
    /// The error for `name`, listing the contexts `config` has.
    pub fn new(name: &str, config: &CtlConfig, file: &std::path::Path) -> Self {
        let names: Vec<&str> = config.contexts.keys().map(String::as_str).collect();
        let known = match names.is_empty() {
            true => " (it has none; create one with `mcpg-ctl login --server URL`)".to_owned(),
            false => format!(" (known: {})", names.join(", ")),
        };
        Self {
            name: name.to_owned(),
            file: file.display().to_string(),
            known,
        }
    }
}

/// The context in use: the one named by `--context`/`MCPG_CONTEXT`, else the current one.
/// A name that is not in the file is an error.
pub fn selected_context<'a>(
    inputs: &Inputs,
    config: &'a CtlConfig,
    file: &std::path::Path,
) -> Result<Option<(&'a str, &'a Context)>, UnknownContext> {
    let Some(name) = inputs.named_context().or(config.current.as_deref()) else {
        return Ok(None);
    };
    match config.contexts.get_key_value(name) {
        Some((name, context)) => Ok(Some((name.as_str(), context))),
        None => Err(UnknownContext::new(name, config, file)),
    }
}

/// Resolves the server and token in the documented order.
pub fn resolve(
    inputs: &Inputs,
    config: &CtlConfig,
    file: &std::path::Path,
) -> Result<Target, UnknownContext> {
    let context = selected_context(inputs, config, file)?.map(|(_, c)| c);
    let server = inputs
        .server_flag
        .clone()
        .or_else(|| inputs.server_env.clone())
        .or_else(|| context.map(|c| c.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let explicit = inputs
        .token_flag
        .clone()
        .map(TokenSource::Value)
        .or_else(|| inputs.token_file_flag.clone().map(TokenSource::File))
        .or_else(|| inputs.token_env.clone().map(TokenSource::Value))
        .or_else(|| inputs.token_file_env.clone().map(TokenSource::File));
    let from_context = context
        .filter(|c| same_server(&c.server, &server))
        .and_then(|c| c.token.clone())
        .map(TokenSource::Value);
    Ok(Target {
        server,
        token: explicit.or(from_context),
    })
}

/// Two spellings of one server URL (a trailing slash or surrounding blanks aside).
pub fn same_server(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim().trim_end_matches('/').to_ascii_lowercase();
    norm(a) == norm(b)
}

/// The client for the server and token the flags, variables and contexts select.
pub(super) fn client_for(inputs: &Inputs) -> anyhow::Result<Client> {
    // The contexts file is only read when a context could matter: flags or variables that
    // name both the server and the token need no file (and tolerate a broken one).
    let has_token = inputs.token_flag.is_some()
        || inputs.token_file_flag.is_some()
        || inputs.token_env.is_some()
        || inputs.token_file_env.is_some();
    let has_server = inputs.server_flag.is_some() || inputs.server_env.is_some();
    let (loaded, path) = if has_token && has_server && inputs.named_context().is_none() {
        (CtlConfig::default(), PathBuf::new())
    } else {
        match super::config::default_path() {
            Ok(path) => (CtlConfig::load(&path)?, path),
            Err(_) => (CtlConfig::default(), PathBuf::new()),
        }
    };
    let resolved = resolve(inputs, &loaded, &path)?;
    let token = match resolved.token {
        Some(TokenSource::Value(token)) => Some(token.trim().to_owned()),
        Some(TokenSource::File(path)) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read token file {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    Ok(Client::new(&resolved.server, token)?)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config() -> CtlConfig {
        let mut config = CtlConfig {
            current: Some("prod".into()),
            ..CtlConfig::default()
        };
        for (name, server, token) in [
            ("prod", "https://prod.example.com", "tok-prod"),
            ("lab", "http://127.0.0.1:9000", "tok-lab"),
        ] {
            config.contexts.insert(
                name.into(),
                Context {
                    server: server.into(),
                    token: Some(token.into()),
                },
            );
        }
        config
    }

    fn resolve_with(inputs: Inputs) -> Target {
        resolve(&inputs, &config(), Path::new("ctl.toml")).expect("resolves")
    }

    fn value(token: &str) -> Option<TokenSource> {
        Some(TokenSource::Value(token.into()))
    }

    #[test]
    fn without_flags_the_current_context_is_used() {
        let target = resolve_with(Inputs::default());
        assert_eq!(target.server, "https://prod.example.com");
        assert_eq!(target.token, value("tok-prod"));
    }

    #[test]
    fn a_named_context_beats_the_current_one_and_the_flag_beats_the_variable() {
        let by_env = resolve_with(Inputs {
            context_env: Some("lab".into()),
            ..Inputs::default()
        });
        assert_eq!(by_env.server, "http://127.0.0.1:9000");
        assert_eq!(by_env.token, value("tok-lab"));
        let by_flag = resolve_with(Inputs {
            context_flag: Some("prod".into()),
            context_env: Some("lab".into()),
            ..Inputs::default()
        });
        assert_eq!(by_flag.token, value("tok-prod"));
    }

    #[test]
    fn flags_beat_variables_and_variables_beat_contexts() {
        let env_only = resolve_with(Inputs {
            server_env: Some("https://prod.example.com/".into()),
            token_env: Some("tok-env".into()),
            ..Inputs::default()
        });
        assert_eq!(env_only.server, "https://prod.example.com/");
        assert_eq!(env_only.token, value("tok-env"));
        let flags = resolve_with(Inputs {
            server_flag: Some("https://flag.example.com".into()),
            server_env: Some("https://env.example.com".into()),
            token_file_flag: Some("/run/token".into()),
            token_env: Some("tok-env".into()),
            ..Inputs::default()
        });
        assert_eq!(flags.server, "https://flag.example.com");
        assert_eq!(flags.token, Some(TokenSource::File("/run/token".into())));
        let token_flag = resolve_with(Inputs {
            token_flag: Some("tok-flag".into()),
            token_file_env: Some("/run/token".into()),
            ..Inputs::default()
        });
        assert_eq!(token_flag.token, value("tok-flag"));
    }

    #[test]
    fn a_context_token_is_never_sent_to_another_server() {
        let elsewhere = resolve_with(Inputs {
            server_flag: Some("https://other.example.com".into()),
            ..Inputs::default()
        });
        assert_eq!(elsewhere.server, "https://other.example.com");
        assert_eq!(elsewhere.token, None);
        let same = resolve_with(Inputs {
            server_env: Some("https://PROD.example.com/".into()),
            ..Inputs::default()
        });
        assert_eq!(same.token, value("tok-prod"));
    }

    #[test]
    fn with_no_context_the_default_server_is_used_without_a_token() {
        let target =
            resolve(&Inputs::default(), &CtlConfig::default(), Path::new("c")).expect("resolves");
        assert_eq!(target.server, DEFAULT_SERVER);
        assert_eq!(target.token, None);
    }

    #[test]
    fn an_unknown_context_is_an_error_listing_the_known_ones() {
        let inputs = Inputs {
            context_flag: Some("staging".into()),
            ..Inputs::default()
        };
        let error = resolve(&inputs, &config(), Path::new("/h/ctl.toml")).expect_err("unknown");
        let text = error.to_string();
        assert!(text.contains("\"staging\""), "{text}");
        assert!(text.contains("/h/ctl.toml"), "{text}");
        assert!(text.contains("lab, prod"), "{text}");
    }
}
