//! The human renderer, in the style of rustc: header, location arrow, the source line with a
//! caret under the offending token, then `= help:` and related notes.

use std::fmt::Write;

use super::{Sources, escape_controls as escaped};
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
        escaped(&d.message)
    );
    let gutter = d.span.line.to_string().len();
    location(out, &d.span, gutter);
    snippet(out, &d.span, sources, gutter);
    if let Some(hint) = &d.hint {
        let _ = writeln!(out, "{:gutter$} = help: {}", "", escaped(hint));
    }
    for related in &d.related {
        let _ = writeln!(out, "{:gutter$} = note: {}", "", escaped(&related.message));
        let g = related.span.line.to_string().len();
        location(out, &related.span, g);
        snippet(out, &related.span, sources, g);
    }
}

fn location(out: &mut String, span: &Span, gutter: usize) {
    let _ = write!(
        out,
        "{:gutter$}--> {}:{}:{}",
        "",
        escaped(&span.file),
        span.line,
        span.col
    );
    match &span.path {
        Some(path) if !path.is_empty() => {
            let _ = writeln!(out, " ({})", escaped(path));
        }
        _ => out.push('\n'),
    }
}

/// Characters of a quoted source line shown around the caret; longer lines are cut.
const SNIPPET_WIDTH: usize = 160;

fn snippet(out: &mut String, span: &Span, sources: &Sources, gutter: usize) {
    let Some(line) = sources.line(&span.file, span.line) else {
        return;
    };
    // Counted and windowed without collecting the line's characters: a `Vec<char>` of a
    // 100 MB line was 400 MB (and 800 MB of address while growing).
    let count = line.chars().count();
    let start = usize::try_from(span.col.saturating_sub(1)).unwrap_or(0);
    if start > count {
        return;
    }
    // A window of the line around the caret, so a megabyte-long line prints as one screen.
    let from = if count <= SNIPPET_WIDTH {
        0
    } else {
        start
            .saturating_sub(SNIPPET_WIDTH / 2)
            .min(count - SNIPPET_WIDTH)
    };
    let to = count.min(from + SNIPPET_WIDTH);
    let shown: String = line
        .chars()
        .skip(from)
        .take(to - from)
        .map(visible)
        .collect();
    let (before, after) = (
        if from > 0 { "…" } else { "" },
        if to < count { "…" } else { "" },
    );
    // The caret covers the token, clipped to the window; at least one character.
    let rest = to.saturating_sub(start);
    let wanted = usize::try_from(span.len).unwrap_or(1);
    let width = wanted.min(rest).max(1);
    let indent = start - from + before.chars().count();
    let _ = writeln!(out, "{:gutter$} |", "");
    let _ = writeln!(out, "{} | {before}{shown}{after}", span.line);
    let _ = writeln!(out, "{:gutter$} | {:indent$}{}", "", "", "^".repeat(width));
}

/// One printable character per source character, so the caret column stays right and the
/// input cannot send terminal escape sequences: tabs become spaces, other controls `�`.
fn visible(c: char) -> char {
    match c {
        '\t' => ' ',
        c if c.is_control() => '\u{fffd}',
        c => c,
    }
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

#[cfg(test)]
mod hostile_tests {
    use super::*;
    use crate::diag::Code;

    fn span(line: u32, col: u32, len: u32) -> Span {
        Span {
            file: "f.yaml".into(),
            line,
            col,
            len,
            path: None,
        }
    }

    #[test]
    fn long_lines_are_cut_to_a_window_with_the_caret_inside() {
        let mut sources = Sources::default();
        let line = format!("name: {}BAD{}", "a".repeat(5_000), "z".repeat(5_000));
        sources.insert("f.yaml", line);
        let d = Diagnostic::new(Code::InvalidName, span(1, 5_007, 3), "bad");
        let text = render_human(&[d], &sources);
        let lines: Vec<&str> = text.lines().collect();
        assert!(text.len() < 800, "{} bytes", text.len());
        let quoted = lines[3].split_once("| ").map(|(_, q)| q).unwrap_or("");
        let caret = lines[4].split_once("| ").map(|(_, q)| q).unwrap_or("");
        let at = caret.find('^').unwrap_or(0);
        let under: String = quoted.chars().skip(at).take(3).collect();
        assert_eq!(under, "BAD", "{text}");
        assert!(quoted.starts_with('…') && quoted.ends_with('…'), "{quoted}");
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let mut sources = Sources::default();
        sources.insert("f.yaml", "a:\t\u{1b}[31mred\n");
        let d = Diagnostic::new(Code::InvalidName, span(1, 4, 1), "name `x\ny\u{1b}[2J`")
            .with_hint("hint\u{7}");
        let text = render_human(&[d], &sources);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(text.contains("name `x\\ny\\u{1b}[2J`"), "{text}");
        assert!(text.contains("1 | a: \u{fffd}[31mred"), "{text}");
    }

    #[test]
    fn file_names_and_paths_are_escaped_too() {
        let span = Span {
            file: "evil\u{1b}]0;x\u{7}.yaml".into(),
            line: 1,
            col: 1,
            len: 1,
            path: Some("spec\u{9b}".into()),
        };
        let d = Diagnostic::new(Code::InvalidName, span, "m");
        let text = render_human(&[d], &Sources::default());
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains("evil\\u{1b}]0;x\\u{7}.yaml:1:1"), "{text}");
    }
}
