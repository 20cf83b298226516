//! `mcpg-ctl org oidc …`: an org's OIDC provider for operator login.

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value};

use super::Client;
use super::commands::{Printer, org_path};
use super::output::Column;

const OIDC_COLUMNS: &[Column] = &[
    ("org", "org"),
    ("issuer", "issuer"),
    ("audience", "audience"),
    ("jwks uri", "jwks_uri"),
    ("tenant claim", "tenant_claim"),
    ("tenant value", "tenant_value"),
    ("role claim", "role_claim"),
    ("role map", "role_map"),
    ("algorithms", "algorithms"),
    ("updated", "updated_at"),
];

const OIDC_SET_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org oidc set acme-corp --issuer https://acme.eu.auth0.com/ --audience mcpg --tenant-claim org_id --tenant-value org_123 --role-claim https://mcpg.dev/roles --role-map mcpg-admins=admin
  mcpg-ctl org oidc set acme-corp --issuer https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AcmePool --audience mcpg --tenant-claim custom:tenant_id --role-claim cognito:groups --role-map platform-operators=operator --algorithm RS256";

const OIDC_SHOW_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org oidc show acme-corp
  mcpg-ctl org oidc show acme-corp -o json";

const OIDC_DELETE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl org oidc delete acme-corp
  mcpg-ctl org oidc show acme-corp";

/// An org's OIDC provider.
#[derive(Debug, Subcommand)]
pub(super) enum OidcCommand {
    /// Set (replace) the org's OIDC provider: operators then call the API with the IdP's
    /// JWT as Bearer token.
    #[command(after_help = OIDC_SET_EXAMPLE)]
    Set(OidcSet),
    /// Show the org's OIDC provider.
    #[command(after_help = OIDC_SHOW_EXAMPLE)]
    Show {
        /// Org slug.
        org: String,
    },
    /// Remove the org's OIDC provider: its tokens are refused from then on.
    #[command(after_help = OIDC_DELETE_EXAMPLE)]
    Delete {
        /// Org slug.
        org: String,
    },
}

/// A signature algorithm an org may pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Algorithm {
    /// RSA PKCS#1 v1.5 with SHA-256.
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256.
    #[value(name = "ES256")]
    Es256,
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDsa,
}

impl Algorithm {
    fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }
}

/// `org oidc set`.
#[derive(Debug, Args)]
pub(super) struct OidcSet {
    /// Org slug.
    org: String,
    /// The IdP's issuer, exactly as its tokens' `iss` (https://…).
    #[arg(long)]
    issuer: String,
    /// The audience (`aud`) the IdP's tokens for this service carry.
    #[arg(long)]
    audience: String,
    /// The IdP's key set URL [default: discovered from ISSUER/.well-known/openid-configuration].
    #[arg(long)]
    jwks_uri: Option<String>,
    /// The claim naming the IdP tenant: org_id (Auth0), tid (Entra ID), custom:tenant_id (Cognito) ….
    #[arg(long)]
    tenant_claim: String,
    /// The tenant claim's value for this org, e.g. the Entra tenant id [default: the org slug].
    #[arg(long)]
    tenant_value: Option<String>,
    /// The claim whose value(s) map to roles, e.g. roles, groups, cognito:groups.
    #[arg(long)]
    role_claim: String,
    /// VALUE=ROLE: a role claim value and the org-wide role it grants (admin, operator,
    /// viewer); repeatable.
    #[arg(long = "role-map", value_name = "VALUE=ROLE")]
    role_map: Vec<String>,
    /// An accepted signature algorithm; repeatable [default: RS256].
    #[arg(long = "algorithm", value_enum)]
    algorithms: Vec<Algorithm>,
}

/// The request body of `org oidc set`.
fn set_body(args: &OidcSet) -> anyhow::Result<Value> {
    let mut role_map = Map::new();
    for entry in &args.role_map {
        let Some((value, role)) = entry.rsplit_once('=') else {
            bail!("--role-map {entry:?} must be VALUE=ROLE");
        };
        if value.is_empty() || !matches!(role, "admin" | "operator" | "viewer") {
            bail!("--role-map {entry:?}: the role must be admin, operator or viewer");
        }
        if role_map.insert(value.to_owned(), role.into()).is_some() {
            bail!("--role-map names {value:?} twice");
        }
    }
    let mut body = Map::new();
    body.insert("issuer".into(), args.issuer.clone().into());
    body.insert("audience".into(), args.audience.clone().into());
    body.insert("tenant_claim".into(), args.tenant_claim.clone().into());
    body.insert("role_claim".into(), args.role_claim.clone().into());
    body.insert("role_map".into(), Value::Object(role_map));
    if let Some(uri) = &args.jwks_uri {
        body.insert("jwks_uri".into(), uri.clone().into());
    }
    if let Some(value) = &args.tenant_value {
        body.insert("tenant_value".into(), value.clone().into());
    }
    if !args.algorithms.is_empty() {
        let names: Vec<Value> = args.algorithms.iter().map(|a| a.as_str().into()).collect();
        body.insert("algorithms".into(), Value::Array(names));
    }
    Ok(Value::Object(body))
}

pub(super) fn oidc(client: &Client, out: &Printer, cmd: OidcCommand) -> anyhow::Result<()> {
    match cmd {
        OidcCommand::Set(args) => {
            let body = set_body(&args)?;
            let url = format!("{}/oidc", org_path(&args.org)?);
            out.one(&client.put(&url, &body)?, OIDC_COLUMNS);
        }
        OidcCommand::Show { org } => {
            let url = format!("{}/oidc", org_path(&org)?);
            out.one(&client.get(&url)?, OIDC_COLUMNS);
        }
        OidcCommand::Delete { org } => {
            let url = format!("{}/oidc", org_path(&org)?);
            let answer = client.delete(&url)?;
            out.done(&format!("removed the OIDC provider of {org}"), &answer);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(role_map: &[&str]) -> OidcSet {
        OidcSet {
            org: "acme".into(),
            issuer: "https://idp.example/".into(),
            audience: "mcpg".into(),
            jwks_uri: None,
            tenant_claim: "tid".into(),
            tenant_value: Some("t-1".into()),
            role_claim: "roles".into(),
            role_map: role_map.iter().map(|s| (*s).to_owned()).collect(),
            algorithms: vec![Algorithm::EdDsa],
        }
    }

    #[test]
    fn role_maps_split_at_the_last_equals_sign_and_name_known_roles() {
        let body = set_body(&args(&["MCPG.Admin=admin", "a=b=viewer"])).expect("valid");
        assert_eq!(body["role_map"]["MCPG.Admin"], "admin");
        assert_eq!(body["role_map"]["a=b"], "viewer");
        assert_eq!(body["algorithms"][0], "EdDSA");
        assert!(body.get("jwks_uri").is_none());
        for bad in [
            &["admin"][..],
            &["x=root"],
            &["=admin"],
            &["x=admin", "x=viewer"],
        ] {
            assert!(set_body(&args(bad)).is_err(), "{bad:?} should be refused");
        }
    }
}
