//! Safe YAML scalars for template output.
//!
//! Every value a template interpolates goes through [`write_value`], either explicitly through
//! the `yaml` filter or implicitly through the auto-escape formatter (so a forgotten filter still
//! yields safe output). A string becomes either a plain scalar, when it is so conservative that
//! no YAML 1.1 or 1.2 reader can take it for anything but that string, or a double-quoted scalar
//! with every character outside YAML's printable set escaped. Either way it stays on one line and
//! cannot change the structure of the document around it.

use std::fmt::Write;

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};

/// Words that YAML 1.1 resolves to booleans or null when plain (case-insensitive).
const RESERVED_WORDS: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

/// Writes `s` as a YAML scalar that reads back as exactly `s`.
pub fn write_str(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else {
        write_double_quoted(out, s);
    }
}

/// `s` as a YAML scalar (see [`write_str`]).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str(&mut out, s);
    out
}

/// True when `s` can be written as a plain scalar: it starts with an ASCII letter, uses only
/// `[A-Za-z0-9._/-]` and is not a reserved word. That excludes numbers, timestamps, `~`,
/// indicators (`:`, `#`, `-`, `{`, ...) and whitespace, so the scalar resolves to a string in
/// every YAML version.
fn is_plain_safe(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !RESERVED_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

/// Writes `s` double-quoted, escaping what a double-quoted YAML scalar cannot hold verbatim.
fn write_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_verbatim(c) => out.push(c),
            // Writing to a String cannot fail.
            c if (c as u32) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// YAML's printable set (c-printable) minus the characters some readers treat as line breaks
/// (NEL, LS, PS) or strip (BOM); those are escaped instead.
pub(crate) fn is_verbatim(c: char) -> bool {
    matches!(c as u32,
        0x20..=0x7e | 0xa0..=0x2027 | 0x202a..=0xd7ff | 0xe000..=0xfefe | 0xff00..=0xfffd
        | 0x10000..=0x10ffff)
}

/// Writes a template value as YAML: strings via [`write_str`], numbers, booleans and none as
/// plain scalars, sequences and maps in flow style. Undefined values and opaque objects are an
/// error, never empty output.
pub fn write_value(out: &mut String, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::String => write_str(out, value.as_str().unwrap_or_default()),
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => write_number(out, value)?,
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (i, item) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, &item)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (i, key) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, &key)?;
                out.push_str(": ");
                write_value(out, &value.get_item(&key)?)?;
            }
            out.push('}');
        }
        ValueKind::Undefined => {
            return Err(Error::new(
                ErrorKind::UndefinedError,
                "undefined value cannot be written as YAML",
            ));
        }
        kind => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("a value of kind {kind} cannot be written as YAML"),
            ));
        }
    }
    Ok(())
}

/// Integers verbatim; floats in a form YAML reads back as the same float.
fn write_number(out: &mut String, value: &Value) -> Result<(), Error> {
    if let Some(i) = value.as_i64() {
        let _ = write!(out, "{i}");
        return Ok(());
    }
    let float = f64::try_from(value.clone())?;
    if float.is_nan() {
        out.push_str(".nan");
    } else if float.is_infinite() {
        out.push_str(if float > 0.0 { ".inf" } else { "-.inf" });
    } else {
        // `{:?}` keeps a `.0` on whole floats so they stay floats.
        let _ = write!(out, "{float:?}");
    }
    Ok(())
}

/// The `yaml` template filter: the value as a YAML scalar (or flow collection), marked safe so
/// that auto-escaping does not quote it twice.
pub fn yaml_filter(value: Value) -> Result<Value, Error> {
    let mut out = String::new();
    write_value(&mut out, &value)?;
    Ok(Value::from_safe_string(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conservative_words_stay_plain() {
        for s in [
            "backend",
            "eth1",
            "io.kubernetes.pod.namespace",
            "app.kubernetes.io/name",
        ] {
            assert_eq!(quote(s), s);
        }
    }

    #[test]
    fn ambiguous_or_structural_strings_are_quoted() {
        assert_eq!(quote(""), r#""""#);
        assert_eq!(quote("yes"), r#""yes""#);
        assert_eq!(quote("Off"), r#""Off""#);
        assert_eq!(quote("0.0.0.0/0"), r#""0.0.0.0/0""#);
        assert_eq!(quote("1e3"), r#""1e3""#);
        assert_eq!(quote("a: b"), r#""a: b""#);
        assert_eq!(quote("-x"), r#""-x""#);
        assert_eq!(quote("2001:db8::/32"), r#""2001:db8::/32""#);
    }

    #[test]
    fn escapes_quotes_breaks_and_non_printables() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny"), r#""x\ny""#);
        assert_eq!(
            quote("\u{7f}\u{85}\u{2028}\u{feff}"),
            r#""\x7f\x85\u2028\ufeff""#
        );
        assert_eq!(quote("é"), "\"é\"");
    }

    #[test]
    fn collections_are_flow_style() {
        let value = Value::from(minijinja::value::Serde(
            serde_json::json!({"k": ["a b", 1, true, null]}),
        ));
        let mut out = String::new();
        write_value(&mut out, &value).unwrap();
        assert_eq!(out, r#"{k: ["a b", 1, true, null]}"#);
    }

    #[test]
    fn undefined_is_an_error() {
        assert!(write_value(&mut String::new(), &Value::UNDEFINED).is_err());
    }
}
