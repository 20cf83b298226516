//! `mcpg-ctl`: the operator CLI over the `mcpg-auth` management API.
//!
//! Arguments are parsed by clap, turned into one HTTP call (or two), and the answer is
//! printed as a table or, with `--output json`, as the server's JSON.

mod access;
mod archives;
mod audit;
mod client;
mod commands;
mod config;
mod contexts;
mod fleet;
mod gateways;
mod impersonate;
mod keys;
mod oidc;
mod output;
mod plugin_sets;
mod target;
mod tenants;
mod usage;
mod usage_import;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand};
use mcpg_license_core::{EntitlementId, Tier};
use mcpg_runtime::output::Output;

use keys::KeysCommand;

pub use client::{Client, ClientError};

/// Exit code when the server refused or could not be reached.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for usage errors and bad local input.
pub const EXIT_USAGE: u8 = 2;

const EXAMPLES: &str = "\
Examples:
  export MCPG_SERVER=http://127.0.0.1:8421 MCPG_TOKEN=$(cat ./mcpg-data/bootstrap.token)
  mcpg-ctl org create acme-corp --display-name \"Acme, Inc.\"
  mcpg-ctl license set acme-corp --tier team --entitlement plugin:policy.cedar --limit max_gateways=20 --valid-for 365d
  mcpg-ctl workspace create acme-corp/platform-team
  mcpg-ctl env create acme-corp/platform-team/prod
  mcpg-ctl gateway register acme-corp/platform-team/prod edge-1 --credential-file gw.credential
  mcpg-ctl rbac grant alice@acme.com operator --on workspace/acme-corp/platform-team
  mcpg-ctl user token create alice@acme.com --org acme-corp
  mcpg-ctl org oidc set acme-corp --issuer https://acme.eu.auth0.com/ --audience mcpg --tenant-claim org_id --tenant-value org_123 --role-claim https://mcpg.dev/roles --role-map mcpg-admins=admin
  mcpg-ctl keys rotate
  mcpg-ctl tenants apply -f tenants.yaml --dry-run
  mcpg-ctl plugin-set apply -f platform-team.yaml
  mcpg-ctl plugin-set show acme-corp/platform-team/prod
  mcpg-ctl keys import --signing-key next.secret.paserk --certificate next.cert
  mcpg-ctl keys certificate add k4.pid.… --file issuer-root-2027.cert
  mcpg-ctl keys certificate remove k4.pid.… cert_…
  mcpg-ctl revocations upload revocations-0002.paseto
  mcpg-ctl org list --output json
  mcpg-ctl impersonate acme-corp --reason \"ticket 4711\" --for 30m --out acme.token
  mcpg-ctl audit export acme-corp --out acme.audit.ndjson
  mcpg-ctl audit checkpoint acme-corp --sign --out acme.checkpoint
  mcpg-ctl audit verify --file acme.audit.ndjson --checkpoint acme.checkpoint --trust k4.public.…
  mcpg-ctl usage show acme-corp --by month --group environment
  mcpg-ctl usage export --month 2026-11 -o csv > usage-2026-11.csv
  mcpg-ctl usage import usage-2026-11.json acme-corp

Exit codes: 0 done, 1 the server refused or could not be reached, or an audit chain did\nnot verify, 2 usage error.";

const ORG_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org create acme-corp --display-name \"Acme, Inc.\"
  mcpg-ctl org list --output json
  mcpg-ctl org suspend acme-corp";

const WORKSPACE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl workspace create acme-corp/platform-team
  mcpg-ctl workspace list acme-corp
  mcpg-ctl workspace delete acme-corp/platform-team --cascade";

const ENV_EXAMPLE: &str = "\
Examples:
  mcpg-ctl env create acme-corp/platform-team/prod
  mcpg-ctl env list acme-corp/platform-team
  mcpg-ctl env delete acme-corp/platform-team/prod --cascade";

const LICENSE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl license set acme-corp --tier team --entitlement plugin:policy.cedar --limit max_gateways=20
  mcpg-ctl license show acme-corp
  mcpg-ctl license revoke acme-corp";

const GATEWAY_EXAMPLE: &str = "\
Examples:
  mcpg-ctl gateway register acme-corp/platform-team/prod edge-1 --credential-file edge-1.credential
  mcpg-ctl gateway list acme-corp/platform-team/prod
  mcpg-ctl gateway revoke acme-corp/platform-team/prod edge-1";

