//! Loading: text of a YAML or JSON stream → located documents ([`Document`]), under explicit
//! budgets. Pure: the caller reads files; this module sees only names and text.
//!
//! Each document is parsed once into a located tree ([`tree::Node`]) that doubles as the
//! source map; typed values are then deserialized from the tree ([`de`]), so serde errors and
//! semantic checks alike can point at the exact value.
//!
//! Two routes build the tree: serde-saphyr with `Spanned` positions
//! ([`parse_stream_reference`], the definition, and the source of every loader diagnostic),
//! and a route straight from the parser's events (`fast_route`) that is several times cheaper and
//! covers the plain shape of real inputs. [`parse_stream`] takes the direct route and falls
//! back to the reference one whenever the direct route declines.

pub mod budget;
pub mod de;
mod duplicates;
mod fast_route;
pub mod path;
mod scalar_cap;
pub mod text;
pub mod tree;

pub use budget::Limits;
pub use path::Path;
pub use tree::{Node, Pos, Value};

use crate::diag::{Code, Diagnostic, Span};

/// One document of an input stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The file name as shown in diagnostics.
    pub file: String,
    /// The document's root value.
    pub root: Node,
    /// Where `root` sits inside the file's top-level value: empty for a top-level document,
    /// `items[3]` for an item unwrapped from a `List`.
    pub base: Path,
}

impl Document {
    /// The span of the value at `path` (relative to this document), or of its deepest
    /// existing ancestor.
    pub fn span(&self, path: &Path) -> Span {
        self.span_at(self.root.locate(path), path)
    }

    /// The span of the key of the entry at `path`.
    pub fn key_span(&self, path: &Path) -> Span {
        self.span_at(self.root.locate_key(path), path)
    }

    /// A span at `pos` labelled with `path`.
    pub fn span_at(&self, pos: Pos, path: &Path) -> Span {
        let full = self.base.join(path);
        Span {
            file: self.file.clone(),
            line: pos.line,
            col: pos.col,
            len: pos.len,
            path: (!full.is_root()).then(|| full.to_string()),
        }
    }

    /// The string at `path`, if present and a string.
    pub fn str_at(&self, path: &Path) -> Option<&str> {
        self.root.at(path).and_then(Node::as_str)
    }
}

/// Parses every document of `text` (YAML, or JSON which is YAML). Empty documents (a bare
/// `---`, only comments, `null`) are skipped. A syntax error or an exceeded budget yields one
/// diagnostic for the whole stream: what follows a syntax error cannot be trusted.
pub fn parse_stream(
    file: &str,
    text: &str,
    limits: &Limits,
) -> Result<Vec<Document>, Box<Diagnostic>> {
    parse_stream_needed(file, text, limits, None)
}

/// The fields of an object a reader looks at, for leaving the others out of the tree: pairs
/// of a path inside the object (keys, and [`Needed::ITEM`] for the items of a sequence) and
/// the keys to keep in the mappings found there. Mappings on other paths are kept whole. An
/// object is a document's root, or an item of a `List`'s `items`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needed(pub &'static [(&'static [&'static str], &'static [&'static str])]);

impl Needed {
    /// The path step that stands for every item of a sequence.
    pub const ITEM: &'static str = "[]";
}

/// [`parse_stream`] for a reader that looks only at the fields in `needed`: the others may
/// be missing from the documents (they are when the direct route parses the stream), which
/// saves most of the memory of a large inventory. Diagnostics are those of `parse_stream`.
pub fn parse_stream_needed(
    file: &str,
    text: &str,
    limits: &Limits,
    needed: Option<&Needed>,
) -> Result<Vec<Document>, Box<Diagnostic>> {
    if let Some(diagnostic) = over_budget(file, text, limits) {
        return Err(diagnostic);
    }
    let roots = match fast_route::parse(text, limits, needed) {
        fast_route::Route::Parsed(roots) => roots,
        fast_route::Route::ScalarTooLong(found) => return Err(found.diagnostic(file, limits)),
        fast_route::Route::Declined => capped_reference_roots(file, text, limits)?,
    };
    Ok(documents(file, roots))
}

/// [`parse_stream`] through serde-saphyr alone: the reference the direct route must agree
/// with (`core/tests/load_equivalence.rs` compares them).
pub fn parse_stream_reference(
    file: &str,
    text: &str,
    limits: &Limits,
) -> Result<Vec<Document>, Box<Diagnostic>> {
    if let Some(diagnostic) = over_budget(file, text, limits) {
        return Err(diagnostic);
    }
    Ok(documents(file, capped_reference_roots(file, text, limits)?))
}

/// The reference route behind the per-scalar cap: serde-saphyr copies every value, so a
/// stream that may hold one over the cap is scanned for it first.
fn capped_reference_roots(
    file: &str,
    text: &str,
    limits: &Limits,
) -> Result<Vec<Node>, Box<Diagnostic>> {
    if let Some(found) = scalar_cap::first_too_long(text, limits) {
        return Err(found.diagnostic(file, limits));
    }
    reference_roots(file, text, limits)
}

