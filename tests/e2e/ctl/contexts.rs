//! `mcpg-ctl login`, contexts and the order in which the server and token are chosen:
//! flags, then `MCPG_*` variables, then the named context, then the current one.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

use super::{Server, assert_one_error, ctl, stderr, stdout};

/// `mcpg-ctl` with the contexts file `config` and no server or token from the environment.
fn with_config(config: &Path) -> Command {
    let mut command = ctl();
    command.env("MCPG_CTL_CONFIG", config);
    command
}

/// The slugs `org list -o json` prints.
fn slugs(assert: &assert_cmd::assert::Assert) -> Vec<String> {
    let list: Value = serde_json::from_str(&stdout(assert)).expect("JSON");
    list.as_array()
        .expect("a list")
        .iter()
        .filter_map(|org| org["slug"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn login_saves_a_private_context_that_later_commands_use_and_flags_still_win() {
    let server = Server::start();
    for org in ["acme", "globex"] {
        server
            .ctl(["org", "create", org, "--display-name", org])
            .success();
    }
    let key = server.json(["token", "create", "ci", "--org", "acme"]);
    let org_key = key["token"].as_str().expect("org key").to_owned();
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("mcpg").join("config.toml");

    // The admin token on stdin, saved as context `lab`.
    let login = with_config(&config)
        .args(["login", "--server", &server.url, "--context", "lab"])
        .write_stdin(format!("{}\n", server.token))
        .assert()
        .success();
    assert!(stdout(&login).contains("context lab"), "{}", stdout(&login));
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&config), 0o600);
    assert_eq!(mode(config.parent().expect("dir")), 0o700);
    let saved = std::fs::read_to_string(&config).expect("readable");
    assert!(saved.contains("current = \"lab\""), "{saved}");

    // No --server, no --token: the current context is used.
    let all = with_config(&config)
        .args(["org", "list", "-o", "json"])
        .assert()
        .success();
    assert_eq!(slugs(&all), ["acme", "globex"]);

    // A token the server refuses is not saved.
    let refused = with_config(&config)
        .args(["login", "--server", &server.url, "--context", "bad"])
        .write_stdin("mcpg_pat_not_a_token\n")
        .assert();
    assert_one_error(refused, 1, "nothing was saved");
    assert!(
        !std::fs::read_to_string(&config)
            .expect("readable")
            .contains("bad")
    );

    // The org key as a second context, whose default name is the server's host.
    with_config(&config)
        .args(["login", "--server", &server.url])
        .write_stdin(org_key.clone())
        .assert()
        .success();
    let scoped = with_config(&config)
        .args(["org", "list", "-o", "json"])
        .assert()
        .success();
    assert_eq!(
        slugs(&scoped),
        ["acme"],
        "the org key sees its own org only"
    );

    // `context list` marks the current context and never shows a token.
    let listed = with_config(&config)
        .args(["context", "list"])
        .assert()
        .success();
    let table = stdout(&listed);
    assert!(
        !table.contains(&server.token) && !table.contains(&org_key),
        "{table}"
    );
    let current_line = table
        .lines()
        .find(|l| l.starts_with('*'))
        .expect("a current mark");
    assert!(current_line.contains("127.0.0.1"), "{table}");

    // --context beats the current context; MCPG_CONTEXT too.
    let named = with_config(&config)
        .args(["--context", "lab", "org", "list", "-o", "json"])
        .assert()
        .success();
    assert_eq!(slugs(&named), ["acme", "globex"]);
    let by_env = with_config(&config)
        .env("MCPG_CONTEXT", "lab")
        .args(["org", "list", "-o", "json"])
        .assert()
        .success();
    assert_eq!(slugs(&by_env), ["acme", "globex"]);

    // Switching the current context.
    with_config(&config)
        .args(["context", "use", "lab"])
        .assert()
        .success();
    let switched = with_config(&config)
        .args(["org", "list", "-o", "json"])
        .assert()
        .success();
    assert_eq!(slugs(&switched), ["acme", "globex"]);

    // Variables beat the context, and flags beat variables.
    let env_token = with_config(&config)
        .env("MCPG_TOKEN", &org_key)
        .args(["org", "list", "-o", "json"])
        .assert()
        .success();
    assert_eq!(slugs(&env_token), ["acme"]);
    let flag_token = with_config(&config)
        .env("MCPG_TOKEN", "mcpg_pat_wrong")
        .args(["org", "list", "-o", "json", "--token", &org_key])
        .assert()
        .success();
    assert_eq!(slugs(&flag_token), ["acme"]);
    let flag_server = with_config(&config)
        .args(["org", "list", "--server", "http://127.0.0.1:9"])
        .assert();
    assert_one_error(flag_server, 1, "cannot reach http://127.0.0.1:9");

    // login never takes the token from the command line.
    let argv = with_config(&config)
        .args(["login", "--server", &server.url, "--token", &org_key])
        .assert();
    assert_one_error(argv, 2, "standard input");

    // logout forgets the token: the server then refuses.
    with_config(&config).args(["logout"]).assert().success();
    assert!(
        !std::fs::read_to_string(&config)
            .expect("readable")
            .contains(&server.token)
    );
    let logged_out = with_config(&config).args(["org", "list"]).assert();
    assert_one_error(logged_out, 1, "401");

    // An unknown context is an error that lists the known ones; delete removes one.
    let unknown = with_config(&config)
        .args(["context", "use", "staging"])
        .assert();
    assert_one_error(unknown, 2, "known: 127.0.0.1, lab");
    with_config(&config)
        .args(["context", "delete", "lab", "-o", "json"])
        .assert()
        .success();
    let remaining = with_config(&config)
        .args(["context", "list", "-o", "json"])
        .assert()
        .success();
    let remaining: Value = serde_json::from_str(&stdout(&remaining)).expect("JSON");
    assert_eq!(remaining.as_array().map(Vec::len), Some(1), "{remaining}");
}

#[test]
fn a_wide_open_or_malformed_contexts_file_is_reported_in_words() {
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        "current = \"lab\"\n[contexts.lab]\nserver = \"http://127.0.0.1:9\"\ntoken = \"t\"\n",
    )
    .expect("write");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let listed = with_config(&config)
        .args(["context", "list"])
        .assert()
        .success();
    assert!(
        stderr(&listed).contains("warning:") && stderr(&listed).contains("0644"),
        "{}",
        stderr(&listed)
    );
    assert!(stdout(&listed).contains("lab"));

    std::fs::write(
        &config,
        "current = \"lab\"\n[contexts.lab]\nserver = http\n",
    )
    .expect("write");
    let broken = with_config(&config).args(["org", "list"]).assert();
    let err = stderr(&broken);
    assert_one_error(broken, 2, "config.toml");
    assert!(err.contains("line 3"), "{err}");
}
