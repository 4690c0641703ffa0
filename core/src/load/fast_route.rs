//! The fast route to the located tree: [`Node`]s built straight from the parser's events
//! (granit-parser, the parser under serde-saphyr), without a serde round trip per value.
//!
//! It covers the plain shape of real inputs (mappings with string keys, sequences, strings,
//! decimal integers, `true`/`false`, null) and declines everything else by returning `None`:
//! anchors, aliases, tags, merge keys, keys that are not plain strings, duplicate-looking
//! keys, scalars whose resolution it does not settle exactly (floats, radix or signed
//! spellings, YAML 1.1 booleans), parse errors and budgets within reach. The caller then takes
//! the serde-saphyr route ([`super::parse_stream_reference`]), which is the definition of what
//! a stream means and which produces every diagnostic. The two routes agree on every input
//! the fast one accepts: same values, same positions (`core/tests/load_equivalence.rs`).
//!
//! Budgets are counted here as serde-saphyr counts them, but never less (every parser event
//! is an event here, comments included): reaching a limit only means declining, so an input
//! over budget always gets its diagnostic from the reference route.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};

use serde_saphyr::granit_parser::{self, Event, Parser, ScalarStyle, Span};

use super::Needed;
use super::budget::Limits;
use super::scalar_cap::TooLong;
use super::tree::{Entry, Node, Pos, Value};

/// Mappings up to this many entries look for duplicate keys by scanning; larger ones sort.
const SCAN_DUPLICATES_UP_TO: usize = 16;

/// The document roots of `text` (empty documents included, as null), or `None` when the
/// reference route must decide. With `needed`, values outside it are left out (see
/// [`Needed`]); their keys still count for duplicate detection.
pub(super) fn parse(text: &str, limits: &Limits, needed: Option<&Needed>) -> Route {
    let mut too_long = None;
    match parse_events(text, limits, needed, &mut too_long) {
        Some(roots) => Route::Parsed(roots),
        None => too_long.map_or(Route::Declined, Route::ScalarTooLong),
    }
}

/// What the fast route made of a stream.
#[derive(Debug)]
pub(super) enum Route {
    /// The document roots (empty documents included, as null).
    Parsed(Vec<Node>),
    /// The reference route must decide.
    Declined,
    /// A scalar over the per-scalar cap, found before it was copied anywhere.
    ScalarTooLong(TooLong),
}

/// The parser configured as serde-saphyr configures it (`Options::parser_options`), so that
/// both routes see the same events and the same scanner limits; and the budget it enforces.
pub(super) fn parser_options(limits: &Limits) -> (granit_parser::Options, serde_saphyr::Budget) {
    let options = limits.options();
    let budget = options.budget.clone().unwrap_or_default();
    let mut parser_options = granit_parser::Options::default();
    parser_options.simple_key_max_lookahead = budget.simple_key_max_lookahead;
    parser_options.flow_nesting_limit = budget.flow_nesting_limit;
    parser_options.block_nesting_limit = parser_options
        .block_nesting_limit
        .max(budget.max_depth.saturating_add(1));
    parser_options.emit_comments = options.emit_comments;
    parser_options.max_buffered_comment_events = budget.max_buffered_comment_events;
    parser_options.strict_indentation = options.strict_indentation;
    parser_options.bom_inside_document_as_content = options.bom_inside_document_as_content;
    (parser_options, budget)
}

/// [`parse`] as an `Option`; a scalar over the cap declines with `too_long` set.
fn parse_events(
    text: &str,
    limits: &Limits,
    needed: Option<&Needed>,
    too_long: &mut Option<TooLong>,
) -> Option<Vec<Node>> {
    let (parser_options, budget) = parser_options(limits);
    let mut counts = Counts::new(&budget);
    let mut builder = Builder {
        needed,
        ..Builder::default()
    };
    for item in Parser::new_from_str_with_options(text, parser_options) {
        let (event, span) = item.ok()?;
        counts.event()?;
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                // Checked before anything copies the value (a plain scalar still borrows
                // the input here).
                if let Some(found) = TooLong::check(value.len(), pos_of(&span), limits) {
                    *too_long = Some(found);
                    return None;
                }
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                counts.node()?;
                counts.scalar_bytes(value.len())?;
                builder.scalar(value, style, &span)?;
            }
            Event::MappingStart(_, anchor, tag) | Event::SequenceStart(_, anchor, tag)
                if anchor != 0 || tag.is_some() =>
            {
                return None;
            }
            Event::MappingStart(..) => {
                counts.node()?;
                counts.enter()?;
                builder.open_map(pos_of(&span))?;
            }
            Event::SequenceStart(..) => {
                counts.node()?;
                counts.enter()?;
                builder.open_seq(pos_of(&span))?;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                counts.leave();
                builder.close()?;
            }
            Event::DocumentStart(..) => counts.document()?,
            Event::Comment(text, _) => counts.comment_bytes(text.len())?,
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
            // Aliases, anchor metadata and anything a newer parser adds: the reference
            // route knows what they mean.
            _ => return None,
        }
    }
    builder.finish()
}

