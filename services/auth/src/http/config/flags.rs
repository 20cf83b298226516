//! The command line of `mcpg-auth`: clap definitions of the subcommands and of every
//! flag (each also read from its `MCPG_*` variable, except a backup's file names).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::domain::build_info::LONG_VERSION;
use crate::domain::settings::LogFormat;

/// `mcpg-auth`: the MCPG license federation service.
#[derive(Debug, Parser)]
#[command(name = "mcpg-auth", version = LONG_VERSION, about)]
pub struct Cli {
    /// TOML configuration file (keys as the long flags, with `_` for `-`; `backup` and
    /// `restore` use only its database keys).
    #[arg(long, env = "MCPG_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory and database URLs, before or after the subcommand.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The subcommand with the flags given before or after it (`--config`, `--data-dir`,
    /// the database URLs) moved into its arguments.
    pub fn into_command(self) -> Command {
        let Cli {
            config,
            database,
            command,
        } = self;
        match command {
            Command::Serve(mut args) => {
                args.config = config;
                args.database = database;
                Command::Serve(args)
            }
            Command::Backup(mut args) => {
                args.config = config;
                args.database = database;
                Command::Backup(args)
            }
            Command::Restore(mut args) => {
                args.config = config;
                args.database = database;
                Command::Restore(args)
            }
            other => other,
        }
    }
}

const COMPLETION_EXAMPLE: &str = "\
Examples:
  mcpg-auth completion bash > /etc/bash_completion.d/mcpg-auth
  mcpg-auth completion zsh > \"${fpath[1]}/_mcpg-auth\"
  mcpg-auth completion fish > ~/.config/fish/completions/mcpg-auth.fish";

const MAN_EXAMPLE: &str = "\
Examples:
  mcpg-auth man --out /usr/local/share/man/man1
  man mcpg-auth-serve";

const SERVE_EXAMPLE: &str = "\
Examples:
  mcpg-auth serve
  mcpg-auth serve --data-dir /var/lib/mcpg --listen 0.0.0.0:8421 --ops-listen 127.0.0.1:8422
  mcpg-auth serve --config /etc/mcpg/auth.toml --subdomain-suffix mcpg.dev";

const BACKUP_EXAMPLE: &str = "\
Examples:
  mcpg-auth backup --out mcpg-backup.db
  mcpg-auth backup --data-dir /var/lib/mcpg --out /backups/mcpg-$(date +%F).db
  mcpg-auth backup --config /etc/mcpg/auth.toml --out mcpg-backup.db";

const RESTORE_EXAMPLE: &str = "\
Examples:
  mcpg-auth restore --from mcpg-backup.db
  mcpg-auth restore --data-dir /var/lib/mcpg --from /backups/mcpg-2026-12-01.db --force
  mcpg-auth restore --config /etc/mcpg/auth.toml --from mcpg-backup.db";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (creates the data directory, database, keys and bootstrap token on first start).
    #[command(after_help = SERVE_EXAMPLE)]
    Serve(Box<ServeArgs>),
    /// Write a consistent backup of the database to a file (0600), online.
    #[command(after_help = BACKUP_EXAMPLE)]
    Backup(BackupArgs),
    /// Restore a backup into an empty database (SQLite: a missing file, or --force).
    #[command(after_help = RESTORE_EXAMPLE)]
    Restore(RestoreArgs),
    /// Print a shell completion script to standard output.
    #[command(after_help = COMPLETION_EXAMPLE)]
    Completion(mcpg_runtime::shell::CompletionArgs),
    /// Write man pages, one per command and subcommand, into a directory.
    #[command(after_help = MAN_EXAMPLE)]
    Man(mcpg_runtime::shell::ManArgs),
}