const KEYS_EXAMPLE: &str = "\
Examples:
  mcpg-ctl keys list
  mcpg-ctl keys rotate
  mcpg-ctl keys import --signing-key next.secret.paserk --certificate next.cert";

const REVOCATIONS_EXAMPLE: &str = "\
Examples:
  mcpg-ctl revocations upload revocations-0002.paseto
  mcpg-ctl revocations show";

const RBAC_EXAMPLE: &str = "\
Examples:
  mcpg-ctl rbac grant alice@acme.com operator --on workspace/acme-corp/platform-team
  mcpg-ctl rbac list acme-corp
  mcpg-ctl rbac revoke alice@acme.com operator --on workspace/acme-corp/platform-team";

const USER_EXAMPLE: &str = "\
Examples:
  mcpg-ctl user token create alice@acme.com --org acme-corp --out alice.token
  mcpg-ctl user token list alice@acme.com --org acme-corp";

const TOKEN_EXAMPLE: &str = "\
Examples:
  mcpg-ctl token create ops-admin --out ops-admin.token
  mcpg-ctl token create acme-ci --org acme-corp --out acme-ci.token
  mcpg-ctl token list";

const TENANTS_EXAMPLE: &str = "\
Examples:
  mcpg-ctl tenants apply -f tenants.yaml --dry-run
  mcpg-ctl tenants apply -f tenants.yaml
  mcpg-ctl tenants status";

const AUDIT_EXAMPLE: &str = "\
Examples:
  mcpg-ctl audit list acme-corp --action workspace.create
  mcpg-ctl audit verify acme-corp
  mcpg-ctl audit export acme-corp --out acme.audit.ndjson";

const PLUGIN_SET_EXAMPLE: &str = "\
Examples:
  mcpg-ctl plugin-set apply -f platform-team.yaml
  mcpg-ctl plugin-set show acme-corp/platform-team/prod
  mcpg-ctl plugin-set delete acme-corp/platform-team/prod";

const USAGE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl usage show acme-corp --from 2026-11-01 --to 2026-11-30 --group environment
  mcpg-ctl usage export --month 2026-11 -o csv > usage-2026-11.csv
  mcpg-ctl usage import usage-2026-11.json acme-corp";

/// `-o, --output`: the MCPG binaries' formats, and CSV for the usage reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Aligned tables and text, for people.
    #[default]
    Table,
    /// JSON on stdout, for scripts.
    Json,
    /// Comma-separated values with a header line (`usage show`, `usage export`).
    Csv,
}

impl Format {
    /// The common format a command prints in (CSV is decided by the usage commands).
    fn base(self) -> Output {
        match self {
            Format::Json => Output::Json,
            Format::Table | Format::Csv => Output::Table,
        }
    }
}

const ORG_CREATE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org create acme-corp --display-name \"Acme, Inc.\"
  mcpg-ctl org create acme-corp --display-name \"Acme, Inc.\" --routing-name acme
  mcpg-ctl org create acme-corp --display-name \"Acme, Inc.\" --trial-until 2027-01-31T00:00:00Z";

const ORG_SET_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org set acme-corp --routing-name acme --namespace mcpg-acme
  mcpg-ctl org set acme-corp --display-name \"Acme Corporation\" --catalog-file /etc/mcpg/catalog.yaml
  mcpg-ctl org set acme-corp --unset namespace --unset catalog-file";

const ORG_LIST_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org list
  mcpg-ctl org list --output json";

const ORG_GET_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org get acme-corp
  mcpg-ctl org get acme-corp -o json";

const ORG_SUSPEND_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org suspend acme-corp
  mcpg-ctl org get acme-corp   # status: suspended";

const ORG_RESUME_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org resume acme-corp
  mcpg-ctl org get acme-corp   # status: active";

const ORG_DELETE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org delete acme-corp
  mcpg-ctl org delete acme-corp --cascade          # asks for the slug
  mcpg-ctl org delete acme-corp --cascade --yes    # scripts, CI";

const ORG_OIDC_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org oidc set acme-corp --issuer https://acme.eu.auth0.com/ --audience mcpg --tenant-claim org_id --role-claim https://mcpg.dev/roles --role-map mcpg-admins=admin
  mcpg-ctl org oidc show acme-corp
  mcpg-ctl org oidc delete acme-corp";

