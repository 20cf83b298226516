//! `gateway register ORG/WS/ENV NAME --count N --credentials-file FILE`: a fleet in batches
//! of 1,000 (the server's bulk path), the credentials written as JSON lines to a new 0600
//! file — never to the terminal.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::Client;
use super::commands::Printer;

/// Gateways per request: the server's batch limit.
const BATCH: u32 = 1_000;

/// The most gateways one command registers.
pub(super) const MAX_COUNT: u32 = 1_000_000;

/// Registers `count` gateways named `NAME-00001`…, in batches, into `url` (`…/gateways`);
/// writes `{"id","name","credential"}` lines to `file`. What was registered before a
/// refused batch is still written, and the error says how many.
pub(super) fn register_many(
    client: &Client,
    out: &Printer,
    url: &str,
    name: &str,
    count: u32,
    file: &Path,
) -> anyhow::Result<()> {
    if count == 0 || count > MAX_COUNT {
        bail!("--count must be between 1 and {MAX_COUNT}");
    }
    crate::files::check_output(file, false)?;
    let width = count.to_string().len();
    let mut lines = String::new();
    let mut registered: u32 = 0;
    let mut failure = None;
    while registered < count {
        let size = BATCH.min(count - registered);
        let gateways: Vec<Value> = (registered + 1..=registered + size)
            .map(|i| json!({ "name": format!("{name}-{i:0width$}") }))
            .collect();
        match client.post(&format!("{url}/batch"), &json!({ "gateways": gateways })) {
            Ok(answer) => {
                for gateway in answer["gateways"].as_array().into_iter().flatten() {
                    let line = json!({
                        "id": gateway["id"], "name": gateway["name"],
                        "credential": gateway["credential"],
                    });
                    lines.push_str(&line.to_string());
                    lines.push('\n');
                }
                registered += size;
            }
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    if registered > 0 {
        crate::files::write_secret(file, lines.as_bytes(), "choose a new file name")
            .with_context(|| format!("{registered} gateways were registered"))?;
    }
    if let Some(error) = failure {
        return Err(anyhow::Error::new(error).context(match registered {
            0 => "no gateway was registered".to_owned(),
            n => format!(
                "{n} of {count} gateways were registered; their credentials are in {}",
                file.display()
            ),
        }));
    }
    out.done(
        &format!(
            "registered {registered} gateways; credentials (one JSON object per line) in {}",
            file.display()
        ),
        &json!({ "registered": registered, "credentials_file": file.display().to_string() }),
    );
    Ok(())
}