/// Where the database is: the flags `serve`, `backup` and `restore` share, given before
/// or after the subcommand.
#[derive(Debug, Default, Args)]
pub struct DatabaseArgs {
    /// Directory for the SQLite database, development root, KEK [default: ./mcpg-data].
    #[arg(long, env = "MCPG_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://PATH` or `postgres://…` [default: sqlite in the data dir].
    /// On PostgreSQL, a role that owns nothing and has neither SUPERUSER nor BYPASSRLS.
    #[arg(long, env = "MCPG_DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// PostgreSQL URL of the schema owner: runs migrations and grants the service's role.
    #[arg(
        long,
        env = "MCPG_MIGRATE_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub migrate_database_url: Option<String>,
}

/// Flags of `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The database to back up (the global flags). On PostgreSQL, --database-url logs in
    /// as a role that reads every row: a backup role (mcpg_grant_backup_role), a global
    /// role or the owner.
    #[arg(skip)]
    pub database: DatabaseArgs,
    /// TOML configuration file (the global `--config`; only its database keys are used).
    #[arg(skip)]
    pub config: Option<PathBuf>,
    /// The backup file to write (replaced atomically; mode 0600).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Flags of `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The database to restore into (the global flags). On PostgreSQL the owner restores
    /// it: --migrate-database-url, else --database-url.
    #[arg(skip)]
    pub database: DatabaseArgs,
    /// TOML configuration file (the global `--config`; only its database keys are used).
    #[arg(skip)]
    pub config: Option<PathBuf>,
    /// The backup file to restore.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// SQLite: replace an existing database (kept as `<file>.before-restore-<unix time>`).
    #[arg(long)]
    pub force: bool,
}