fn reference_roots(file: &str, text: &str, limits: &Limits) -> Result<Vec<Node>, Box<Diagnostic>> {
    serde_saphyr::from_str_multiple_with_options::<Node, Vec<Node>>(text, limits.options()).map_err(
        |error| {
            let mut diagnostic = budget::diagnose(file, &error, limits);
            if let Some(key) = budget::duplicate_key(&error)
                && let Some(pos) = duplicates::locate(text, limits, key)
            {
                (diagnostic.span.line, diagnostic.span.col) = (pos.line, pos.col);
            }
            Box::new(diagnostic)
        },
    )
}

/// E002 for a stream over the byte budget, checked before any parsing.
fn over_budget(file: &str, text: &str, limits: &Limits) -> Option<Box<Diagnostic>> {
    (text.len() > limits.max_bytes)
        .then(|| too_large(file, u64::try_from(text.len()).ok(), limits.max_bytes))
}

/// E002 for `file`, of `size` bytes when known (a stream is not read to its end once it is
/// over the budget of `max_bytes`).
pub fn too_large(file: &str, size: Option<u64>, max_bytes: usize) -> Box<Diagnostic> {
    let message = match size {
        Some(size) => format!("input is {size} bytes, more than the budget of {max_bytes} bytes"),
        None => format!("input is more than the budget of {max_bytes} bytes"),
    };
    Box::new(
        Diagnostic::new(Code::InputTooLarge, Span::file(file), message)
            .with_hint("split the input into several files"),
    )
}

/// The non-empty documents of a stream.
fn documents(file: &str, roots: Vec<Node>) -> Vec<Document> {
    roots
        .into_iter()
        .filter(|root| !root.is_null())
        .map(|root| Document {
            file: file.to_owned(),
            root,
            base: Path::root(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Document> {
        parse_stream("t.yaml", text, &Limits::default()).expect("parses")
    }

    #[test]
    fn positions_are_one_based_and_absolute_in_the_stream() {
        let docs = parse("---\n# c\n---\na: 1\n---\nkind: X\nspec:\n  name: my-egressgw\n");
        assert_eq!(docs.len(), 2, "empty document skipped");
        let path = Path::root().key("spec").key("name");
        let span = docs[1].span(&path);
        assert_eq!((span.line, span.col), (8, 9));
        assert_eq!(span.len, 11);
        assert_eq!(span.path.as_deref(), Some("spec.name"));
        let key = docs[1].key_span(&path);
        assert_eq!((key.line, key.col), (8, 3));
    }

    #[test]
    fn missing_values_locate_their_parent() {
        let docs = parse("spec:\n  a: [x, y]\n");
        let span = docs[0].span(&Path::root().key("spec").key("b"));
        assert_eq!((span.line, span.col), (2, 3));
        let item = docs[0].span(&Path::root().key("spec").key("a").index(1));
        assert_eq!((item.line, item.col), (2, 10));
    }

    #[test]
    fn json_is_accepted() {
        let docs = parse("{\"kind\": \"X\", \"n\": [1, -2, 1.5, true, null]}");
        let n = docs[0].root.get("n").and_then(Node::as_seq).unwrap();
        let values: Vec<&Value> = n.iter().map(|n| &n.value).collect();
        assert_eq!(
            values,
            [
                &Value::UInt(1),
                &Value::Int(-2),
                &Value::Float(1.5),
                &Value::Bool(true),
                &Value::Null
            ]
        );
    }

    #[test]
    fn syntax_errors_carry_the_parser_position() {
        let err = parse_stream("t.yaml", "a: 1\nb: [1, 2\n", &Limits::default()).unwrap_err();
        assert_eq!(err.code, Code::YamlSyntax);
        assert!(err.span.line >= 2, "{err:?}");
    }

    #[test]
    fn non_finite_floats_are_values_not_syntax_errors() {
        let docs = parse("a: .nan\nb: -.inf\n");
        let a = docs[0].root.get("a").map(|n| &n.value);
        assert!(matches!(a, Some(Value::Float(f)) if f.is_nan()), "{a:?}");
        let b = docs[0].root.get("b").map(|n| &n.value);
        assert_eq!(b, Some(&Value::Float(f64::NEG_INFINITY)));
    }

    #[test]
    fn self_referencing_alias_is_explained() {
        let err = parse_stream("t.yaml", "a: &a [1, *a]\n", &Limits::default()).unwrap_err();
        assert_eq!(err.code, Code::YamlSyntax);
        assert!(err.message.contains("cycle"), "{}", err.message);
    }

    #[test]
    fn duplicate_keys_are_syntax_errors() {
        let err = parse_stream("t.yaml", "a: 1\na: 2\n", &Limits::default()).unwrap_err();
        assert_eq!(err.code, Code::YamlSyntax);
        assert_eq!(err.span.line, 2);
        assert_eq!(err.message, "duplicate mapping key `a`");
    }
}
