//! `mcpg-ctl login`, `logout` and `context list|use|delete`: saving servers and their
//! tokens as named contexts in the contexts file ([`super::config`]).

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::Client;
use super::commands::Printer;
use super::config::{Context, CtlConfig};
use super::output::Column;
use super::target::{Inputs, UnknownContext, selected_context};

/// The longest token read from standard input.
const MAX_TOKEN_BYTES: u64 = 16 * 1024;

const CONTEXT_COLUMNS: &[Column] = &[
    ("current", "marker"),
    ("name", "name"),
    ("server", "server"),
    ("token", "token"),
];

pub(super) const LOGIN_EXAMPLE: &str = "\
Examples:
  mcpg-ctl login --server https://auth.example.com < admin.token
  mcpg-ctl login --server http://127.0.0.1:8421 --context lab   # asks for the token
  mcpg-ctl org list   # now uses the saved context";

pub(super) const LOGOUT_EXAMPLE: &str = "\
Examples:
  mcpg-ctl logout
  mcpg-ctl logout --context lab";

pub(super) const CONTEXT_EXAMPLE: &str = "\
Examples:
  mcpg-ctl context list
  mcpg-ctl context use lab
  mcpg-ctl context delete old-lab";

const CONTEXT_LIST_EXAMPLE: &str = "\
Examples:
  mcpg-ctl context list
  mcpg-ctl context list -o json";

const CONTEXT_USE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl context use lab
  mcpg-ctl --context prod org list   # one command against another context";

const CONTEXT_DELETE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl context delete old-lab";

/// `context` subcommands.
#[derive(Debug, Subcommand)]
pub(super) enum ContextCommand {
    /// List the saved contexts; `*` marks the current one (tokens are never shown).
    #[command(after_help = CONTEXT_LIST_EXAMPLE)]
    List,
    /// Make NAME the current context.
    #[command(after_help = CONTEXT_USE_EXAMPLE)]
    Use {
        /// The context's name.
        name: String,
    },
    /// Delete the context NAME with its token.
    #[command(after_help = CONTEXT_DELETE_EXAMPLE)]
    Delete {
        /// The context's name.
        name: String,
    },
}

/// `login`: reads a token from standard input (or asks for it without echo on a terminal),
/// checks it against the server, and saves server and token as a context made current.
pub(super) fn login(inputs: &Inputs, file: &Path, out: &Printer) -> anyhow::Result<()> {
    if inputs.token_flag.is_some() || inputs.token_file_flag.is_some() {
        bail!(
            "login does not take --token or --token-file: pipe the token on standard input \
             (`mcpg-ctl login --server URL < token-file`) or type it when asked"
        );
    }
    let mut config = CtlConfig::load(file)?;
    let named = inputs.named_context();
    let server = match (&inputs.server_flag, &inputs.server_env) {
        (Some(server), _) | (None, Some(server)) => server.clone(),
        (None, None) => match named.and_then(|n| config.context(n)) {
            Some(context) => context.server.clone(),
            None => bail!("login needs --server URL (or MCPG_SERVER)"),
        },
    };
    // Checks the URL's syntax before asking for anything.
    Client::new(&server, None)?;
    let name = match named {
        Some(name) => name.to_owned(),
        None => host_of(&server)?,
    };
    let token = read_token(&server)?;
    let client = Client::new(&server, Some(token.clone()))?;
    client
        .call(Method::GET, "/v1/orgs?limit=1", None)
        .with_context(|| format!("the token was not accepted by {server}; nothing was saved"))?;
    let server = server.trim().trim_end_matches('/').to_owned();
    config.contexts.insert(
        name.clone(),
        Context {
            server: server.clone(),
            token: Some(token),
        },
    );
    config.current = Some(name.clone());
    config.save(file)?;
    out.done(
        &format!(
            "signed in to {server}; saved as context {name} (now current) in {}",
            file.display()
        ),
        &json!({"context": name, "server": server, "file": file.display().to_string()}),
    );
    Ok(())
}

