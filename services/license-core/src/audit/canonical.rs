//! RFC 8785 (JSON Canonicalization Scheme) for the flat objects of the audit chain: objects
//! whose members are strings or integers. Members are sorted by the UTF-16 code units of
//! their names, nothing is written between tokens, strings are escaped exactly as
//! ECMAScript's `JSON.stringify` does, and integers are written in decimal (RFC 8785 writes
//! numbers as IEEE 754 doubles; every integer the chain holds is below 2^53, where the
//! decimal form and the double's shortest form agree).

use std::fmt::Write as _;

/// A member value of a canonical object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// A string.
    Str(&'a str),
    /// An integer (|n| < 2^53).
    Int(i64),
}

/// The canonical form of an object with these members (names must be distinct).
pub fn object(members: &[(&str, Value<'_>)]) -> String {
    let mut sorted: Vec<&(&str, Value<'_>)> = members.iter().collect();
    sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    let mut out = String::with_capacity(256);
    out.push('{');
    for (index, (name, value)) in sorted.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_string(&mut out, name);
        out.push(':');
        match value {
            Value::Str(text) => write_string(&mut out, text),
            Value::Int(number) => {
                let _ = write!(out, "{number}");
            }
        }
    }
    out.push('}');
    out
}

/// Appends `text` as a JSON string with RFC 8785's escaping: `"` and `\` escaped, the
/// control characters with their short forms or `\u00xx` (lower-case hex), everything else
/// literally (UTF-8).
pub fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_sort_by_utf16_code_units_as_in_rfc_8785() {
        // RFC 8785 section 3.2.3: the sorting example.
        let members = [
            ("\u{20ac}", Value::Str("Euro Sign")),
            ("\r", Value::Str("Carriage Return")),
            ("\u{fb33}", Value::Str("Hebrew Letter Dalet With Dagesh")),
            ("1", Value::Str("One")),
            ("\u{1f600}", Value::Str("Emoji: Grinning Face")),
            ("\u{80}", Value::Str("Control")),
            ("\u{f6}", Value::Str("Latin Small Letter O With Diaeresis")),
        ];
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
             \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
             \"\u{1f600}\":\"Emoji: Grinning Face\",\
             \"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(object(&members), expected);
    }

    #[test]
    fn strings_are_escaped_as_in_rfc_8785() {
        // RFC 8785 section 3.2.2.2: "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"
        let mut out = String::new();
        write_string(&mut out, "\u{20ac}$\u{f}\nA'B\"\\\\\"/");
        assert_eq!(out, "\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"");
        let mut out = String::new();
        write_string(&mut out, "\u{8}\t\u{c}\r\u{1f}\u{7f}\u{2028}");
        assert_eq!(out, "\"\\b\\t\\f\\r\\u001f\u{7f}\u{2028}\"");
    }

    #[test]
    fn no_whitespace_and_integers_in_decimal() {
        let text = object(&[
            ("seq", Value::Int(42)),
            ("a", Value::Str("x y")),
            ("neg", Value::Int(-7)),
        ]);
        assert_eq!(text, "{\"a\":\"x y\",\"neg\":-7,\"seq\":42}");
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(parsed["seq"], 42);
    }
}
