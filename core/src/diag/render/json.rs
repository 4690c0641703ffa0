//! The JSON renderer: a pretty-printed array of objects whose field names are part of the
//! stable interface (`code`, `severity`, `title`, `message`, `file`, `line`, `column`, `path`,
//! `hint`, `related`).

use serde_json::{Value, json};

use crate::diag::{Diagnostic, Span};

/// Renders all diagnostics as one JSON array, followed by a newline.
pub fn render_json(diagnostics: &[Diagnostic]) -> String {
    let list: Vec<Value> = diagnostics.iter().map(object).collect();
    let mut text = serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".to_owned());
    text.push('\n');
    text
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
}
