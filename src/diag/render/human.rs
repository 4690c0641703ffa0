//! The human renderer, in the style of rustc: header, location arrow, the source line with a
//! caret under the offending token, then `= help:` and related notes.

use std::fmt::Write;

use super::Sources;
use crate::diag::{Diagnostic, Span};

/// Renders every diagnostic followed by a blank line.
pub fn render_human(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        render_one(&mut out, diagnostic, sources);
        out.push('\n');
    }
    out
}

fn render_one(out: &mut String, d: &Diagnostic, sources: &Sources) {
    // Writing into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(
        out,
        "{}[{}]: {}",
        d.severity().as_str(),
        d.code.as_str(),
        d.message
    );
    let gutter = d.span.line.to_string().len();
    location(out, &d.span, gutter);
    snippet(out, &d.span, sources, gutter);
    if let Some(hint) = &d.hint {
        let _ = writeln!(out, "{:gutter$} = help: {hint}", "");
    }
    for related in &d.related {
        let _ = writeln!(out, "{:gutter$} = note: {}", "", related.message);
        let g = related.span.line.to_string().len();
        location(out, &related.span, g);
        snippet(out, &related.span, sources, g);
    }
}

fn location(out: &mut String, span: &Span, gutter: usize) {
    let _ = write!(
        out,
        "{:gutter$}--> {}:{}:{}",
        "", span.file, span.line, span.col
    );
    match &span.path {
        Some(path) if !path.is_empty() => {
            let _ = writeln!(out, " ({path})");
        }
        _ => out.push('\n'),
    }
}

fn snippet(out: &mut String, span: &Span, sources: &Sources, gutter: usize) {
    let Some(line) = sources.line(&span.file, span.line) else {
        return;
    };
    let chars: Vec<char> = line.chars().collect();
    let start = usize::try_from(span.col.saturating_sub(1)).unwrap_or(0);
    if start > chars.len() {
        return;
    }
    // The caret covers the token, clipped to the line; at least one character.
    let rest = chars.len() - start;
    let wanted = usize::try_from(span.len).unwrap_or(1);
    let width = wanted.min(rest).max(1);
    let _ = writeln!(out, "{:gutter$} |", "");
    let _ = writeln!(out, "{} | {line}", span.line);
    let _ = writeln!(out, "{:gutter$} | {:start$}{}", "", "", "^".repeat(width));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Code;

    #[test]
    fn quotes_the_line_and_underlines_the_token() {
        let mut sources = Sources::default();
        sources.insert("p.yaml", "spec:\n  egressGatewayName: my-egressgw\n");
        let span = Span {
            file: "p.yaml".into(),
            line: 2,
            col: 22,
            len: 11,
            path: Some("spec.egressGatewayName".into()),
        };
        let d = Diagnostic::new(Code::UnknownGateway, span, "unknown gateway")
            .with_hint("did you mean `myegressgw`?");
        let text = render_human(&[d], &sources);
        let expected = "error[E022]: unknown gateway\n \
                        --> p.yaml:2:22 (spec.egressGatewayName)\n  \
                        |\n\
                        2 |   egressGatewayName: my-egressgw\n  \
                        |                      ^^^^^^^^^^^\n  \
                        = help: did you mean `myegressgw`?\n\n";
        assert_eq!(text, expected);
    }
}
