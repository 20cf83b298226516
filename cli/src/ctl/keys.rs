//! `mcpg-ctl keys …`: the service's signing keys (rotation, import of a certified key) and
//! their certificates (a root rollover adds the new root's certificate of the same key,
//! then removes the old one).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::Client;
use super::commands::{Printer, read_text, segment};
use super::output::Column;

const KEY_COLUMNS: &[Column] = &[
    ("kid", "kid"),
    ("state", "state"),
    ("activate at", "activate_at"),
    ("retire after", "retire_after"),
    ("cert expires", "certificate_expires_at"),
];
const CERTIFICATE_COLUMNS: &[Column] = &[
    ("cid", "cid"),
    ("root", "root_kid"),
    ("expires", "expires_at"),
    ("primary", "primary"),
];

const KEYS_LIST_EXAMPLE: &str = "\
Examples:
  mcpg-ctl keys list
  mcpg-ctl keys list --output json";

const KEYS_ROTATE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl keys rotate
  mcpg-ctl keys list   # the new key is pending, then active";

const KEYS_IMPORT_EXAMPLE: &str = "\
Examples:
  mcpg-ctl keys import --signing-key next.secret.paserk --certificate next.cert
  mcpg-ctl keys import --signing-key next.secret-pw.paserk --certificate next.cert --passphrase-file next.passphrase";

const KEYS_CERTIFICATE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl keys certificate add k4.pid.… --file issuer-root-2027.cert
  mcpg-ctl keys certificate remove k4.pid.… cert_…";

const KEYS_CERTIFICATE_ADD_EXAMPLE: &str = "\
Examples:
  mcpg-ctl keys list   # the key id, k4.pid.…
  mcpg-ctl keys certificate add k4.pid.… --file issuer-root-2027.cert";

const KEYS_CERTIFICATE_REMOVE_EXAMPLE: &str = "\
Examples:
  mcpg-ctl keys list --output json   # the certificate id, cert_…
  mcpg-ctl keys certificate remove k4.pid.… cert_…";

#[derive(Debug, Subcommand)]
pub(super) enum KeysCommand {
    /// List signing keys and their states.
    #[command(after_help = KEYS_LIST_EXAMPLE)]
    List,
    /// Start a rotation: a new key is published as pending, then becomes active.
    #[command(after_help = KEYS_ROTATE_EXAMPLE)]
    Rotate,
    /// Roll to a key certified by a trusted root (BYOC): published as pending, then active.
    #[command(after_help = KEYS_IMPORT_EXAMPLE)]
    Import {
        /// The new signing key (PASERK k4.secret, sealed k4.secret-pw, or PEM).
        #[arg(long, value_name = "FILE")]
        signing_key: PathBuf,
        /// Its issuer certificate (from `mcpg-license certify`).
        #[arg(long, value_name = "FILE")]
        certificate: PathBuf,
        /// File holding the passphrase of a sealed key (default: ask at the terminal).
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// A key's certificates: add another root's certificate of the same key, remove one.
    #[command(subcommand)]
    #[command(after_help = KEYS_CERTIFICATE_EXAMPLE)]
    Certificate(CertificateCommand),
}

#[derive(Debug, Subcommand)]
pub(super) enum CertificateCommand {
    /// Add a certificate of the key KID (from `mcpg-license certify` with another trusted
    /// root): served beside the key's other certificates with every token.
    #[command(after_help = KEYS_CERTIFICATE_ADD_EXAMPLE)]
    Add {
        /// The key id (`k4.pid.…`, from `keys list`).
        kid: String,
        /// The certificate file.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Remove the certificate CID of the key KID; the key's last certificate is refused.
    #[command(after_help = KEYS_CERTIFICATE_REMOVE_EXAMPLE)]
    Remove {
        /// The key id.
        kid: String,
        /// The certificate id (`cert_…`, from `keys list --output json`).
        cid: String,
    },
}

/// Runs a `keys` subcommand.
pub(super) fn keys(client: &Client, out: &Printer, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List => out.list(&client.get("/v1/admin/keys")?, KEY_COLUMNS),
        KeysCommand::Rotate => {
            let key = client.post("/v1/admin/keys/rotate", &json!({}))?;
            out.one(&key, KEY_COLUMNS);
        }
        KeysCommand::Import {
            signing_key,
            certificate,
            passphrase_file,
        } => {
            // Parsed (and a sealed key opened) locally: a bad file is a usage error, and only
            // the key goes out. The certificate is read first, before a passphrase is asked.
            let certificate = read_text(&certificate, "certificate")?;
            let key = crate::license::custody::load_key_file(&signing_key, || {
                let files: Vec<PathBuf> = passphrase_file.into_iter().collect();
                crate::license::custody::Passphrases::new(&files, 1)?
                    .get(0, &signing_key.display().to_string())
            })
            .with_context(|| format!("{} is not a usable signing key", signing_key.display()))?;
            let body = json!({
                "signing_key": key.to_paserk().as_str(),
                "certificate": certificate,
            });
            out.one(&client.post("/v1/admin/keys/import", &body)?, KEY_COLUMNS);
        }
        KeysCommand::Certificate(CertificateCommand::Add { kid, file }) => {
            let kid = segment(&kid, "key id", &kid)?;
            let body = json!({"certificate": read_text(&file, "certificate")?});
            let added = client.post(&format!("/v1/admin/keys/{kid}/certificates"), &body)?;
            out.one(&added, CERTIFICATE_COLUMNS);
        }
        KeysCommand::Certificate(CertificateCommand::Remove { kid, cid }) => {
            let kid = segment(&kid, "key id", &kid)?;
            let cid = segment(&cid, "certificate id", &cid)?;
            let answer = client.delete(&format!("/v1/admin/keys/{kid}/certificates/{cid}"))?;
            out.done(&format!("removed certificate {cid} of key {kid}"), &answer);
        }
    }
    Ok(())
}
