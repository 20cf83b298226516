//! `gateway register ORG/WS/ENV NAME --count N --credentials-file FILE`: a fleet in batches
//! of 1,000 (the server's bulk path), the credentials appended as JSON lines to a new 0600
//! file after each batch and synced — never printed, and never held only in memory, since
//! the server shows each credential once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::commands::Printer;
use super::{Client, ClientError};

/// Gateways per request: the server's batch limit.
const BATCH: u32 = 1_000;

/// The most gateways one command registers.
pub(super) const MAX_COUNT: u32 = 1_000_000;

/// Registers `count` gateways named `NAME-1`…`NAME-N` (numbers zero-padded to N's width,
/// `edge-0001` for 5,000), in batches, into `url` (`…/gateways`); appends
/// `{"id","name","credential"}` lines to the new file `file` after each batch. A refused
/// batch registers nothing and the error says how many were registered before it; a batch
/// whose answer was lost may have been registered, and the error names its range.
pub(super) fn register_many(
    client: &Client,
    out: &Printer,
    url: &str,
    name: &str,
    count: u32,
    path: &Path,
) -> anyhow::Result<()> {
    if count == 0 || count > MAX_COUNT {
        bail!("--count must be between 1 and {MAX_COUNT}");
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(crate::files::SECRET_MODE)
        .open(path)
        .with_context(|| format!("cannot create {} (choose a new file name)", path.display()))?;
    let width = count.to_string().len();
    let label = |i: u32| format!("{name}-{i:0width$}");
    let mut registered: u32 = 0;
    while registered < count {
        let size = BATCH.min(count - registered);
        let (first, last) = (registered + 1, registered + size);
        let gateways: Vec<Value> = (first..=last)
            .map(|i| json!({ "name": label(i) }))
            .collect();
        let answer = match client.post(&format!("{url}/batch"), &json!({ "gateways": gateways })) {
            Ok(answer) => answer,
            Err(error) => {
                if registered == 0 {
                    // Nothing to keep: leave no empty file behind.
                    drop(file);
                    let _ = std::fs::remove_file(path);
                }
                let done = match registered {
                    0 => "no gateway was registered".to_owned(),
                    n => format!(
                        "{n} of {count} gateways were registered; their credentials are in {}",
                        path.display()
                    ),
                };
                let unsure = match &error {
                    // No answer: the server may have committed the batch.
                    ClientError::Unreachable { .. } => format!(
                        "; the batch {}…{} may have been registered without its credentials \
                         reaching us: list them (`mcpg-ctl gateway list`) and revoke them",
                        label(first),
                        label(last)
                    ),
                    _ => String::new(),
                };
                return Err(anyhow::Error::new(error).context(format!("{done}{unsure}")));
            }
        };
        append(&mut file, &answer, path)?;
        registered = last;
    }
    out.done(
        &format!(
            "registered {registered} gateways; credentials (one JSON object per line) in {}",
            path.display()
        ),
        &json!({ "registered": registered, "credentials_file": path.display().to_string() }),
    );
    Ok(())
}

/// Appends one batch's credentials and syncs them to disk before the next batch is asked.
fn append(file: &mut File, answer: &Value, path: &Path) -> anyhow::Result<()> {
    let mut lines = String::new();
    for gateway in answer["gateways"].as_array().into_iter().flatten() {
        let line = json!({
            "id": gateway["id"], "name": gateway["name"], "credential": gateway["credential"],
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    file.write_all(lines.as_bytes())
        .and_then(|()| file.sync_data())
        .with_context(|| format!("cannot write the credentials to {}", path.display()))
}
