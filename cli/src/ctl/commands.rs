//! What each `mcpg-ctl` subcommand sends and how its answer is printed.

use anyhow::{Context, bail};
use mcpg_license_core::duration::parse_duration;
use mcpg_license_core::{Catalog, Limits, SlugKind};
use serde_json::{Map, Value, json};

use super::output::{Column, record, table};
use super::{
    AdminTokenCommand, Client, Command, EnvCommand, LicenseCommand, LicenseSet, OrgCommand, Output,
    RevocationsCommand, WorkspaceCommand,
};

const ORG_COLUMNS: &[Column] = &[
    ("slug", "slug"),
    ("display name", "display_name"),
    ("status", "status"),
    ("trial ends", "trial_expires_at"),
    ("routing name", "routing_name"),
    ("created", "created_at"),
];
const WS_COLUMNS: &[Column] = &[("slug", "slug"), ("id", "id"), ("created", "created_at")];
const ENV_COLUMNS: &[Column] = &[
    ("slug", "slug"),
    ("workspace", "workspace"),
    ("id", "id"),
    ("created", "created_at"),
];
const LICENSE_COLUMNS: &[Column] = &[
    ("license", "id"),
    ("org", "org"),
    ("status", "status"),
    ("tier", "tier"),
    ("valid from", "valid_from"),
    ("valid until", "valid_until"),
    ("revoked", "revoked_at"),
    ("added", "entitlements_add"),
    ("removed", "entitlements_remove"),
    ("limits", "limits"),
    ("entitlements", "entitlements"),
];
const REVOCATION_COLUMNS: &[Column] = &[
    ("serial", "serial"),
    ("issued at", "issued_at"),
    ("certificates", "certificates"),
    ("licenses", "licenses"),
];

/// A local file's text, trimmed.
pub(super) fn read_text(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?
        .trim()
        .to_owned())
}

/// An id as a path segment (a token id, gateway id, key id): checked locally so nothing
/// odd reaches a URL.
pub(super) fn segment(part: &str, what: &str, whole: &str) -> anyhow::Result<String> {
    let ok = !part.is_empty()
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        bail!("{whole:?}: the {what} may hold only letters, digits, '-', '_' and '.'");
    }
    Ok(part.to_owned())
}

/// The slug of an existing org, workspace or environment as a path segment: the one slug
/// rule's syntax ([`mcpg_license_core::check_slug`]). Reserved org names are not refused
/// here: an org created before its name was reserved stays addressable.
pub(super) fn slug_segment(part: &str, what: &str, whole: &str) -> anyhow::Result<String> {
    mcpg_license_core::check_slug(part, SlugKind::Scope)
        .map_err(|error| anyhow::anyhow!("{whole:?}: the {what}: {error}"))?;
    Ok(part.to_owned())
}

/// The slug of something to create, checked with the service's own rule
/// ([`mcpg_license_core::check_slug`]) so a refused name is reported before any request.
fn new_slug(slug: &str, kind: SlugKind) -> anyhow::Result<String> {
    mcpg_license_core::check_slug(slug, kind)?;
    Ok(slug.to_owned())
}

pub(super) fn split<const N: usize>(path: &str, shape: &str) -> anyhow::Result<[String; N]> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() != N {
        bail!("{path:?} must look like {shape}");
    }
    let names = ["org", "workspace", "environment"];
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (i, part) in parts.iter().enumerate() {
        out[i] = slug_segment(part, names[i], path)?;
    }
    Ok(out)
}

pub(super) fn org_path(org: &str) -> anyhow::Result<String> {
    Ok(format!("/v1/orgs/{}", slug_segment(org, "org", org)?))
}

fn ws_path(path: &str) -> anyhow::Result<String> {
    let [org, ws] = split::<2>(path, "ORG/WS")?;
    Ok(format!("/v1/orgs/{org}/workspaces/{ws}"))
}