const WORKSPACE_CREATE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl workspace create acme-corp/platform-team
  mcpg-ctl workspace create acme-corp/data-team";

const WORKSPACE_LIST_EXAMPLE: &str = "\
Examples:
  mcpg-ctl workspace list acme-corp
  mcpg-ctl workspace list acme-corp -o json";

const WORKSPACE_DELETE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl workspace delete acme-corp/platform-team
  mcpg-ctl workspace delete acme-corp/platform-team --cascade";

const ENV_CREATE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl env create acme-corp/platform-team/prod
  mcpg-ctl env create acme-corp/platform-team/staging";

const ENV_LIST_EXAMPLE: &str = "\
Examples:
  mcpg-ctl env list acme-corp/platform-team
  mcpg-ctl env list acme-corp/platform-team -o json";

const ENV_DELETE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl env delete acme-corp/platform-team/staging
  mcpg-ctl env delete acme-corp/platform-team/prod --cascade";

const LICENSE_SET_EXAMPLE: &str = "\
Examples:
  mcpg-ctl license set acme-corp --tier team
  mcpg-ctl license set acme-corp --tier team --entitlement plugin:policy.cedar --limit max_gateways=20 --valid-for 365d
  mcpg-ctl license set acme-corp --tier enterprise --valid-from 2027-01-01T00:00:00Z --force";

const LICENSE_SHOW_EXAMPLE: &str = "\
Examples:
  mcpg-ctl license show acme-corp
  mcpg-ctl license show acme-corp -o json";

const LICENSE_REVOKE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl license revoke acme-corp
  mcpg-ctl license show acme-corp";

const GATEWAY_REGISTER_EXAMPLE: &str = "\
Examples:
  mcpg-ctl gateway register acme-corp/platform-team/prod edge-1
  mcpg-ctl gateway register acme-corp/platform-team/prod edge-1 --credential-file edge-1.credential
  mcpg-ctl gateway register acme-corp/platform-team/prod edge --count 5000 --credentials-file fleet.jsonl";

const GATEWAY_LIST_EXAMPLE: &str = "\
Examples:
  mcpg-ctl gateway list acme-corp/platform-team/prod
  mcpg-ctl gateway list acme-corp/platform-team/prod -o json";

const GATEWAY_SHOW_EXAMPLE: &str = "\
Examples:
  mcpg-ctl gateway show acme-corp/platform-team/prod edge-1
  mcpg-ctl gateway show acme-corp/platform-team/prod 0193f2ab-7c1d-7e3a-9b2f-0c4d5e6f7a8b -o json";

const GATEWAY_REVOKE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl gateway revoke acme-corp/platform-team/prod edge-1
  mcpg-ctl gateway revoke acme-corp/platform-team/prod 0193f2ab-7c1d-7e3a-9b2f-0c4d5e6f7a8b
  mcpg-ctl gateway register acme-corp/platform-team/prod edge-1   # its replacement";

const TOKEN_CREATE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl token create ops-admin --out ops-admin.token
  mcpg-ctl token create acme-ci --org acme-corp
  mcpg-ctl token create acme-ci --org acme-corp --out acme-ci.token";

const TOKEN_LIST_EXAMPLE: &str = "\
Examples:
  mcpg-ctl token list
  mcpg-ctl token list -o json";

const TOKEN_REVOKE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl token list   # the id
  mcpg-ctl token revoke 0b6f…";

const REVOCATIONS_UPLOAD_EXAMPLE: &str = "\
Examples:
  mcpg-ctl revocations upload revocations-0002.paseto
  mcpg-ctl revocations show";

const REVOCATIONS_SHOW_EXAMPLE: &str = "\
Examples:
  mcpg-ctl revocations show
  mcpg-ctl revocations show -o json";

const COMPLETION_EXAMPLE: &str = "\
Examples:
  mcpg-ctl completion bash > /etc/bash_completion.d/mcpg-ctl
  mcpg-ctl completion zsh > \"${fpath[1]}/_mcpg-ctl\"
  mcpg-ctl completion fish > ~/.config/fish/completions/mcpg-ctl.fish";

const MAN_EXAMPLE: &str = "\
Examples:
  mcpg-ctl man --out /usr/local/share/man/man1
  man mcpg-ctl-org-create";

