//! The cap on one scalar (E060): a value larger than any Kubernetes object can hold is refused
//! at its position before it is copied into a tree.
//!
//! The scanner hands a one-line plain scalar over as a slice of the input, so the fast route
//! sees its length before anything is allocated for it. A stream the fast route declines is
//! scanned for the cap once more before serde-saphyr copies every value into a `String` (and,
//! at the total scalar budget, is stopped only after the copy). Both routes report the first
//! scalar over the cap in stream order, unless a syntax error comes first (then the reference
//! route reports that), so they agree.

use serde_saphyr::granit_parser::{Event, Parser};

use super::budget::Limits;
use super::fast_route;
use super::tree::Pos;
use crate::diag::{Code, Diagnostic, Span};

/// A scalar over [`Limits::max_single_scalar_bytes`], where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TooLong {
    pub bytes: usize,
    pub pos: Pos,
}

impl TooLong {
    /// `Some` when a scalar of `bytes` at `pos` is over the cap.
    pub(super) fn check(bytes: usize, pos: Pos, limits: &Limits) -> Option<TooLong> {
        (bytes > limits.max_single_scalar_bytes).then_some(TooLong { bytes, pos })
    }

    /// E060 at the scalar.
    pub(super) fn diagnostic(self, file: &str, limits: &Limits) -> Box<Diagnostic> {
        let span = Span {
            file: file.to_owned(),
            line: self.pos.line,
            col: self.pos.col,
            len: 1,
            path: None,
        };
        Box::new(
            Diagnostic::new(
                Code::ScalarTooLong,
                span,
                format!(
                    "a value of {} bytes, more than the limit of {} bytes for one value",
                    self.bytes, limits.max_single_scalar_bytes
                ),
            )
            .with_hint(
                "no Kubernetes object holds a value this large (the API server takes 3 MiB per \
                 request); remove it",
            ),
        )
    }
}

/// The first scalar of `text` over the cap, or `None` when there is none before the end or
/// before a syntax error. Skipped (returns `None` at once) when `text` is too short to hold
/// one: escapes (`\L`, `\P`) are the only spellings whose value is longer than their text,
/// 3 bytes from 2.
pub(super) fn first_too_long(text: &str, limits: &Limits) -> Option<TooLong> {
    if text.len().saturating_mul(3) / 2 <= limits.max_single_scalar_bytes {
        return None;
    }
    let (parser_options, _) = fast_route::parser_options(limits);
    for item in Parser::new_from_str_with_options(text, parser_options) {
        let (event, span) = item.ok()?;
        if let Event::Scalar(value, ..) = event
            && let Some(found) = TooLong::check(value.len(), fast_route::pos_of(&span), limits)
        {
            return Some(found);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{parse_stream, parse_stream_reference};

    fn capped(cap: usize) -> Limits {
        Limits {
            max_single_scalar_bytes: cap,
            ..Limits::default()
        }
    }

    #[test]
    fn both_routes_report_the_first_value_over_the_cap_at_its_position() {
        let limits = capped(16);
        let long = "x".repeat(17);
        for (text, at) in [
            // The fast route sees it (a borrowed plain scalar).
            (format!("a: ok\nb: {long}\nc: {long}\n"), (2, 4)),
            // The fast route declines first (an anchor), the scan finds it.
            (format!("a: &x ok\nb: \"{long}\"\nc: {long}\n"), (2, 4)),
            // A block scalar, owned by the scanner (located at its content, as the parser does).
            (format!("a: ok\nb: |\n  {long}\n"), (3, 3)),
        ] {
            for result in [
                parse_stream("t.yaml", &text, &limits),
                parse_stream_reference("t.yaml", &text, &limits),
            ] {
                let err = result.expect_err("over the cap");
                assert_eq!(err.code, Code::ScalarTooLong, "{text}");
                assert_eq!((err.span.line, err.span.col), at, "{text}");
            }
        }
    }

    #[test]
    fn values_at_the_cap_and_syntax_errors_before_one_are_not_e060() {
        let limits = capped(16);
        let at_cap = format!("a: {}\n", "x".repeat(16));
        assert!(parse_stream("t.yaml", &at_cap, &limits).is_ok());
        assert!(parse_stream_reference("t.yaml", &at_cap, &limits).is_ok());
        let broken = format!("a: b: c\nd: {}\n", "x".repeat(17));
        for result in [
            parse_stream("t.yaml", &broken, &limits),
            parse_stream_reference("t.yaml", &broken, &limits),
        ] {
            assert_eq!(result.expect_err("broken").code, Code::YamlSyntax);
        }
    }

    #[test]
    fn short_streams_are_not_scanned() {
        // 10 bytes cannot hold a value of more than 15.
        let limits = capped(15);
        assert_eq!(first_too_long("a: \"\\L\\L\"", &limits), None);
        let limits = capped(4);
        let found = first_too_long("a: \"\\L\\L\"", &limits).expect("6 bytes over 4");
        assert_eq!(found.bytes, 6);
    }
}