pub(super) fn env_path(path: &str) -> anyhow::Result<String> {
    let [org, ws, env] = split::<3>(path, "ORG/WS/ENV")?;
    Ok(format!("/v1/orgs/{org}/workspaces/{ws}/environments/{env}"))
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

fn with_cascade(url: String, cascade: bool) -> String {
    if cascade {
        format!("{url}?cascade=true")
    } else {
        url
    }
}

/// "deleted workspace acme/ws (export kept: 2 environment(s), 3 gateway(s))".
fn deleted(what: &str, path: &str, export: &Value) -> String {
    let count = |field: &str| export[field].as_array().map_or(0, Vec::len);
    format!(
        "deleted {what} {path} (export kept: {} workspace(s), {} environment(s), {} gateway(s))",
        count("workspaces"),
        count("environments"),
        count("gateways")
    )
}

fn license_body(args: &LicenseSet) -> anyhow::Result<Value> {
    // Checked here as the service checks it, so a typo is reported before any request.
    if !args.allow_future_entitlements {
        Catalog::builtin()
            .check_known(args.add.iter().chain(&args.remove))
            .map_err(|e| {
                anyhow::anyhow!(
                    "{e} [unknown_entitlement]; fix the id, or pass --allow-future-entitlement \
                     for a plugin that ships later"
                )
            })?;
    }
    let mut limits = Limits::default();
    for assignment in &args.limits {
        limits.apply_assignment(assignment)?;
    }
    let seconds = parse_duration(&args.valid_for)?;
    if seconds % 86_400 != 0 {
        bail!("--valid-for must be whole days, e.g. 365d");
    }
    let mut body = json!({
        "tier": args.tier,
        "entitlements_add": args.add,
        "entitlements_remove": args.remove,
        "limits": limits,
        "valid_for_days": seconds / 86_400,
    });
    if args.allow_future_entitlements {
        body["allow_future_entitlements"] = Value::Bool(true);
    }
    if let Some(from) = &args.valid_from {
        body["valid_from"] = Value::from(from.clone());
    }
    Ok(body)
}

/// Makes the request that creates a secret shown once (a gateway credential, a personal
/// token), then writes the answer's `field` to `file` (mode 0600, never overwriting; checked
/// before the request so nothing is created that could not be saved) or prints it.
pub(super) fn deliver_secret(
    out: &Printer,
    file: Option<&std::path::Path>,
    field: &str,
    columns: &[Column],
    create: impl FnOnce() -> Result<Value, super::ClientError>,
) -> anyhow::Result<()> {
    if let Some(file) = file {
        crate::files::check_output(file, false)?;
    }
    let mut answer = create()?;
    let secret = answer[field].as_str().unwrap_or_default().to_owned();
    if secret.is_empty() {
        bail!("the server did not return a {field}");
    }
    match file {
        Some(file) => {
            crate::files::write_secret(
                file,
                format!("{secret}\n").as_bytes(),
                "choose a new file name",
            )?;
            answer[field] = Value::from(format!("written to {}", file.display()));
            out.one(&answer, columns);
        }
        None => {
            out.one(&answer, columns);
            if out.output == Output::Table {
                eprintln!("note: the {field} is shown once; store it now");
            }
        }
    }
    Ok(())
}

pub(super) struct Printer {
    pub(super) output: Output,
    /// `-o csv` (only the usage commands print CSV).
    pub(super) csv: bool,
}

impl Printer {
    pub(super) fn list(&self, value: &Value, columns: &[Column]) {
        match (self.output, value.as_array()) {
            (Output::Table, Some(rows)) => print!("{}", table(rows, columns)),
            _ => self.json(value),
        }
    }

    pub(super) fn one(&self, value: &Value, columns: &[Column]) {
        match self.output {
            Output::Table => print!("{}", record(value, columns)),
            Output::Json => self.json(value),
        }
    }

    pub(super) fn done(&self, message: &str, value: &Value) {
        match self.output {
            Output::Table => println!("{message}"),
            Output::Json => self.json(value),
        }
    }

    pub(super) fn json(&self, value: &Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }
}

/// Runs `command`; its exit code on success (0, or `tenants apply --detailed-exitcode`'s 2
/// when changes are pending).
pub(super) fn execute(
    client: &Client,
    out: &Printer,
    command: Command,
) -> anyhow::Result<std::process::ExitCode> {
    if let Command::Tenants(cmd) = command {
        return super::tenants::tenants(client, out, cmd);
    }
    run_command(client, out, command).map(|()| std::process::ExitCode::SUCCESS)
}

fn run_command(client: &Client, out: &Printer, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Org(cmd) => org(client, out, cmd),
        Command::Workspace(cmd) => workspace(client, out, cmd),
        Command::Env(cmd) => env(client, out, cmd),
        Command::License(cmd) => license(client, out, cmd),
        Command::Gateway(cmd) => super::gateways::run(client, out, cmd),
        Command::Rbac(cmd) => super::access::rbac(client, out, cmd),
        Command::User(cmd) => super::access::user(client, out, cmd),
        Command::Tenants(cmd) => super::tenants::tenants(client, out, cmd).map(|_| ()),
        Command::PluginSet(cmd) => super::plugin_sets::plugin_sets(client, out, cmd),
        Command::Audit(cmd) => super::audit::audit(client, out, cmd),
        Command::Usage(cmd) => super::usage::usage(client, out, out.csv, cmd),
        Command::Impersonate(args) => super::impersonate::impersonate(client, out, args),
        Command::Keys(cmd) => super::keys::keys(client, out, cmd),
        Command::Revocations(RevocationsCommand::Upload { file }) => {
            let list = read_text(&file, "revocation list")?;
            let shown = client.put_text("/v1/admin/revocations", list)?;
            out.one(&shown, REVOCATION_COLUMNS);
            Ok(())
        }
        Command::Revocations(RevocationsCommand::Show) => {
            out.one(&client.get("/v1/admin/revocations")?, REVOCATION_COLUMNS);
            Ok(())
        }
        Command::Token(cmd) => admin_token(client, out, cmd),
        // Local commands: `run` handles them before any client exists.
        Command::Login
        | Command::Logout
        | Command::Context(_)
        | Command::Completion(_)
        | Command::Man(_) => bail!("this command does not talk to a server"),
    }
}