/// Operate an mcpg-auth federation service: orgs, licenses, workspaces, environments,
/// gateways and signing keys.
#[derive(Debug, Parser)]
#[command(name = "mcpg-ctl", version = crate::VERSION, after_help = EXAMPLES)]
pub struct Cli {
    /// Base URL of the mcpg-auth service [env: MCPG_SERVER; else the context's server; else
    /// http://127.0.0.1:8421].
    #[arg(long, global = true, value_name = "URL")]
    server: Option<String>,
    /// API token (mcpg_pat_… or the bootstrap token) [env: MCPG_TOKEN; else the context's
    /// token]. Prefer `login` or the variable, so the token does not show in the process list.
    #[arg(long, global = true)]
    token: Option<String>,
    /// Read the API token from this file instead [env: MCPG_TOKEN_FILE].
    #[arg(long, global = true, conflicts_with = "token", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Use this saved context instead of the current one [env: MCPG_CONTEXT]; for `login`,
    /// the name to save it under [default: the server's host].
    #[arg(long, global = true, value_name = "NAME")]
    context: Option<String>,
    /// Output format (csv: `usage show` and `usage export` only).
    #[arg(long, short, value_enum, default_value_t = Format::Table, global = true)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Organizations (tenants).
    #[command(subcommand)]
    #[command(after_help = ORG_EXAMPLE)]
    Org(OrgCommand),
    /// Workspaces of an org: ORG/WS.
    #[command(subcommand)]
    #[command(after_help = WORKSPACE_EXAMPLE)]
    Workspace(WorkspaceCommand),
    /// Environments of a workspace: ORG/WS/ENV.
    #[command(subcommand)]
    #[command(after_help = ENV_EXAMPLE)]
    Env(EnvCommand),
    /// The license of an org.
    #[command(subcommand)]
    #[command(after_help = LICENSE_EXAMPLE)]
    License(LicenseCommand),
    /// Gateway instances of an environment and their credentials.
    #[command(subcommand)]
    #[command(after_help = GATEWAY_EXAMPLE)]
    Gateway(GatewayCommand),
    /// The service's signing keys.
    #[command(subcommand)]
    #[command(after_help = KEYS_EXAMPLE)]
    Keys(KeysCommand),
    /// The revocation list the service serves to gateways.
    #[command(subcommand)]
    #[command(after_help = REVOCATIONS_EXAMPLE)]
    Revocations(RevocationsCommand),
    /// Role bindings: admin on org/ORG, operator on workspace/ORG/WS, viewer on env/ORG/WS/ENV.
    #[command(subcommand)]
    #[command(after_help = RBAC_EXAMPLE)]
    Rbac(access::RbacCommand),
    /// Users' personal API tokens.
    #[command(subcommand)]
    #[command(after_help = USER_EXAMPLE)]
    User(access::UserCommand),
    /// Global admin tokens and org API keys (global admin only).
    #[command(subcommand)]
    #[command(after_help = TOKEN_EXAMPLE)]
    Token(AdminTokenCommand),
    /// Tenants as code: apply a tenants.yaml (orgs, licenses, workspaces, environments,
    /// API keys).
    #[command(subcommand)]
    #[command(after_help = TENANTS_EXAMPLE)]
    Tenants(tenants::TenantsCommand),
    /// The tamper-evident audit chain of an org: list, verify, export, checkpoint.
    #[command(subcommand)]
    #[command(after_help = AUDIT_EXAMPLE)]
    Audit(audit::AuditCommand),
    /// Plugin sets: the plugins (and their configs) the gateways of a workspace, or of one
    /// environment, run.
    #[command(subcommand, name = "plugin-set")]
    #[command(after_help = PLUGIN_SET_EXAMPLE)]
    PluginSet(plugin_sets::PluginSetCommand),
    /// Usage per org: active and peak gateways against the license, tokens, plugin
    /// checks, limits exceeded; per day or month, a month's export for billing, and the
    /// import of air-gapped sites' usage receipts.
    #[command(subcommand)]
    #[command(after_help = USAGE_EXAMPLE)]
    Usage(usage::UsageCommand),
    /// Act inside an org as its admin for at most an hour (global admin only): prints a
    /// token once; its creation and every request made with it are logged.
    Impersonate(impersonate::Impersonate),
    /// Check a token against --server and save both as a context (made current): the
    /// token is read from standard input, or asked for without echo; never from arguments.
    #[command(after_help = contexts::LOGIN_EXAMPLE)]
    Login,
    /// Remove the token of the current context (or of --context NAME).
    #[command(after_help = contexts::LOGOUT_EXAMPLE)]
    Logout,
    /// Saved contexts (a server and its token): list, use, delete.
    #[command(subcommand)]
    #[command(after_help = contexts::CONTEXT_EXAMPLE)]
    Context(contexts::ContextCommand),
    /// Print a shell completion script to standard output.
    #[command(after_help = COMPLETION_EXAMPLE)]
    Completion(mcpg_runtime::shell::CompletionArgs),
    /// Write man pages, one per command and subcommand, into a directory.
    #[command(after_help = MAN_EXAMPLE)]
    Man(mcpg_runtime::shell::ManArgs),
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Create an org: `org create acme-corp --display-name "Acme, Inc."`.
    #[command(after_help = ORG_CREATE_EXAMPLE)]
    Create {
        /// Slug: lowercase letters, digits and dashes.
        slug: String,
        /// Human name.
        #[arg(long)]
        display_name: String,
        /// Make it a trial that ends at this RFC 3339 time.
        #[arg(long)]
        trial_until: Option<String>,
        /// The host label that also selects it under subdomain routing
        /// (`acme` for `acme.mcpg.dev`), when it should differ from the slug.
        #[arg(long)]
        routing_name: Option<String>,
    },
    /// Change an org's settings: `org set acme-corp --routing-name acme --namespace
    /// mcpg-acme`; `--unset namespace` clears one (global admins).
    #[command(after_help = ORG_SET_EXAMPLE)]
    Set {
        /// Org slug.
        org: String,
        /// Human name.
        #[arg(long)]
        display_name: Option<String>,
        /// Host label that selects the org under subdomain routing, besides its slug.
        #[arg(long)]
        routing_name: Option<String>,
        /// Gateway-side setting: the Kubernetes namespace its MCP servers run in.
        #[arg(long)]
        namespace: Option<String>,
        /// Gateway-side setting: the server catalog file its gateways load.
        #[arg(long)]
        catalog_file: Option<String>,
        /// Clear a setting (repeatable).
        #[arg(long, value_enum)]
        unset: Vec<OrgSetting>,
    },
    /// List orgs.
    #[command(after_help = ORG_LIST_EXAMPLE)]
    List,
    /// Show one org.
    #[command(after_help = ORG_GET_EXAMPLE)]
    Get {
        /// Org slug.
        org: String,
    },
    /// Suspend an org: its gateways get 403 org_suspended at their next refresh.
    #[command(after_help = ORG_SUSPEND_EXAMPLE)]
    Suspend {
        /// Org slug.
        org: String,
    },
    /// Make a suspended org active again.
    #[command(after_help = ORG_RESUME_EXAMPLE)]
    Resume {
        /// Org slug.
        org: String,
    },
    /// Delete an org: refused while it has workspaces unless --cascade; the org is
    /// suspended first and the server keeps an archive (a JSON export of what was
    /// deleted, with its audit chain) for its retention: see `org archive`.
    #[command(after_help = ORG_DELETE_EXAMPLE)]
    Delete {
        /// Org slug.
        org: String,
        /// Also delete its workspaces, environments and gateways (asks for the slug on a
        /// terminal; elsewhere needs --yes).
        #[arg(long)]
        cascade: bool,
        /// Confirm a --cascade delete without asking (scripts, CI).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// The org's own OIDC provider for operator login (org admins).
    #[command(subcommand)]
    #[command(after_help = ORG_OIDC_EXAMPLE)]
    Oidc(oidc::OidcCommand),
    /// Archives of deleted orgs: list, show (with the audit chain verified), restore
    /// within the server's retention (global admins).
    #[command(subcommand)]
    Archive(archives::ArchiveCommand),
}

/// An org setting `org set --unset` clears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OrgSetting {
    /// The routing name.
    RoutingName,
    /// The gateway-side namespace.
    Namespace,
    /// The gateway-side catalog file.
    CatalogFile,
}

