//! What a `tenants.yaml` may cost before it is deserialized: its size, its shape (no YAML
//! anchors or aliases) and how many objects it declares.
//!
//! An alias repeats the node its anchor names, so a 96 KB document of one workspace with
//! 5,000 environments named by 1,000 tenants expands to five million environments: the
//! deserializer would build them all and the plan would list them all. Tenants files
//! have no use for repetition that a template engine cannot give, so anchors and aliases
//! are refused outright. The check walks the YAML event stream (a real parser, so an `&`
//! or `*` inside a quoted string is text, and one in any node position is found), and the
//! same walk counts the objects the document declares, so a document over the bound is
//! refused before any of it is built.

use saphyr_parser::{Event, Parser, ScanError, Span};

use super::TenantsError;

/// Largest document accepted, from a file or through the API.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// Default bound on the objects (orgs, workspaces, environments and API keys) one
/// document may declare.
pub(crate) const DEFAULT_MAX_OBJECTS: usize = 10_000;

/// What kind of object a sequence element is, by the keys leading to its sequence.
fn object_at(path: &[Key]) -> bool {
    matches!(
        path,
        [Key::Tenants]
            | [Key::Tenants, Key::Workspaces]
            | [Key::Tenants, Key::Workspaces, Key::Environments]
            | [Key::Tenants, Key::ApiKeys]
    )
}

/// The mapping keys that lead to objects; every other key is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Tenants,
    Workspaces,
    Environments,
    ApiKeys,
    Other,
}

impl Key {
    fn of(text: &str) -> Self {
        match text {
            "tenants" => Key::Tenants,
            "workspaces" => Key::Workspaces,
            "environments" => Key::Environments,
            "api_keys" => Key::ApiKeys,
            _ => Key::Other,
        }
    }
}

/// An open collection.
enum Frame {
    /// A sequence; `object` when its elements are objects.
    Seq { object: bool },
    /// A mapping; `key` is the key whose value comes next (`None`: a key comes next).
    Map { key: Option<Key>, depth: usize },
}