/// `logout`: removes the token of the named (or current) context; the context stays.
pub(super) fn logout(inputs: &Inputs, file: &Path, out: &Printer) -> anyhow::Result<()> {
    let mut config = CtlConfig::load(file)?;
    let Some((name, _)) = selected_context(inputs, &config, file)? else {
        bail!("there is no current context to log out of; name one with --context");
    };
    let name = name.to_owned();
    let had_token = config
        .contexts
        .get_mut(&name)
        .and_then(|c| c.token.take())
        .is_some();
    config.save(file)?;
    let message = match had_token {
        true => format!("removed the token of context {name}"),
        false => format!("context {name} had no token"),
    };
    out.done(&message, &json!({"context": name, "removed": had_token}));
    Ok(())
}

/// `context list|use|delete`.
pub(super) fn context(file: &Path, out: &Printer, command: ContextCommand) -> anyhow::Result<()> {
    let mut config = CtlConfig::load(file)?;
    match command {
        ContextCommand::List => {
            out.list(&list(&config), CONTEXT_COLUMNS);
            return Ok(());
        }
        ContextCommand::Use { name } => {
            if config.context(&name).is_none() {
                return Err(UnknownContext::new(&name, &config, file).into());
            }
            config.current = Some(name.clone());
            config.save(file)?;
            out.done(
                &format!("current context is now {name}"),
                &json!({"current": name}),
            );
        }
        ContextCommand::Delete { name } => {
            if config.contexts.remove(&name).is_none() {
                return Err(UnknownContext::new(&name, &config, file).into());
            }
            if config.current.as_deref() == Some(name.as_str()) {
                config.current = None;
            }
            config.save(file)?;
            out.done(
                &format!("deleted context {name}"),
                &json!({"deleted": name}),
            );
        }
    }
    Ok(())
}

/// The contexts as JSON rows, without their tokens.
fn list(config: &CtlConfig) -> Value {
    let rows: Vec<Value> = config
        .contexts
        .iter()
        .map(|(name, context)| {
            let current = config.current.as_deref() == Some(name.as_str());
            json!({
                "name": name,
                "server": context.server,
                "current": current,
                "marker": if current { "*" } else { "" },
                "token": if context.token.is_some() { "saved" } else { "none" },
                "has_token": context.token.is_some(),
            })
        })
        .collect();
    Value::Array(rows)
}

/// The default context name: the server's host.
fn host_of(server: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(server.trim())
        .with_context(|| format!("--server {server:?} is not a URL"))?;
    match url.host_str() {
        Some(host) if !host.is_empty() => Ok(host.to_owned()),
        _ => bail!("--server {server:?} names no host"),
    }
}

/// The token from standard input when it is not a terminal, else asked for without echo.
fn read_token(server: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let token = if stdin.is_terminal() {
        rpassword::prompt_password(format!("API token for {server}: "))
            .context("cannot read the token from the terminal")?
    } else {
        let mut text = String::new();
        stdin
            .lock()
            .take(MAX_TOKEN_BYTES + 1)
            .read_to_string(&mut text)
            .context("cannot read the token from standard input (is it text?)")?;
        if text.len() as u64 > MAX_TOKEN_BYTES {
            bail!("standard input holds more than {MAX_TOKEN_BYTES} bytes: not a token");
        }
        text
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!("no token given (standard input was empty)");
    }
    if token.chars().any(char::is_whitespace) {
        bail!("the token holds spaces or several lines: give exactly one token");
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_context_name_is_the_servers_host() {
        assert_eq!(
            host_of("https://auth.example.com:8443/").expect("host"),
            "auth.example.com"
        );
        assert_eq!(host_of("http://127.0.0.1:8421").expect("host"), "127.0.0.1");
        assert!(host_of("not a url").is_err());
    }

    #[test]
    fn context_lists_never_show_tokens_and_mark_the_current_one() {
        let mut config = CtlConfig {
            current: Some("b".into()),
            ..CtlConfig::default()
        };
        for name in ["a", "b"] {
            config.contexts.insert(
                name.into(),
                Context {
                    server: format!("https://{name}.example.com"),
                    token: Some(format!("secret-{name}")),
                },
            );
        }
        let rows = list(&config);
        assert!(!rows.to_string().contains("secret-"), "{rows}");
        assert_eq!(rows[0]["current"], false);
        assert_eq!(rows[1]["current"], true);
        assert_eq!(rows[1]["marker"], "*");
    }
}
