//! Where a duplicate mapping key really is. serde-saphyr reports a duplicate key at the
//! position of the key's *text*: for a key written as an alias (`*k : 2`) that is its anchor,
//! somewhere else in the file. Only when a stream fails with a duplicate key, it is read again
//! with duplicates passed through to the tree, whose key positions are those of the alias
//! uses; the first repeated key in stream order is the one the parser stopped at.

use std::collections::HashSet;

use serde_saphyr::DuplicateKeyPolicy;

use super::Limits;
use super::tree::{Node, Pos, Value};

/// The position of the first repeated key (named `key` when the parser said which) in `text`.
pub(super) fn locate(text: &str, limits: &Limits, key: Option<&str>) -> Option<Pos> {
    let mut options = limits.options();
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    let roots: Vec<Node> = serde_saphyr::from_str_multiple_with_options(text, options).ok()?;
    let named = roots.iter().find_map(|root| first_repeated(root, key));
    named.or_else(|| roots.iter().find_map(|root| first_repeated(root, None)))
}

/// The first key of a mapping under `node` (depth first, in document order) that repeats an
/// earlier key of the same mapping and, when given, reads as `key`.
fn first_repeated(node: &Node, key: Option<&str>) -> Option<Pos> {
    match &node.value {
        Value::Map(entries) => {
            let mut seen = HashSet::new();
            for entry in entries.iter() {
                let text = key_text(&entry.key);
                let repeated = !seen.insert(text.clone());
                if repeated && key.is_none_or(|key| text == key) {
                    return Some(entry.key.pos);
                }
                if let Some(pos) = first_repeated(&entry.value, key) {
                    return Some(pos);
                }
            }
            None
        }
        Value::Seq(items) => items.iter().find_map(|item| first_repeated(item, key)),
        _ => None,
    }
}

/// A key as the parser names it in its error (scalars), or a structural rendering otherwise.
fn key_text(key: &Node) -> String {
    match &key.value {
        Value::Str(s) => s.to_string(),
        Value::UInt(n) => n.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::load::{Limits, parse_stream};

    fn at(text: &str) -> (u32, u32) {
        let error = parse_stream("t.yaml", text, &Limits::default()).expect_err("duplicate");
        assert_eq!(error.message, "duplicate mapping key `k`", "{error:?}");
        (error.span.line, error.span.col)
    }

    #[test]
    fn an_alias_key_is_located_at_the_alias() {
        assert_eq!(at("a: &x k\nb: 1\nk: 2\n*x : 3\n"), (4, 1));
        assert_eq!(at("a: &x k\nm:\n  k: 1\n  *x : 2\n"), (4, 3));
        assert_eq!(at("a: &x k\nm: {*x : 1, k: 2}\n"), (2, 13));
    }

    #[test]
    fn plain_duplicates_keep_their_position() {
        assert_eq!(at("k: 1\nk: 2\n"), (2, 1));
        assert_eq!(at("m: &m {j: 1}\nn:\n  <<: *m\n  k: 1\n  k: 2\n"), (5, 3));
    }
}