/// The position serde-saphyr's `Spanned` reports for an event's span: the parser's 1-based
/// line, its 0-based column made 1-based, and the length in characters.
pub(super) fn pos_of(span: &Span) -> Pos {
    Pos {
        line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
        col: u32::try_from(span.start.col().saturating_add(1)).unwrap_or(u32::MAX),
        len: u32::try_from(span.end.index().saturating_sub(span.start.index())).unwrap_or(0),
    }
}

/// What a plain scalar resolves to, for the spellings this route settles.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plain {
    Null,
    Bool(bool),
    UInt(u64),
    Int(i64),
    Str,
}

/// A plain scalar as the YAML 1.2 core schema (with serde-saphyr's YAML 1.1 booleans)
/// resolves it, for the spellings this route settles; `None` for the rest.
fn classify_plain(text: &str) -> Option<Plain> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Plain::Null),
        "true" => return Some(Plain::Bool(true)),
        "false" => return Some(Plain::Bool(false)),
        _ => {}
    }
    let bytes = text.as_bytes();
    let first = *bytes.first()?;
    // Decimal integers without a redundant leading zero; other numeric spellings (`0127`,
    // `+1`, `-0`, `1_000`, `0x1F`, floats) are left to the reference route below.
    if bytes.iter().all(u8::is_ascii_digit) {
        if first == b'0' && bytes.len() > 1 {
            return None;
        }
        return text.parse().ok().map(Plain::UInt);
    }
    if let Some(digits) = bytes.strip_prefix(b"-")
        && digits.first().is_some_and(|d| (b'1'..=b'9').contains(d))
        && digits.iter().all(u8::is_ascii_digit)
    {
        return text.parse().ok().map(Plain::Int);
    }
    let number_like_start = first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.');
    if number_like_start && !cannot_be_a_number(bytes) {
        return None;
    }
    if !number_like_start && is_word_with_meaning(text) {
        return None;
    }
    Some(Plain::Str)
}

/// [`classify_plain`] as a tree value.
fn resolve_plain(text: Cow<'_, str>) -> Option<Value> {
    Some(match classify_plain(&text)? {
        Plain::Null => Value::Null,
        Plain::Bool(b) => Value::Bool(b),
        Plain::UInt(u) => Value::UInt(u),
        Plain::Int(i) => Value::Int(i),
        Plain::Str => Value::Str(text.into()),
    })
}

/// True when no numeric spelling (decimal, `0x`/`0o`/`0b`, underscores, floats with
/// exponents, `.inf`/`.nan`) can be this text: it has a character none of them uses, more
/// than one dot, or a sign that is neither leading nor after an exponent's `e`. IP
/// addresses, CIDRs, UIDs, quantities such as `1930m` and dates qualify.
fn cannot_be_a_number(bytes: &[u8]) -> bool {
    const NUMERIC_LETTERS: &[u8] = b"abcdefABCDEFxXoOiInNtTyY";
    let foreign = bytes.iter().any(|b| {
        !(b.is_ascii_digit()
            || matches!(b, b'.' | b'+' | b'-' | b'_')
            || NUMERIC_LETTERS.contains(b))
    });
    let inner_sign = bytes
        .windows(2)
        .any(|pair| matches!(pair[1], b'+' | b'-') && !matches!(pair[0], b'e' | b'E'));
    foreign || inner_sign || bytes.iter().filter(|&&b| b == b'.').count() > 1
}