impl OrgSetting {
    /// The API field it clears.
    fn field(self) -> &'static str {
        match self {
            OrgSetting::RoutingName => "routing_name",
            OrgSetting::Namespace => "namespace",
            OrgSetting::CatalogFile => "catalog_file",
        }
    }
}

#[derive(Debug, Subcommand)]
enum WorkspaceCommand {
    /// Create `ORG/WS`.
    #[command(after_help = WORKSPACE_CREATE_EXAMPLE)]
    Create {
        /// ORG/WS
        path: String,
    },
    /// List the workspaces of ORG.
    #[command(after_help = WORKSPACE_LIST_EXAMPLE)]
    List {
        /// ORG
        org: String,
    },
    /// Delete `ORG/WS`: refused while it has environments unless --cascade.
    #[command(after_help = WORKSPACE_DELETE_EXAMPLE)]
    Delete {
        /// ORG/WS
        path: String,
        /// Also delete its environments and gateways.
        #[arg(long)]
        cascade: bool,
    },
}

#[derive(Debug, Subcommand)]
enum EnvCommand {
    /// Create `ORG/WS/ENV`.
    #[command(after_help = ENV_CREATE_EXAMPLE)]
    Create {
        /// ORG/WS/ENV
        path: String,
    },
    /// List the environments of ORG/WS.
    #[command(after_help = ENV_LIST_EXAMPLE)]
    List {
        /// ORG/WS
        path: String,
    },
    /// Delete `ORG/WS/ENV`: refused while it has gateways unless --cascade.
    #[command(after_help = ENV_DELETE_EXAMPLE)]
    Delete {
        /// ORG/WS/ENV
        path: String,
        /// Also delete its gateways.
        #[arg(long)]
        cascade: bool,
    },
}