/// Checks `text` against the bounds without building it: size, no anchor or alias, at
/// most `max_objects` objects.
pub(crate) fn check(source: &str, text: &str, max_objects: usize) -> Result<(), TenantsError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(TenantsError::TooLarge(format!(
            "{source}: the document has {} bytes; at most {MAX_DOCUMENT_BYTES} are accepted",
            text.len()
        )));
    }
    let mut frames: Vec<Frame> = Vec::new();
    // Keys from the root to the current node, through mappings only.
    let mut path: Vec<Key> = Vec::new();
    let mut objects = 0_usize;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|error| syntax(source, &error))?;
        let anchored = match &event {
            Event::Alias(_) => true,
            Event::Scalar(_, _, anchor, _)
            | Event::SequenceStart(anchor, _)
            | Event::MappingStart(anchor, _) => *anchor != 0,
            _ => false,
        };
        if anchored {
            return Err(alias(source, &span));
        }
        match event {
            Event::Scalar(value, ..) => {
                objects += usize::from(begin(source, &mut frames, &mut path, Some(&value), &span)?);
            }
            Event::SequenceStart(..) => {
                objects += usize::from(begin(source, &mut frames, &mut path, None, &span)?);
                frames.push(Frame::Seq {
                    object: object_at(&path),
                });
            }
            Event::MappingStart(..) => {
                objects += usize::from(begin(source, &mut frames, &mut path, None, &span)?);
                frames.push(Frame::Map {
                    key: None,
                    depth: path.len(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                frames.pop();
                end_value(&mut frames, &mut path);
            }
            _ => {}
        }
        if objects > max_objects {
            return Err(TenantsError::TooLarge(format!(
                "{source}: line {}: the document declares more than {max_objects} objects \
                 (orgs, workspaces, environments and API keys); raise tenants_max_objects \
                 or split the fleet",
                span.start.line()
            )));
        }
    }
    Ok(())
}

/// Registers a node starting in the innermost collection; `scalar` is its text when it is
/// a scalar. Returns whether the node is an object, or `None` for a key that is not a
/// scalar (no tenants.yaml has one). A mapping key updates the path; a scalar value
/// completes its pair.
fn begin_node(frames: &mut [Frame], path: &mut Vec<Key>, scalar: Option<&str>) -> Option<bool> {
    match frames.last_mut() {
        Some(Frame::Seq { object }) => Some(*object),
        Some(Frame::Map { key, depth }) => {
            path.truncate(*depth);
            match (&key, scalar) {
                (None, Some(text)) => {
                    let next = Key::of(text);
                    path.push(next);
                    *key = Some(next);
                }
                (None, None) => return None,
                (Some(next), value) => {
                    if value.is_some() {
                        *key = None;
                    } else {
                        path.push(*next);
                    }
                }
            }
            Some(false)
        }
        None => Some(false),
    }
}

/// A collection just closed: it was the value (or the key) in its parent mapping.
fn end_value(frames: &mut [Frame], path: &mut Vec<Key>) {
    if let Some(Frame::Map { key, depth }) = frames.last_mut() {
        path.truncate(*depth);
        *key = None;
    }
}

fn begin(
    source: &str,
    frames: &mut [Frame],
    path: &mut Vec<Key>,
    scalar: Option<&str>,
    span: &Span,
) -> Result<bool, TenantsError> {
    begin_node(frames, path, scalar).ok_or_else(|| TenantsError::Invalid {
        file: source.to_owned(),
        line: Some(span.start.line()),
        column: Some(span.start.col() + 1),
        message: "mapping keys must be text".into(),
    })
}

fn location(span: &Span) -> Option<(usize, usize)> {
    Some((span.start.line(), span.start.col() + 1))
}

fn alias(source: &str, span: &Span) -> TenantsError {
    TenantsError::Alias {
        file: source.to_owned(),
        line: location(span).map(|l| l.0),
        column: location(span).map(|l| l.1),
    }
}

fn syntax(source: &str, error: &ScanError) -> TenantsError {
    let marker = error.marker();
    TenantsError::invalid(
        source,
        Some((marker.line(), marker.col() + 1)),
        format!("not valid YAML: {}", error.info()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects_ok(text: &str, max: usize) -> bool {
        check("t.yaml", text, max).is_ok()
    }

    #[test]
    fn objects_are_counted_by_where_they_are() {
        let doc = "tenants:\n- id: a\n  display_name: A\n  tier: free\n  \
                   entitlements:\n    add: [\"plugin:x\", \"plugin:y\"]\n  \
                   workspaces:\n  - name: w\n    environments: [dev, prod]\n  \
                   api_keys:\n  - key_hash: x\n";
        // 1 org + 1 workspace + 2 environments + 1 key; the entitlements do not count.
        assert!(objects_ok(doc, 5));
        assert!(!objects_ok(doc, 4));
        let flow = "{tenants: [{id: a, workspaces: [{name: w, environments: [d, p]}]}]}";
        assert!(objects_ok(flow, 4));
        assert!(!objects_ok(flow, 3));
    }

    #[test]
    fn anchors_and_aliases_are_refused_wherever_they_are() {
        for doc in [
            "tenants: &t []\n",
            "tenants:\n- &a {id: a}\n- *a\n",
            "tenants:\n- id: &s a\n",
            "x: &k key\n*k : 1\n",
        ] {
            assert!(
                matches!(check("t.yaml", doc, 100), Err(TenantsError::Alias { .. })),
                "{doc}"
            );
        }
        for doc in [
            "tenants:\n- id: a\n  display_name: \"&a *a\"\n",
            "tenants:\n- id: a\n  display_name: 'x &a'\n",
            "tenants:\n- id: a\n  display_name: |\n    *a\n",
            "# &a *a\ntenants: []\n",
            "tenants:\n- id: a\n  display_name: R&D *now*\n",
        ] {
            assert!(check("t.yaml", doc, 100).is_ok(), "{doc}");
        }
    }

    #[test]
    fn oversized_documents_are_refused_before_parsing() {
        let doc = format!("tenants: []\n#{}\n", "x".repeat(MAX_DOCUMENT_BYTES));
        assert!(matches!(
            check("t.yaml", &doc, 10),
            Err(TenantsError::TooLarge(_))
        ));
    }
}