/// Words some YAML schema reads as booleans or null, in any letter case.
fn is_word_with_meaning(text: &str) -> bool {
    [
        "y", "yes", "n", "no", "on", "off", "true", "false", "null", "<<",
    ]
    .iter()
    .any(|word| text.eq_ignore_ascii_case(word))
}

/// Budget counters, checked against serde-saphyr's own limits.
struct Counts {
    events: usize,
    max_events: usize,
    nodes: usize,
    max_nodes: usize,
    depth: usize,
    max_depth: usize,
    documents: usize,
    max_documents: usize,
    scalar_bytes: usize,
    max_scalar_bytes: usize,
    comment_bytes: usize,
    max_comment_bytes: usize,
}

impl Counts {
    fn new(budget: &serde_saphyr::Budget) -> Self {
        Counts {
            events: 0,
            max_events: budget.max_events,
            nodes: 0,
            max_nodes: budget.max_nodes,
            depth: 0,
            max_depth: budget.max_depth,
            documents: 0,
            max_documents: budget.max_documents,
            scalar_bytes: 0,
            max_scalar_bytes: budget.max_total_scalar_bytes,
            comment_bytes: 0,
            max_comment_bytes: budget.max_total_comment_bytes,
        }
    }

    fn within(count: usize, max: usize) -> Option<()> {
        (count < max).then_some(())
    }

    fn event(&mut self) -> Option<()> {
        self.events += 1;
        Self::within(self.events, self.max_events)
    }

    fn node(&mut self) -> Option<()> {
        self.nodes += 1;
        Self::within(self.nodes, self.max_nodes)
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        Self::within(self.depth, self.max_depth)
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn document(&mut self) -> Option<()> {
        self.documents += 1;
        Self::within(self.documents, self.max_documents)
    }

    fn scalar_bytes(&mut self, bytes: usize) -> Option<()> {
        self.scalar_bytes = self.scalar_bytes.saturating_add(bytes);
        Self::within(self.scalar_bytes, self.max_scalar_bytes)
    }

    fn comment_bytes(&mut self, bytes: usize) -> Option<()> {
        self.comment_bytes = self.comment_bytes.saturating_add(bytes);
        Self::within(self.comment_bytes, self.max_comment_bytes)
    }
}

/// A collection being built; its children wait on the builder's shared stacks from `start`.
enum Frame {
    Seq {
        pos: Pos,
        start: usize,
    },
    Map {
        pos: Pos,
        start: usize,
        key: Option<Node>,
    },
}

/// A collection inside a value left out. Only its keys are kept, hashed, to find duplicates
/// as the reference route would (a hash collision only declines an input needlessly).
enum Skipped {
    Seq,
    Map { keys: Vec<u64>, expecting_key: bool },
}

/// Assembles nodes from events. Children of open collections wait on two shared stacks and
/// move into a vector of exactly their number when their collection closes: growing each
/// collection's own vector by doubling would leave most small mappings (one to five entries
/// in a capacity of four or eight) a third to three quarters empty.
#[derive(Default)]
struct Builder<'n> {
    needed: Option<&'n Needed>,
    frames: Vec<Frame>,
    /// Open collections inside a value left out (outermost first): nothing of them is built.
    skipping: Vec<Skipped>,
    items: Vec<Node>,
    entries: Vec<Entry>,
    roots: Vec<Node>,
}