const ADMIN_TOKEN_COLUMNS: &[Column] = &[
    ("id", "id"),
    ("name", "name"),
    ("org", "org"),
    ("prefix", "token_prefix"),
    ("created", "created_at"),
    ("revoked", "revoked_at"),
];

fn admin_token(client: &Client, out: &Printer, cmd: AdminTokenCommand) -> anyhow::Result<()> {
    match cmd {
        AdminTokenCommand::Create {
            name,
            org,
            out_file,
        } => {
            let mut body = json!({ "name": name });
            if let Some(org) = org {
                body["org"] = Value::from(slug_segment(&org, "org", &org)?);
            }
            let columns: &[Column] = &[("id", "id"), ("org", "org"), ("token", "token")];
            deliver_secret(out, out_file.as_deref(), "token", columns, || {
                client.post("/v1/admin/tokens", &body)
            })
        }
        AdminTokenCommand::List => {
            out.list(&client.get_all("/v1/admin/tokens")?, ADMIN_TOKEN_COLUMNS);
            Ok(())
        }
        AdminTokenCommand::Revoke { id } => {
            let url = format!("/v1/admin/tokens/{}", segment(&id, "token id", &id)?);
            let answer = client.delete(&url)?;
            out.done(&format!("revoked token {id}"), &answer);
            Ok(())
        }
    }
}

/// Asks, on a terminal, for the org's slug before a cascading delete; refuses elsewhere
/// (a script must say `--yes`). Nothing is sent before it is confirmed.
fn confirm_cascade(org: &str) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "org delete --cascade removes {org} with every workspace, environment and gateway \
             in it; standard input is not a terminal to ask on, so pass --yes to confirm"
        );
    }
    eprint!(
        "This deletes {org} with every workspace, environment and gateway in it (kept as an \
         archive for the server's retention).\nType the org's slug to confirm: "
    );
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if answer.trim() != org {
        bail!("not confirmed; nothing was deleted");
    }
    Ok(())
}