/// Flags of `serve`. Every flag also reads the `MCPG_*` variable named in its help.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address the API listens on [default: 127.0.0.1:8421].
    #[arg(long, env = "MCPG_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address of the operations listener: /metrics (which names every org), /healthz,
    /// /readyz and /version; keep it reachable by Prometheus only [default: 127.0.0.1:8422].
    #[arg(long, env = "MCPG_OPS_LISTEN")]
    pub ops_listen: Option<SocketAddr>,
    /// Data directory and database URLs (the global flags).
    #[arg(skip)]
    pub database: DatabaseArgs,
    /// PostgreSQL URL of the role the cross-tenant paths (credential lookups, tenants
    /// apply, gauges) run as: registered by the owner (mcpg_grant_global_role, done at a
    /// start with --migrate-database-url) [default: the --migrate-database-url role].
    #[arg(long, env = "MCPG_GLOBAL_DATABASE_URL", hide_env_values = true)]
    pub global_database_url: Option<String>,
    /// Development only: let --database-url be an owner or superuser (and migrate with it).
    #[arg(long, env = "MCPG_ALLOW_OWNER_CONNECTION")]
    pub allow_owner_connection: bool,
    /// Requests per second per org when its license sets no `rps`; 0: unlimited [default: 100].
    #[arg(long, env = "MCPG_ORG_RPS")]
    pub org_rps: Option<u32>,
    /// Requests per second per global admin token on /v1/admin/… and /v1/orgs; 0: unlimited
    /// [default: 20].
    #[arg(long, env = "MCPG_ADMIN_RPS")]
    pub admin_rps: Option<u32>,
    /// Share (1-100 %) of its org's management budget one principal (API key, user,
    /// OIDC subject) may use; 100: no sub-limit [default: 50].
    #[arg(long, env = "MCPG_PRINCIPAL_RPS_PERCENT")]
    pub principal_rps_percent: Option<u32>,
    /// Subdomain routing: with `mcpg.dev`, a request to `acme.mcpg.dev` is for the org
    /// `acme`, and a path naming another org is 403 tenant_mismatch (TOML:
    /// `[tenancy.subdomain_routing] suffix = "mcpg.dev"`) [default: off].
    #[arg(long, env = "MCPG_SUBDOMAIN_SUFFIX")]
    pub subdomain_suffix: Option<String>,
    /// TOML configuration file (the global `--config`).
    #[arg(skip)]
    pub config: Option<PathBuf>,
    /// Public base URL of this service: `iss` of every token [default: `http://` and the
    /// address --listen bound, e.g. http://127.0.0.1:8421].
    #[arg(long, env = "MCPG_ISSUER")]
    pub issuer: Option<String>,
    /// At first start, write the bootstrap admin token to this file (0600) instead of stdout.
    #[arg(long, env = "MCPG_BOOTSTRAP_TOKEN_FILE")]
    pub bootstrap_token_file: Option<PathBuf>,
    /// Signing key certified by an offline root (PASERK k4.secret, sealed k4.secret-pw, or
    /// PEM); needs --certificate.
    #[arg(long, env = "MCPG_SIGNING_KEY", requires = "certificate")]
    pub signing_key: Option<PathBuf>,
    /// File holding the passphrase of a sealed --signing-key (PASERK k4.secret-pw). Default:
    /// the systemd credential `signing-key-passphrase` when $CREDENTIALS_DIRECTORY is set.
    #[arg(long, env = "MCPG_SIGNING_KEY_PASSPHRASE_FILE")]
    pub signing_key_passphrase_file: Option<PathBuf>,
    /// Issuer certificate (PASETO v4.public) of --signing-key; repeatable, one per root that
    /// certifies the key (the first is the primary; the variable takes a comma-separated
    /// list). Certificates not stored yet are added at start.
    #[arg(
        long,
        env = "MCPG_CERTIFICATE",
        requires = "signing_key",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub certificate: Vec<PathBuf>,
    /// Root public key (PASERK k4.public) that certificates and revocation lists may chain to,
    /// besides the compiled-in vendor roots (repeatable; the variable takes a comma-separated
    /// list).
    #[arg(
        long = "trusted-root",
        env = "MCPG_TRUSTED_ROOTS",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub trusted_roots: Vec<PathBuf>,
    /// File holding the 32-byte key-encryption key (64 hex chars) that seals signing keys at
    /// rest. The variable MCPG_KEK may hold the key itself. Default: `<data-dir>/kek`,
    /// generated on first start.
    #[arg(long, env = "MCPG_KEK_FILE")]
    pub kek_file: Option<PathBuf>,
    /// How long a new key is published before it signs, e.g. 10m [default: 10m].
    #[arg(long, env = "MCPG_KEY_PUBLISH_DELAY")]
    pub key_publish_delay: Option<String>,
    /// How often each replica reloads keys from the database, e.g. 30s [default: 30s].
    #[arg(long, env = "MCPG_KEY_RELOAD_INTERVAL")]
    pub key_reload_interval: Option<String>,
    /// How often each replica refreshes its heartbeat row and counts the replicas alive
    /// (a replica missing three beats is no longer counted); cluster-wide rate limits are
    /// divided by that count. The same on every replica, e.g. 2s [default: 2s].
    #[arg(long, env = "MCPG_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Option<String>,
    /// How long a gateway's credential → org/license lookup is cached, e.g. 5s [default: 5s].
    #[arg(long, env = "MCPG_GRANT_CACHE_TTL")]
    pub grant_cache_ttl: Option<String>,
    /// How often each org's audit chain head is signed as a checkpoint when it moved,
    /// e.g. 1h [default: 1h].
    #[arg(long, env = "MCPG_AUDIT_CHECKPOINT_INTERVAL")]
    pub audit_checkpoint_interval: Option<String>,
    /// How long a deleted org's archive (its export and audit chain) is kept, readable and
    /// restorable by global admins, before it is purged, e.g. 30d [default: 30d].
    #[arg(long, env = "MCPG_RETENTION")]
    pub retention: Option<String>,
    /// How long usage is kept per day before it is rolled up into months (at least 1d),
    /// e.g. 400d [default: 400d].
    #[arg(long, env = "MCPG_USAGE_RETENTION")]
    pub usage_retention: Option<String>,
    /// Per-request timeout, e.g. 10s [default: 10s].
    #[arg(long, env = "MCPG_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,
    /// How long a client may take to send a request's headers (and how long an idle
    /// keep-alive connection stays open), e.g. 10s [default: 10s]; slower ones are cut off.
    #[arg(long, env = "MCPG_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<String>,
    /// Requests in progress, across all routes, before new ones get 503 (health and
    /// metrics endpoints are never refused) [default: 1024].
    #[arg(long, env = "MCPG_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,
    /// Log format: `text` or `json` [default: text]. Filter with MCPG_LOG (e.g. `info`).
    #[arg(long, env = "MCPG_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Development and tests only: accept plain-http OIDC issuers and key sets on loopback
    /// addresses (e.g. http://127.0.0.1:8080) [default: off, https only].
    #[arg(long, env = "MCPG_OIDC_ALLOW_LOOPBACK")]
    pub oidc_allow_loopback: bool,
    /// How long an identity provider's fetched keys are used, e.g. 10m [default: 10m].
    #[arg(long, env = "MCPG_OIDC_JWKS_TTL")]
    pub oidc_jwks_ttl: Option<String>,
    /// Shortest time between two key fetches from one identity provider caused by unknown
    /// key ids, e.g. 60s [default: 60s].
    #[arg(long, env = "MCPG_OIDC_JWKS_REFETCH_INTERVAL")]
    pub oidc_jwks_refetch_interval: Option<String>,
    /// tenants.yaml to reconcile at start and whenever it changes (an invalid file stops
    /// a first start; once the database has orgs, it is logged and their state kept)
    /// [default: none].
    #[arg(long, env = "MCPG_TENANTS")]
    pub tenants: Option<PathBuf>,
    /// Delete managed orgs, workspaces and environments the tenants file no longer names.
    #[arg(long, env = "MCPG_TENANTS_PRUNE")]
    pub tenants_prune: bool,
    /// How often the tenants file is checked for changes, e.g. 2s [default: 1s].
    #[arg(long, env = "MCPG_TENANTS_POLL_INTERVAL")]
    pub tenants_poll_interval: Option<String>,
    /// Most orgs, workspaces, environments and API keys one tenants document (file or
    /// API) may declare; a plan may list twice as many changes [default: 10000].
    #[arg(long, env = "MCPG_TENANTS_MAX_OBJECTS")]
    pub tenants_max_objects: Option<usize>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_and_data_dir_reach_the_subcommand_from_before_or_after_it() {
        use std::path::Path;

        use clap::Parser;

        use super::Command;

        for args in [
            [
                "mcpg-auth",
                "backup",
                "--out",
                "b.db",
                "--config",
                "a.toml",
                "--data-dir",
                "d",
            ],
            [
                "mcpg-auth",
                "--config",
                "a.toml",
                "--data-dir",
                "d",
                "backup",
                "--out",
                "b.db",
            ],
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            let Command::Backup(backup) = cli.into_command() else {
                panic!("{args:?} is a backup");
            };
            assert_eq!(backup.config.as_deref(), Some(Path::new("a.toml")));
            assert_eq!(backup.database.data_dir.as_deref(), Some(Path::new("d")));
            assert_eq!(backup.out, Path::new("b.db"));
        }
        let serve = Cli::try_parse_from(["mcpg-auth", "serve", "--config", "s.toml"])
            .expect("parses")
            .into_command();
        let Command::Serve(serve) = serve else {
            panic!("a serve");
        };
        assert_eq!(serve.config.as_deref(), Some(Path::new("s.toml")));
    }

    #[test]
    fn readme_cli_reference_is_current() {
        let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        if let Err(stale) = mcpg_runtime::reference::check_readme(&Cli::command(), &readme) {
            panic!("{stale}");
        }
    }

    #[test]
    fn every_subcommand_has_examples() {
        let missing = mcpg_runtime::help::subcommands_without_examples(&Cli::command());
        assert!(
            missing.is_empty(),
            "no Examples: in the help of {missing:#?}"
        );
    }
}
