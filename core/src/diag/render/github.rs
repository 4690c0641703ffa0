//! The GitHub Actions renderer: one workflow command per diagnostic
//! (`::error file=…,line=…,col=…,title=E022::message`), escaped as the runner requires.

use crate::diag::{Diagnostic, Severity};

/// Renders one annotation line per diagnostic.
pub fn render_github(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let command = match d.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = d.message.clone();
        if let Some(hint) = &d.hint {
            message.push_str("\nhelp: ");
            message.push_str(hint);
        }
        out.push_str(&format!(
            "::{command} file={},line={},col={},title={}::{}\n",
            escape_property(&d.span.file),
            d.span.line,
            d.span.col,
            d.code.as_str(),
            escape_data(&message),
        ));
    }
    out
}

/// Escapes the message part of a workflow command: `%`, CR and LF as the runner requires,
/// every other control character (ESC, BEL, C1 controls) as a visible escape, so an input
/// cannot send terminal sequences through the log.
fn escape_data(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c if c.is_control() => out.extend(c.escape_debug()),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a property value, which additionally must not contain `:` or `,`.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Code, Span};

    #[test]
    fn control_characters_are_escaped() {
        let span = Span {
            file: "a\u{1b}[2J.yaml".into(),
            line: 1,
            col: 1,
            len: 1,
            path: None,
        };
        let d = Diagnostic::new(
            Code::InvalidName,
            span,
            "name `x\u{1b}]0;pwned\u{7}\u{9b}31m`",
        );
        let out = render_github(&[d]);
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(out.contains("x\\u{1b}]0;pwned\\u{7}\\u{9b}31m"), "{out}");
        assert!(out.contains("file=a\\u{1b}[2J.yaml"), "{out}");
    }

    #[test]
    fn escapes_commands() {
        let span = Span {
            file: "dir,x/a:b.yaml".into(),
            line: 3,
            col: 4,
            len: 1,
            path: None,
        };
        let d = Diagnostic::new(Code::ExclusionOutsideDestinations, span, "50% off\nnext")
            .with_hint("h");
        assert_eq!(
            render_github(&[d]),
            "::warning file=dir%2Cx/a%3Ab.yaml,line=3,col=4,title=W002::50%25 off%0Anext%0Ahelp: h\n"
        );
    }
}
