//! The JSON renderer: a pretty-printed array of objects whose field names are part of the
//! stable interface (`code`, `severity`, `title`, `message`, `file`, `line`, `column`, `path`,
//! `hint`, `related`).

use serde_json::{Value, json};

use crate::diag::{Diagnostic, Span};

/// Renders all diagnostics as one JSON array, followed by a newline.
pub fn render_json(diagnostics: &[Diagnostic]) -> String {
    let list: Vec<Value> = diagnostics.iter().map(object).collect();
    let text = serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".to_owned());
    let mut text = escape_remaining_controls(&text);
    text.push('\n');
    text
}

/// serde_json escapes the controls below U+0020 only; DEL and the C1 controls (U+0080–U+009F,
/// among them CSI, U+009B) would reach a terminal that shows the report. They can only occur
/// inside JSON strings, where `\uXXXX` is the same character.
fn escape_remaining_controls(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_control() && c != '\n' {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn object(d: &Diagnostic) -> Value {
    let mut value = location(&d.span);
    value["code"] = json!(d.code.as_str());
    value["severity"] = json!(d.severity().as_str());
    value["title"] = json!(d.code.title());
    value["message"] = json!(d.message);
    value["hint"] = json!(d.hint);
    value["related"] = d
        .related
        .iter()
        .map(|r| {
            let mut rel = location(&r.span);
            rel["message"] = json!(r.message);
            rel
        })
        .collect();
    value
}

fn location(span: &Span) -> Value {
    json!({
        "file": span.file,
        "line": span.line,
        "column": span.col,
        "path": span.path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Code;

    #[test]
    fn objects_carry_stable_fields() {
        let d = Diagnostic::new(Code::DuplicateName, Span::file("a.yaml"), "dup")
            .with_related(Span::file("b.yaml"), "first defined here");
        let parsed: Value = serde_json::from_str(&render_json(&[d])).unwrap();
        assert_eq!(parsed[0]["code"], "E021");
        assert_eq!(parsed[0]["severity"], "error");
        assert_eq!(parsed[0]["file"], "a.yaml");
        assert_eq!(parsed[0]["hint"], Value::Null);
        assert_eq!(parsed[0]["related"][0]["file"], "b.yaml");
    }

    #[test]
    fn no_control_character_reaches_the_output() {
        let message = "x\u{1b}[31m\u{7f}\u{9b}2J\u{7}";
        let d = Diagnostic::new(Code::InvalidName, Span::file("a\u{85}.yaml"), message);
        let text = render_json(&[d]);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed[0]["message"], message);
        assert_eq!(parsed[0]["file"], "a\u{85}.yaml");
    }
}
