//! The PostgreSQL backup file: JSON lines.
//!
//! ```text
//! {"header":{"format":"mcpg-auth-backup","version":1,"backend":"postgres",
//!            "schema_version":12,"migrations":[1,2,…],"created_at":1767225600,"tables":["orgs",…]}}
//! {"t":"orgs","r":{…the row as row_to_json gives it…}}
//! …
//! {"trailer":{"rows":{"orgs":3,…},"sha256":"<hex of every byte before this line>"}}
//! ```
//!
//! Tables appear in the header's order, which is a foreign-key order (a table after the
//! ones it references), each table's rows together. A file is refused unless its trailer
//! is its last line, its hash matches and its row counts match its rows: a truncated or
//! edited file is never loaded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BackupError;

/// The `format` of a header.
pub(super) const FORMAT: &str = "mcpg-auth-backup";
/// The version of this layout.
pub(super) const VERSION: u32 = 1;

/// The first line's content.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Header {
    pub(super) format: String,
    pub(super) version: u32,
    pub(super) backend: String,
    /// The highest migration applied to the database backed up.
    pub(super) schema_version: i64,
    /// Every migration applied to it.
    pub(super) migrations: Vec<i64>,
    /// When the snapshot was taken (Unix seconds).
    pub(super) created_at: u64,
    /// The tables, in the order their rows follow.
    pub(super) tables: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderLine {
    header: Header,
}

#[derive(Serialize)]
struct HeaderLineOut<'a> {
    header: &'a Header,
}

/// The last line's content.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    rows: BTreeMap<String, u64>,
    sha256: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrailerLine {
    trailer: Trailer,
}

/// A row line: the table and the row (kept as JSON text for the database to parse).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RowLine {
    pub(super) t: String,
    pub(super) r: serde_json::Value,
}

/// Writes a backup: the header, row lines, and the trailer, hashing as it goes.
pub(super) struct BackupWriter<W: Write> {
    out: W,
    hash: Sha256,
    rows: BTreeMap<String, u64>,
    bytes: u64,
}

impl<W: Write> BackupWriter<W> {
    /// Starts a file with `header`.
    pub(super) fn new(out: W, header: &Header) -> std::io::Result<Self> {
        let mut writer = Self {
            out,
            hash: Sha256::new(),
            rows: BTreeMap::new(),
            bytes: 0,
        };
        let line = serde_json::to_string(&HeaderLineOut { header })?;
        writer.line(&line)?;
        for table in &header.tables {
            writer.rows.insert(table.clone(), 0);
        }
        Ok(writer)
    }

    fn line(&mut self, line: &str) -> std::io::Result<()> {
        for part in [line.as_bytes(), b"\n"] {
            self.hash.update(part);
            self.out.write_all(part)?;
            self.bytes += part.len() as u64;
        }
        Ok(())
    }

    /// Appends a row line already rendered by the database (`{"t":…,"r":…}`).
    pub(super) fn row(&mut self, table: &str, line: &str) -> std::io::Result<()> {
        self.line(line)?;
        *self.rows.entry(table.to_owned()).or_default() += 1;
        Ok(())
    }

    /// Writes the trailer; returns the writer, the row count and the bytes written.
    pub(super) fn finish(mut self) -> std::io::Result<(W, u64, u64)> {
        let trailer = TrailerLine {
            trailer: Trailer {
                sha256: hex::encode(self.hash.clone().finalize()),
                rows: std::mem::take(&mut self.rows),
            },
        };
        let total = trailer.trailer.rows.values().sum();
        let line = serde_json::to_string(&trailer)?;
        self.line(&line)?;
        self.out.flush()?;
        Ok((self.out, total, self.bytes))
    }
}

/// A backup file read line by line. [`verify`] reads it whole first; the load then reads
/// it again with [`BackupReader::next_row`].
pub(super) struct BackupReader {
    lines: std::io::Lines<BufReader<std::fs::File>>,
}

impl BackupReader {
    /// Opens `path` and reads its header.
    pub(super) fn open(path: &Path) -> Result<(Self, Header), BackupError> {
        let file = std::fs::File::open(path).map_err(BackupError::io("read", path))?;
        let mut lines = BufReader::new(file).lines();
        let first = lines
            .next()
            .transpose()
            .map_err(BackupError::io("read", path))?
            .ok_or_else(|| BackupError::not_a_backup(path, "the file is empty"))?;
        let header = serde_json::from_str::<HeaderLine>(&first)
            .map_err(|e| BackupError::not_a_backup(path, format!("bad header: {e}")))?
            .header;
        if header.format != FORMAT || header.version != VERSION || header.backend != "postgres" {
            return Err(BackupError::not_a_backup(
                path,
                format!(
                    "the header says {} version {} for {}; this mcpg-auth reads {FORMAT} \
                     version {VERSION} for postgres",
                    header.format, header.version, header.backend
                ),
            ));
        }
        Ok((Self { lines }, header))
    }

