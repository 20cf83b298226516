//! How `mcpg-ctl` prints answers: aligned tables for people, the server's JSON for
//! scripts (`--output json`).

use serde_json::Value;

/// One column: its heading and the field of each JSON object it shows.
pub type Column = (&'static str, &'static str);

/// A field as text: strings bare, null as `-`, arrays joined by commas.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(map) if map.is_empty() => "-".into(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", cell(v)))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Rows of JSON objects as an aligned table with a heading line.
pub fn table(rows: &[Value], columns: &[Column]) -> String {
    let grid: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|(_, field)| cell(&row[*field]))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (heading, _))| {
            grid.iter()
                .map(|r| r[i].chars().count())
                .chain([heading.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(columns.iter().map(|(h, _)| h.to_uppercase()).collect());
    out.push('\n');
    for row in grid {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

/// One JSON object as `field  value` lines, in the order given.
pub fn record(value: &Value, columns: &[Column]) -> String {
    let width = columns.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
    columns
        .iter()
        .map(|(heading, field)| format!("{heading:<width$}  {}\n", cell(&value[*field])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_show_missing_values_as_dashes() {
        let rows = [
            json!({"slug": "acme-corp", "status": "active", "trial_expires_at": null}),
            json!({"slug": "b", "status": "suspended"}),
        ];
        let text = table(
            &rows,
            &[
                ("slug", "slug"),
                ("status", "status"),
                ("trial", "trial_expires_at"),
            ],
        );
        assert_eq!(
            text,
            "SLUG       STATUS     TRIAL\nacme-corp  active     -\nb          suspended  -\n"
        );
    }

    #[test]
    fn cells_flatten_arrays_and_objects() {
        assert_eq!(cell(&json!(["a", "b"])), "a,b");
        assert_eq!(cell(&json!({"rps": 5})), "rps=5");
        assert_eq!(cell(&json!(3)), "3");
    }
}