fn org(client: &Client, out: &Printer, cmd: OrgCommand) -> anyhow::Result<()> {
    match cmd {
        OrgCommand::Create {
            slug,
            display_name,
            trial_until,
            routing_name,
        } => {
            let mut body = Map::new();
            body.insert("slug".into(), new_slug(&slug, SlugKind::Org)?.into());
            body.insert("display_name".into(), display_name.into());
            if let Some(until) = trial_until {
                body.insert("trial_expires_at".into(), until.into());
            }
            if let Some(name) = routing_name {
                body.insert("routing_name".into(), name.into());
            }
            out.one(&client.post("/v1/orgs", &Value::Object(body))?, ORG_COLUMNS);
        }
        OrgCommand::Set {
            org,
            display_name,
            routing_name,
            namespace,
            catalog_file,
            unset,
        } => {
            let mut body = Map::new();
            for (field, value) in [
                ("display_name", display_name),
                ("routing_name", routing_name),
                ("namespace", namespace),
                ("catalog_file", catalog_file),
            ] {
                if let Some(value) = value {
                    body.insert(field.into(), value.into());
                }
            }
            for setting in unset {
                if body.insert(setting.field().into(), Value::Null).is_some() {
                    anyhow::bail!(
                        "--unset {} contradicts --{}",
                        setting.field(),
                        setting.field().replace('_', "-")
                    );
                }
            }
            if body.is_empty() {
                anyhow::bail!("nothing to change: name a setting (see `mcpg-ctl org set --help`)");
            }
            out.one(
                &client.patch(&org_path(&org)?, &Value::Object(body))?,
                ORG_COLUMNS,
            );
        }
        OrgCommand::List => out.list(&client.get_all("/v1/orgs")?, ORG_COLUMNS),
        OrgCommand::Get { org } => out.one(&client.get(&org_path(&org)?)?, ORG_COLUMNS),
        OrgCommand::Suspend { org } => {
            let body = json!({"status": "suspended"});
            out.one(&client.patch(&org_path(&org)?, &body)?, ORG_COLUMNS);
        }
        OrgCommand::Resume { org } => {
            let body = json!({"status": "active"});
            out.one(&client.patch(&org_path(&org)?, &body)?, ORG_COLUMNS);
        }
        OrgCommand::Delete { org, cascade, yes } => {
            if cascade && !yes {
                confirm_cascade(&org)?;
            }
            let answer = client.delete(&with_cascade(org_path(&org)?, cascade))?;
            out.done(&deleted("org", &org, &answer), &answer);
        }
        OrgCommand::Oidc(cmd) => super::oidc::oidc(client, out, cmd)?,
        OrgCommand::Archive(cmd) => super::archives::archive(client, out, cmd)?,
    }
    Ok(())
}

fn workspace(client: &Client, out: &Printer, cmd: WorkspaceCommand) -> anyhow::Result<()> {
    match cmd {
        WorkspaceCommand::Create { path } => {
            let url = ws_path(&path)?;
            let body = json!({"slug": new_slug(last_segment(&path), SlugKind::Scope)?});
            out.one(&client.post(parent(&url), &body)?, WS_COLUMNS);
        }
        WorkspaceCommand::List { org } => {
            out.list(
                &client.get_all(&format!("{}/workspaces", org_path(&org)?))?,
                WS_COLUMNS,
            );
        }
        WorkspaceCommand::Delete { path, cascade } => {
            let answer = client.delete(&with_cascade(ws_path(&path)?, cascade))?;
            out.done(&deleted("workspace", &path, &answer), &answer);
        }
    }
    Ok(())
}

fn env(client: &Client, out: &Printer, cmd: EnvCommand) -> anyhow::Result<()> {
    match cmd {
        EnvCommand::Create { path } => {
            let url = env_path(&path)?;
            let body = json!({"slug": new_slug(last_segment(&path), SlugKind::Scope)?});
            out.one(&client.post(parent(&url), &body)?, ENV_COLUMNS);
        }
        EnvCommand::List { path } => {
            let url = format!("{}/environments", ws_path(&path)?);
            out.list(&client.get_all(&url)?, ENV_COLUMNS);
        }
        EnvCommand::Delete { path, cascade } => {
            let answer = client.delete(&with_cascade(env_path(&path)?, cascade))?;
            out.done(&deleted("environment", &path, &answer), &answer);
        }
    }
    Ok(())
}