#[derive(Debug, Subcommand)]
enum LicenseCommand {
    /// Set (replace) the org's license.
    #[command(after_help = LICENSE_SET_EXAMPLE)]
    Set(LicenseSet),
    /// Show the org's license and its effective entitlements.
    #[command(after_help = LICENSE_SHOW_EXAMPLE)]
    Show {
        /// Org slug.
        org: String,
    },
    /// Revoke the org's license: gateways get 403 license_revoked at their next refresh.
    #[command(after_help = LICENSE_REVOKE_EXAMPLE)]
    Revoke {
        /// Org slug.
        org: String,
    },
}

#[derive(Debug, Args)]
struct LicenseSet {
    /// Org slug.
    org: String,
    /// free, team or enterprise.
    #[arg(long)]
    tier: Tier,
    /// Add an entitlement to the tier's defaults (repeatable).
    #[arg(long = "entitlement", value_name = "ID")]
    add: Vec<EntitlementId>,
    /// Remove an entitlement from the tier's defaults (repeatable).
    #[arg(long = "without", value_name = "ID")]
    remove: Vec<EntitlementId>,
    /// A limit KEY=VALUE: max_gateways, max_workspaces, max_environments, rps (repeatable).
    #[arg(long = "limit", value_name = "KEY=VALUE")]
    limits: Vec<String>,
    /// Accept entitlement ids the plugin catalog does not know (a plugin that ships later);
    /// without it they are refused before the request.
    #[arg(long = "allow-future-entitlement")]
    allow_future_entitlements: bool,
    /// How long the license runs from its start, in whole days (e.g. 365d).
    #[arg(long, default_value = "365d")]
    valid_for: String,
    /// When it starts (RFC 3339); default now.
    #[arg(long)]
    valid_from: Option<String>,
    /// Apply the license even when it no longer entitles plugins that plugin sets name
    /// (without it the server refuses with plugin_set_conflict, listing them); the sets
    /// affected are printed.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
enum GatewayCommand {
    /// Register a gateway in ORG/WS/ENV; prints its credential once. With `--count N`,
    /// registers a fleet `NAME-00001`… in batches of 1,000 and writes the credentials to
    /// `--credentials-file` as JSON lines: `gateway register acme/main/prod edge --count
    /// 5000 --credentials-file fleet.jsonl`.
    #[command(after_help = GATEWAY_REGISTER_EXAMPLE)]
    Register {
        /// ORG/WS/ENV
        path: String,
        /// Gateway name (with `--count`: the names' prefix).
        name: String,
        /// Write the credential to this new file (mode 0600) instead of printing it.
        #[arg(long, conflicts_with_all = ["count", "credentials_file"])]
        credential_file: Option<PathBuf>,
        /// Register this many gateways (1 to 1,000,000).
        #[arg(long, requires = "credentials_file")]
        count: Option<u32>,
        /// With `--count`: the new file (mode 0600) for the credentials, one JSON object
        /// (`id`, `name`, `credential`) per line.
        #[arg(long, requires = "count")]
        credentials_file: Option<PathBuf>,
    },
    /// List the gateways of ORG/WS/ENV.
    #[command(after_help = GATEWAY_LIST_EXAMPLE)]
    List {
        /// ORG/WS/ENV
        path: String,
    },
    /// Show one gateway of ORG/WS/ENV, by name or id (never its credential).
    #[command(after_help = GATEWAY_SHOW_EXAMPLE)]
    Show {
        /// ORG/WS/ENV
        path: String,
        /// Gateway name (unique among the environment's unrevoked gateways) or id.
        gateway: String,
    },
    /// Revoke a gateway's credential, by name or id: its next token request gets 401.
    /// Its name is free again for a replacement.
    #[command(after_help = GATEWAY_REVOKE_EXAMPLE)]
    Revoke {
        /// ORG/WS/ENV
        path: String,
        /// Gateway name or id (from `gateway list`).
        gateway: String,
    },
}

#[derive(Debug, Subcommand)]
enum AdminTokenCommand {
    /// Create a token, shown once: global admin, or an org API key with `--org`.
    #[command(after_help = TOKEN_CREATE_EXAMPLE)]
    Create {
        /// What the token is for (shown in `token list`).
        name: String,
        /// Scope the token to this org (it acts as the org's admin).
        #[arg(long)]
        org: Option<String>,
        /// Write the token to this new file (mode 0600) instead of printing it.
        #[arg(long = "out", value_name = "FILE")]
        out_file: Option<PathBuf>,
    },
    /// List global admin tokens and org API keys (never the secrets).
    #[command(after_help = TOKEN_LIST_EXAMPLE)]
    List,
    /// Revoke a token by id; the last global admin token cannot be revoked.
    #[command(after_help = TOKEN_REVOKE_EXAMPLE)]
    Revoke {
        /// Token id (from `token list`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum RevocationsCommand {
    /// Upload a root-signed list (from `mcpg-license revoke`); its serial must be higher
    /// than the one in force.
    #[command(after_help = REVOCATIONS_UPLOAD_EXAMPLE)]
    Upload {
        /// The list file.
        file: PathBuf,
    },
    /// Show the list in force.
    #[command(after_help = REVOCATIONS_SHOW_EXAMPLE)]
    Show,
}

/// Parses the command line and runs it.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let printer = commands::Printer {
        output: cli.output.base(),
        csv: cli.output == Format::Csv,
    };
    if printer.csv && !matches!(cli.command, Command::Usage(_)) {
        anyhow::bail!("--output csv is for `usage show` and `usage export`; use table or json");
    }
    let inputs = target::Inputs {
        server_flag: cli.server,
        token_flag: cli.token,
        token_file_flag: cli.token_file,
        context_flag: cli.context,
        ..target::Inputs::default()
    }
    .with_env();
    match cli.command {
        Command::Completion(args) => {
            mcpg_runtime::shell::print_completion(Cli::command(), args.shell);
        }
        Command::Man(args) => {
            let pages = mcpg_runtime::shell::write_man_pages(Cli::command(), &args.out)
                .with_context(|| format!("cannot write man pages to {}", args.out.display()))?;
            eprintln!("wrote {} man pages to {}", pages.len(), args.out.display());
        }
        Command::Login => contexts::login(&inputs, &config::default_path()?, &printer)?,
        Command::Logout => contexts::logout(&inputs, &config::default_path()?, &printer)?,
        Command::Context(cmd) => contexts::context(&config::default_path()?, &printer, cmd)?,
        command => return commands::execute(&target::client_for(&inputs)?, &printer, command),
    }
    Ok(ExitCode::SUCCESS)
}

/// The exit code for an error `run` returned: 1 for the server's refusals and outages,
/// 2 for everything decided locally.
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    let remote = error
        .downcast_ref::<ClientError>()
        .is_some_and(|e| !matches!(e, ClientError::BadServer(_)));
    if remote
        || error.downcast_ref::<audit::VerifyFailed>().is_some()
        || error.downcast_ref::<gateways::NoSuchGateway>().is_some()
    {
        EXIT_FAILED
    } else {
        EXIT_USAGE
    }
}

#[cfg(test)]
mod tests {
    use super::{Cli, CommandFactory};

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn readme_cli_reference_is_current() {
        let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
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