    /// The next row, or `None` at the trailer.
    pub(super) fn next_row(&mut self, path: &Path) -> Result<Option<RowLine>, BackupError> {
        let line = self
            .lines
            .next()
            .transpose()
            .map_err(BackupError::io("read", path))?
            .ok_or_else(|| BackupError::not_a_backup(path, "it ends before its trailer"))?;
        if line.starts_with("{\"trailer\"") {
            return Ok(None);
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| BackupError::not_a_backup(path, format!("bad row line: {e}")))
    }
}

/// Reads the whole file and checks it: the trailer is the last line, the SHA-256 of what
/// precedes it matches, every row's table is in the header, in the header's order, and the
/// row counts match. Returns the header and the counts per table.
pub(super) fn verify(path: &Path) -> Result<(Header, BTreeMap<String, u64>), BackupError> {
    let bad = |reason: String| BackupError::not_a_backup(path, reason);
    let (_, header) = BackupReader::open(path)?;
    let file = std::fs::File::open(path).map_err(BackupError::io("read", path))?;
    let mut reader = BufReader::new(file);
    let mut hash = Sha256::new();
    let mut counts: BTreeMap<String, u64> = header.tables.iter().map(|t| (t.clone(), 0)).collect();
    let mut position = 0usize;
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(BackupError::io("read", path))?;
        if read == 0 {
            return Err(bad("it ends before its trailer (truncated?)".into()));
        }
        if line.starts_with(b"{\"trailer\"") {
            break;
        }
        hash.update(&line);
        if std::mem::take(&mut first) {
            continue;
        }
        let row: RowLine = serde_json::from_slice(&line)
            .map_err(|e| bad(format!("bad row line: {e} (truncated or edited?)")))?;
        let index = header.tables[position..]
            .iter()
            .position(|t| *t == row.t)
            .ok_or_else(|| bad(format!("a row of {:?} is out of the header's order", row.t)))?;
        position += index;
        *counts.entry(row.t).or_default() += 1;
    }
    let trailer: TrailerLine =
        serde_json::from_slice(&line).map_err(|e| bad(format!("bad trailer: {e} (truncated?)")))?;
    let mut rest = Vec::new();
    reader
        .read_until(b'\n', &mut rest)
        .map_err(BackupError::io("read", path))?;
    if !rest.is_empty() || !line.ends_with(b"\n") {
        return Err(bad("the trailer is not the file's last line".into()));
    }
    if hex::encode(hash.finalize()) != trailer.trailer.sha256 {
        return Err(bad(
            "its SHA-256 does not match its trailer: the file was edited or damaged".into(),
        ));
    }
    if trailer.trailer.rows != counts {
        return Err(bad(format!(
            "its trailer counts rows {:?}, the file holds {counts:?}",
            trailer.trailer.rows
        )));
    }
    Ok((header, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT.into(),
            version: VERSION,
            backend: "postgres".into(),
            schema_version: 2,
            migrations: vec![1, 2],
            created_at: 0,
            tables: vec!["orgs".into(), "gateways".into()],
        }
    }

    fn write(path: &Path, rows: &[(&str, &str)]) {
        let file = std::fs::File::create(path).expect("create");
        let mut writer = BackupWriter::new(file, &header()).expect("header");
        for (table, row) in rows {
            let line = format!("{{\"t\":\"{table}\",\"r\":{row}}}");
            writer.row(table, &line).expect("row");
        }
        writer.finish().expect("trailer");
    }

    #[test]
    fn a_written_file_verifies_and_any_change_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.jsonl");
        write(
            &path,
            &[("orgs", "{\"id\":\"o1\"}"), ("gateways", "{\"id\":\"g1\"}")],
        );
        let (_, counts) = verify(&path).expect("verifies");
        assert_eq!(counts["orgs"], 1);
        assert_eq!(counts["gateways"], 1);
        let text = std::fs::read_to_string(&path).expect("read");
        let edited = dir.path().join("edited");
        for changed in [
            text.replacen("o1", "o2", 1),
            text[..text.len() - 10].to_owned(),
            text.lines().take(2).collect::<Vec<_>>().join("\n"),
            format!("{text}{{\"t\":\"orgs\",\"r\":{{}}}}\n"),
        ] {
            std::fs::write(&edited, changed).expect("write");
            assert!(matches!(
                verify(&edited),
                Err(BackupError::NotABackup { .. })
            ));
        }
    }

    #[test]
    fn rows_out_of_the_headers_order_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.jsonl");
        write(
            &path,
            &[("gateways", "{\"id\":\"g1\"}"), ("orgs", "{\"id\":\"o1\"}")],
        );
        let error = verify(&path).expect_err("out of order");
        assert!(
            error.to_string().contains("out of the header's order"),
            "{error}"
        );
    }
}