fn license(client: &Client, out: &Printer, cmd: LicenseCommand) -> anyhow::Result<()> {
    match cmd {
        LicenseCommand::Set(args) => {
            let body = license_body(&args)?;
            let mut url = format!("{}/license", org_path(&args.org)?);
            if args.force {
                url.push_str("?force=true");
            }
            let answer = client.put(&url, &body)?;
            out.one(&answer, LICENSE_COLUMNS);
            // Warnings go to stderr, in both formats: `-o json` keeps stdout one document
            // (which carries the same sets as data).
            for line in super::plugin_sets::affected_lines(&args.org, &answer) {
                eprintln!("warning: {line}");
            }
        }
        LicenseCommand::Show { org } => {
            let url = format!("{}/license", org_path(&org)?);
            out.one(&client.get(&url)?, LICENSE_COLUMNS);
        }
        LicenseCommand::Revoke { org } => {
            let url = format!("{}/license/revoke", org_path(&org)?);
            out.one(&client.post(&url, &json!({}))?, LICENSE_COLUMNS);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpg_license_core::{EntitlementId, Tier};

    #[test]
    fn paths_are_split_and_checked() {
        assert_eq!(
            env_path("acme-corp/platform-team/prod").expect("valid"),
            "/v1/orgs/acme-corp/workspaces/platform-team/environments/prod"
        );
        assert!(env_path("acme-corp/platform-team").is_err());
        assert!(ws_path("acme/../x").is_err());
        assert!(ws_path("acme/a?b").is_err());
        assert!(org_path("").is_err());
    }

    #[test]
    fn created_slugs_follow_the_service_rule() {
        assert_eq!(
            new_slug("acme-corp", SlugKind::Org).ok().as_deref(),
            Some("acme-corp")
        );
        for bad in ["acme-", "-acme", "Acme", "a_b", "a.b", "admin", "www"] {
            assert!(new_slug(bad, SlugKind::Org).is_err(), "{bad:?}");
        }
        assert!(new_slug("api", SlugKind::Scope).is_ok());
        assert!(new_slug("prod-", SlugKind::Scope).is_err());
    }

    #[test]
    fn license_body_carries_days_and_limits() {
        let args = LicenseSet {
            org: "acme".into(),
            tier: Tier::Team,
            add: vec![EntitlementId::parse("plugin:policy.cedar").expect("valid")],
            remove: vec![],
            limits: vec![
                "max_gateways=20".into(),
                "max_servers=5".into(),
                "max_concurrent_requests=100".into(),
            ],
            valid_for: "30d".into(),
            valid_from: None,
            force: false,
            allow_future_entitlements: false,
        };
        let body = license_body(&args).expect("valid");
        assert_eq!(body["valid_for_days"], 30);
        assert_eq!(body["limits"]["max_gateways"], 20);
        assert_eq!(body["limits"]["max_servers"], 5);
        assert_eq!(body["limits"]["max_concurrent_requests"], 100);
        assert_eq!(body["entitlements_add"][0], "plugin:policy.cedar");
        let bad = LicenseSet {
            valid_for: "36h".into(),
            ..args
        };
        assert!(license_body(&bad).is_err());
    }

    #[test]
    fn license_body_refuses_unknown_entitlements_unless_future_ones_are_allowed() {
        let args = LicenseSet {
            org: "acme".into(),
            tier: Tier::Team,
            add: vec![EntitlementId::parse("plugin:policy.cedr").expect("valid")],
            remove: vec![],
            limits: vec![],
            valid_for: "30d".into(),
            valid_from: None,
            force: false,
            allow_future_entitlements: false,
        };
        let error = format!("{:#}", license_body(&args).expect_err("unknown"));
        assert!(
            error.contains("plugin:policy.cedr (did you mean plugin:policy.cedar?)")
                && error.contains("--allow-future-entitlement"),
            "{error}"
        );
        let allowed = LicenseSet {
            allow_future_entitlements: true,
            ..args
        };
        let body = license_body(&allowed).expect("opted in");
        assert_eq!(body["allow_future_entitlements"], true);
        assert_eq!(body["entitlements_add"][0], "plugin:policy.cedr");
    }

    #[test]
    fn slugs_in_paths_follow_the_one_slug_rule_and_ids_their_own() {
        assert_eq!(org_path("acme-corp").expect("a slug"), "/v1/orgs/acme-corp");
        for bad in ["Acme", "acme_corp", "acme.corp", "-acme", ""] {
            let error = org_path(bad).expect_err(bad).to_string();
            assert!(error.contains("invalid slug"), "{bad}: {error}");
        }
        // An org created before its name was reserved stays addressable.
        assert!(org_path("admin").is_ok());
        assert!(split::<2>("acme/Team", "ORG/WORKSPACE").is_err());
        assert!(segment("k4.pid.Ab_c-d", "key id", "x").is_ok());
        assert!(segment("a/b", "key id", "x").is_err());
    }
}
