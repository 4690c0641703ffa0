//! A small block-style YAML writer for JSON values (used for the generated CRDs). Deterministic
//! (map keys come sorted from `serde_json`), infallible, and built on the same scalar quoting as
//! the templates; multi-line text becomes a literal block when that reads back identically.

use serde_json::Value;

use super::yaml_scalar;

/// `value` as a YAML document body (no `---`), ending with a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            write_inline(&mut out, scalar, 2);
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, level: usize) {
    out.extend(std::iter::repeat_n(' ', level));
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, level: usize) {
    for (key, value) in map {
        indent(out, level);
        yaml_scalar::write_str(out, key);
        out.push(':');
        write_child(out, value, level);
    }
}

fn write_seq(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        out.push('-');
        match item {
            // A map item starts on the dash line, its other keys aligned under the first.
            Value::Object(map) if !map.is_empty() => {
                let mut nested = String::new();
                write_map(&mut nested, map, level + 2);
                out.push(' ');
                out.push_str(&nested[level + 2..]);
            }
            _ => write_child(out, item, level),
        }
    }
}

/// Writes what follows `key:` or `-`: a nested block on the next lines, or ` scalar\n`.
fn write_child(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, level + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, level + 2);
        }
        _ => {
            out.push(' ');
            write_inline(out, value, level + 2);
            out.push('\n');
        }
    }
}

fn write_inline(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) if literal_block_ok(s) => {
            out.push_str("|-");
            for line in s.split('\n') {
                out.push('\n');
                if !line.is_empty() {
                    indent(out, level);
                    out.push_str(line);
                }
            }
        }
        Value::String(s) => yaml_scalar::write_str(out, s),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// A `|-` block reads back as `s` when `s` has several lines, no leading space on the first
/// line (that would need an indentation indicator), no trailing whitespace on any line, no
/// trailing newline and only printable characters.
fn literal_block_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && !s.ends_with('\n')
        && s.split('\n').all(|line| !line.ends_with([' ', '\t']))
        && s.chars().all(|c| c == '\n' || yaml_scalar::is_verbatim(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_a_yaml_reader() {
        let value = json!({
            "a": {"b": [1, "two", {"c": true, "d": null}, [], {}], "e": "x: y"},
            "text": "line one\n\nline \"three\"",
            "odd": " leading\nand trailing \n",
            "list": [{"k": "v", "l": ["m"]}],
            "": "empty key"
        });
        let yaml = to_yaml(&value);
        let back: Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, value, "{yaml}");
        assert!(
            yaml.contains("text: |-\n  line one\n\n  line \"three\"\n"),
            "{yaml}"
        );
    }
}