impl Builder<'_> {
    fn scalar(&mut self, text: Cow<'_, str>, style: ScalarStyle, span: &Span) -> Option<()> {
        if !self.skipping.is_empty() {
            return self.skip_scalar(&text, style);
        }
        if self.value_left_out() {
            // Resolved all the same: a spelling this route does not settle declines here too.
            if style == ScalarStyle::Plain {
                classify_plain(&text)?;
            }
            return self.add(LEFT_OUT);
        }
        let in_key = matches!(self.frames.last(), Some(Frame::Map { key: None, .. }));
        let value = match style {
            ScalarStyle::Plain => resolve_plain(text)?,
            _ if in_key && text == "<<" => return None,
            _ => Value::Str(text.into()),
        };
        if in_key && !matches!(value, Value::Str(_)) {
            return None;
        }
        self.add(Node {
            pos: pos_of(span),
            value,
        })
    }

    fn open_seq(&mut self, pos: Pos) -> Option<()> {
        self.open(Frame::Seq {
            pos,
            start: self.items.len(),
        })
    }

    fn open_map(&mut self, pos: Pos) -> Option<()> {
        self.open(Frame::Map {
            pos,
            start: self.entries.len(),
            key: None,
        })
    }

    fn open(&mut self, frame: Frame) -> Option<()> {
        // A collection as a mapping key (`? [a]: b`) is left to the reference route.
        let in_key = match self.skipping.last() {
            Some(Skipped::Map { expecting_key, .. }) => *expecting_key,
            Some(Skipped::Seq) => false,
            None => matches!(self.frames.last(), Some(Frame::Map { key: None, .. })),
        };
        if in_key {
            return None;
        }
        if !self.skipping.is_empty() || self.value_left_out() {
            self.skipping.push(match frame {
                Frame::Seq { .. } => Skipped::Seq,
                Frame::Map { .. } => Skipped::Map {
                    keys: Vec::new(),
                    expecting_key: true,
                },
            });
            return Some(());
        }
        self.frames.push(frame);
        Some(())
    }

    /// True when the next value completes an entry left out of the tree.
    fn value_left_out(&self) -> bool {
        matches!(self.frames.last(), Some(Frame::Map { key: Some(key), .. }) if self.leaves_out(key))
    }

    /// A scalar inside a value left out: checked like any other, then dropped.
    fn skip_scalar(&mut self, text: &str, style: ScalarStyle) -> Option<()> {
        let plain = match style {
            ScalarStyle::Plain => Some(classify_plain(text)?),
            _ => None,
        };
        if let Some(Skipped::Map {
            keys,
            expecting_key,
        }) = self.skipping.last_mut()
        {
            if *expecting_key {
                if !matches!(plain, None | Some(Plain::Str)) || text == "<<" {
                    return None;
                }
                let mut hasher = std::hash::DefaultHasher::new();
                text.hash(&mut hasher);
                let hash = hasher.finish();
                if keys.contains(&hash) {
                    return None;
                }
                keys.push(hash);
            }
            *expecting_key = !*expecting_key;
        }
        Some(())
    }

    /// Closes a collection inside a value left out; the outermost one completes its entry.
    fn close_skipped(&mut self) -> Option<()> {
        if let Some(Skipped::Map {
            expecting_key: false,
            ..
        }) = self.skipping.pop()
        {
            return None;
        }
        match self.skipping.last_mut() {
            None => self.add(LEFT_OUT),
            Some(Skipped::Map { expecting_key, .. }) => {
                *expecting_key = true;
                Some(())
            }
            Some(Skipped::Seq) => Some(()),
        }
    }

    fn close(&mut self) -> Option<()> {
        if !self.skipping.is_empty() {
            return self.close_skipped();
        }
        let node = match self.frames.pop()? {
            Frame::Seq { pos, start } => Node {
                pos,
                value: Value::Seq(self.items.drain(start..).collect()),
            },
            Frame::Map {
                pos,
                start,
                key: None,
            } => {
                let entries = self.entries.get(start..)?;
                if has_duplicate_keys(entries) {
                    return None;
                }
                let kept = entries.iter().filter(|e| !is_left_out(&e.value)).count();
                let mut map = Vec::with_capacity(kept);
                map.extend(
                    self.entries
                        .drain(start..)
                        .filter(|e| !is_left_out(&e.value)),
                );
                Node {
                    pos,
                    value: Value::Map(map.into_boxed_slice()),
                }
            }
            Frame::Map { key: Some(_), .. } => return None,
        };
        self.add(node)
    }

    fn add(&mut self, node: Node) -> Option<()> {
        match self.frames.last_mut() {
            None => self.roots.push(node),
            Some(Frame::Seq { .. }) => self.items.push(node),
            Some(Frame::Map { key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(key) => {
                    let value = if self.leaves_out(&key) {
                        LEFT_OUT
                    } else {
                        node
                    };
                    self.entries.push(Entry { key, value });
                }
            },
        }
        Some(())
    }

    /// True when the entry with `key` of the innermost open mapping lies outside
    /// [`Needed`]. Paths count from the object: a document root or, through any number of
    /// `items` sequences, an element of one.
    fn leaves_out(&self, key: &Node) -> bool {
        let (Some(needed), Some(key)) = (self.needed, key.as_str()) else {
            return false;
        };
        let Some((_, mut path)) = self.frames.split_last() else {
            return false;
        };
        while let [
            Frame::Map {
                key: Some(items), ..
            },
            Frame::Seq { .. },
            rest @ ..,
        ] = path
            && items.as_str() == Some("items")
        {
            path = rest;
        }
        needed.0.iter().any(|(parent, kept)| {
            parent.len() == path.len()
                && path
                    .iter()
                    .zip(parent.iter())
                    .all(|(frame, step)| match frame {
                        Frame::Map { key: Some(k), .. } => k.as_str() == Some(step),
                        Frame::Map { key: None, .. } => false,
                        Frame::Seq { .. } => *step == Needed::ITEM,
                    })
                && !kept.contains(&key)
        })
    }

    fn finish(self) -> Option<Vec<Node>> {
        (self.frames.is_empty() && self.skipping.is_empty()).then_some(self.roots)
    }
}

/// The value that stands in for one left out until its mapping closes.
const LEFT_OUT: Node = Node {
    pos: Pos {
        line: 0,
        col: 0,
        len: 0,
    },
    value: Value::Null,
};

/// Real positions start at line 1.
fn is_left_out(node: &Node) -> bool {
    node.pos.line == 0
}

/// True when two keys of a mapping have the same text (all keys here are strings).
fn has_duplicate_keys(entries: &[Entry]) -> bool {
    fn key(entry: &Entry) -> &str {
        entry.key.as_str().unwrap_or_default()
    }
    if entries.len() <= SCAN_DUPLICATES_UP_TO {
        return entries
            .iter()
            .enumerate()
            .any(|(i, a)| entries[..i].iter().any(|b| key(a) == key(b)));
    }
    let mut keys: Vec<&str> = entries.iter().map(key).collect();
    keys.sort_unstable();
    keys.windows(2).any(|pair| pair[0] == pair[1])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The roots, or `None` when the route declines (or finds a scalar over the cap).
    fn parse(text: &str, limits: &Limits, needed: Option<&Needed>) -> Option<Vec<Node>> {
        match super::parse(text, limits, needed) {
            Route::Parsed(roots) => Some(roots),
            Route::Declined | Route::ScalarTooLong(_) => None,
        }
    }

    fn roots(text: &str) -> Option<Vec<Node>> {
        parse(text, &Limits::default(), None)
    }

    fn reference(text: &str) -> Vec<Node> {
        super::super::parse_stream_reference("t.yaml", text, &Limits::default())
            .expect("parses")
            .into_iter()
            .map(|doc| doc.root)
            .collect()
    }

    /// The fast route accepts `text` and builds what the reference route builds.
    fn agrees(text: &str) {
        let fast: Vec<Node> = roots(text)
            .unwrap_or_else(|| panic!("fast route declines {text:?}"))
            .into_iter()
            .filter(|root| !root.is_null())
            .collect();
        assert_eq!(fast, reference(text), "{text:?}");
    }

    #[test]
    fn plain_shapes_agree_with_the_reference() {
        agrees(
            "a: 1\nb: [x, -2, true, false, null, ~, '', \"q\\n\"]\nc:\n  d: |\n    lit\n  e: >\n    fold\n",
        );
        agrees(
            "---\nkind: List\nitems:\n- {a: b}\n- - 1\n  - 2\n---\n# only a comment\n---\nx: z\n",
        );
        agrees("{\"kind\": \"X\", \"n\": [1, -2, 0, 18446744073709551615], \"e\": {}}");
        agrees("\u{feff}a: прод\nключ: значение\n");
        agrees("a:\nb: c\n");
        agrees("a: 1\r\nb: 2\r\n");
        agrees(
            "ip: 10.0.0.10\ncidr: 203.0.113.16/28\nv6: 2001:db8::/48\nq: 1930m\nm: 8Gi\nt: 2025-01-01T00:00:00Z\n",
        );
        agrees("v: 1.2.3\nneg: -foo bar\nw: inf\nx: nan\n");
        agrees("uid: 00000000-0000-4000-8000-00000000000e\nh: 1:20\nd: 2025-01-01\n");
    }

    #[test]
    fn declines_what_it_does_not_settle() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "<<: {a: 1}\n",
            "a: 1.5\n",
            "a: 0x10\n",
            "a: 0127\n",
            "a: +1\n",
            "a: -0\n",
            "a: yes\n",
            "a: True\n",
            "a: .inf\n",
            "a: 18446744073709551616\n",
            "a: 1e5\n",
            "a: 1.2e-3\n",
            "a: 0b101\n",
            "a: 1_000\n",
            "a: -.inf\n",
            "a: 0X1F\n",
            "1: a\n",
            "? [a]\n: b\n",
            "a: 1\na: 2\n",
            "a: 1\n'a': 2\n",
            "a: [1, 2\n",
        ] {
            assert_eq!(roots(text), None, "{text:?}");
        }
    }

    #[test]
    fn budgets_within_reach_decline() {
        let small = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        assert_eq!(parse("a: [[1]]\n", &small, None), None);
        let few = Limits {
            max_nodes: 3,
            ..Limits::default()
        };
        assert_eq!(parse("[1, 2, 3]\n", &few, None), None);
    }

    #[test]
    fn fields_outside_needed_are_left_out_of_objects_and_list_items() {
        const NEEDED: Needed = Needed(&[
            (&["metadata"], &["name"]),
            (&["status"], &["conditions"]),
            (&["status", "conditions", Needed::ITEM], &["type"]),
        ]);
        let text = "kind: List\nmetadata: {name: l, uid: u}\nitems:\n\
                    - metadata: {name: a, uid: u, labels: {x: z}}\n  \
                    status: {images: [i], conditions: [{type: R, reason: x}]}\n  \
                    spec: {podCIDR: c}\n\
                    - kind: List\n  items:\n  - metadata: {uid: v, name: b}\n";
        let keys = |node: &Node| -> Vec<String> {
            node.as_map()
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e.key.as_str().map(str::to_owned))
                .collect()
        };
        let roots = parse(text, &Limits::default(), Some(&NEEDED)).expect("accepted");
        let root = &roots[0];
        assert_eq!(keys(root), ["kind", "metadata", "items"]);
        assert_eq!(keys(root.get("metadata").expect("kept")), ["name"]);
        let items = root.get("items").and_then(Node::as_seq).expect("items");
        assert_eq!(keys(items[0].get("metadata").expect("kept")), ["name"]);
        let status = items[0].get("status").expect("kept");
        assert_eq!(keys(status), ["conditions"]);
        let conditions = status
            .get("conditions")
            .and_then(Node::as_seq)
            .expect("kept");
        assert_eq!(keys(&conditions[0]), ["type"]);
        assert_eq!(
            keys(items[0].get("spec").expect("kept")),
            ["podCIDR"],
            "not listed"
        );
        let inner = items[1]
            .get("items")
            .and_then(Node::as_seq)
            .expect("nested items");
        assert_eq!(keys(inner[0].get("metadata").expect("kept")), ["name"]);
        let name = inner[0].get("metadata").and_then(|m| m.get("name"));
        assert_eq!(name.map(|n| (n.pos.line, n.pos.col)), Some((9, 30)));
        // What is left out is still checked as the reference route would check it: keys
        // (also deep inside), spellings, anchors, complex keys.
        for text in [
            "metadata: {name: a, uid: u, uid: v}\n",
            "metadata: {name: a, annotations: {x: 1, y: 2, x: 3}}\n",
            "metadata: {name: a, managedFields: [{f: {a: {}, a: {}}}]}\n",
            "metadata: {name: a, annotations: {1: x}}\n",
            "metadata: {name: a, annotations: {'<<': x}}\n",
            "metadata: {name: a, annotations: {? [k] : x}}\n",
            "metadata: {name: a, uid: 1.5}\n",
            "metadata: {name: a, annotations: {a: &x b, c: *x}}\n",
            "metadata: {name: a, annotations: !!map {a: b}}\n",
        ] {
            assert_eq!(
                parse(text, &Limits::default(), Some(&NEEDED)),
                None,
                "{text:?}"
            );
        }
        let deep = "metadata: {name: a, managedFields: [{f: {a: {b: [1, {c: d}]}}, g: x}]}\nz: 1\n";
        let roots = parse(deep, &Limits::default(), Some(&NEEDED)).expect("accepted");
        assert_eq!(keys(&roots[0]), ["metadata", "z"]);
        assert_eq!(keys(roots[0].get("metadata").expect("kept")), ["name"]);
    }

    #[test]
    fn large_mappings_find_duplicates() {
        let mut text: String = (0..40).map(|i| format!("k{i}: v\n")).collect();
        assert!(roots(&text).is_some());
        text.push_str("k7: again\n");
        assert_eq!(roots(&text), None);
    }

    /// Scalars this route settles itself, as written in real manifests.
    fn settled_scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9./-]{0,10}"
                .prop_filter("a word with a meaning", |word| !is_word_with_meaning(word)),
            "[1-9][0-9]{0,5}",
            "[1-9][0-9]{0,2}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(/[0-9]{1,2})?",
            "[0-9]{1,4}(m|Gi|Ki|:[0-9a-f]{1,4})",
            "[0-9a-f]{7}[0-9]-[0-9a-f]{3}[0-9]-[0-9a-f]{4}",
            "-[1-9][0-9]{0,5}",
            prop::sample::select(vec!["0", "true", "false", "null", "~", ""])
                .prop_map(str::to_owned),
        ]
    }

    /// Every spelling, including those left to the reference route.
    fn any_scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            settled_scalar(),
            prop::sample::select(vec![
                "True",
                "yes",
                "No",
                "on",
                "y",
                "-0",
                "+7",
                "007",
                "0x1F",
                "1_000",
                "1.5",
                ".inf",
                "+.nan",
                "1e999",
                "18446744073709551616",
                "10.0.0.1",
                "<<",
                "a b",
                "é",
                "=",
                "1.2.3",
                "1.19",
                "-foo",
                "1e5",
                "-1E-5",
                "1_2.5",
                "0b1_0",
                ".5",
                "-.5e1",
                "1e+5",
                "0e-1",
                "1-2",
                "+-1",
                "1e5-",
                "2025-01-01",
                "1:20",
            ])
            .prop_map(str::to_owned),
        ]
    }

    /// A block mapping with quoted and plain scalars, a flow sequence and a nested mapping.
    fn document(scalars: BoxedStrategy<String>) -> impl Strategy<Value = String> {
        let entry = (scalars.clone(), 0u8..3, scalars.clone(), 0u8..4);
        (
            prop::collection::btree_map("k[a-z]{0,5}", entry, 1..6),
            prop::collection::vec(scalars, 0..4),
        )
            .prop_map(|(entries, items)| {
                let quote = |text: &str, style: u8, indent: usize| match style {
                    0 => text.to_owned(),
                    1 => format!("'{}'", text.replace('\'', "''")),
                    2 => format!("\"{text}\""),
                    _ => format!("|\n{}{text}", " ".repeat(indent + 2)),
                };
                let mut text = String::from("---\n# c\n");
                for (key, (_, _, value, value_style)) in &entries {
                    text.push_str(&format!("{key}: {}\n", quote(value, *value_style, 0)));
                }
                // An empty plain item is a syntax error in a flow sequence.
                let items: Vec<String> = items
                    .iter()
                    .map(|item| quote(item, if item.is_empty() { 2 } else { 0 }, 0))
                    .collect();
                text.push_str(&format!("list: [{}]\nnested:\n", items.join(", ")));
                for (key, (nested, key_style, value, _)) in &entries {
                    let nested_key = format!("{key}{nested}");
                    text.push_str(&format!(
                        "  {}: {}\n",
                        quote(&nested_key, *key_style % 3, 2),
                        quote(value, 1, 2)
                    ));
                }
                text
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn settled_documents_take_this_route_and_agree(text in document(settled_scalar().boxed())) {
            let fast: Vec<Node> = roots(&text)
                .unwrap_or_else(|| panic!("declined {text:?}"))
                .into_iter()
                .filter(|root| !root.is_null())
                .collect();
            prop_assert_eq!(fast, reference(&text), "{}", text);
        }

        #[test]
        fn accepted_documents_agree(text in document(any_scalar().boxed())) {
            if let Some(fast) = roots(&text) {
                let fast: Vec<Node> = fast.into_iter().filter(|root| !root.is_null()).collect();
                prop_assert_eq!(fast, reference(&text), "{}", text);
            }
        }
    }
}
