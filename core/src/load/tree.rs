//! The located tree: every YAML/JSON value of a document with the line and column where it
//! was written. It is the source map: checks look values up by [`Path`] and report the
//! position they find. serde-saphyr parses; its `Spanned` wrapper supplies the positions.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::path::{Path, Segment};

/// Where a value starts. Lines and columns are 1-based; `len` is the length in characters
/// of the value's text as parsed (0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// Length in characters.
    pub len: u32,
}

/// A value with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where the value appears (for an alias: where the alias is used).
    pub pos: Pos,
    /// The value.
    pub value: Value,
}

/// A mapping entry: key and value, both located.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key (usually a string).
    pub key: Node,
    /// The value.
    pub value: Node,
}

/// A YAML value after scalar resolution (YAML 1.2 core schema, as serde-saphyr resolves it).
///
/// Strings and collections are boxed slices, not growable vectors: a tree is built once and
/// only read, and the smaller value (24 bytes instead of 32) keeps a large input's tree small.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A float.
    Float(f64),
    /// A string (plain or quoted).
    Str(Box<str>),
    /// A sequence.
    Seq(Box<[Node]>),
    /// A mapping, in document order.
    Map(Box<[Entry]>),
}

impl Value {
    /// A short name of the value's type for messages: "a string", "a mapping", …
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The items, if this is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// True for null.
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The entry with string key `key`, if this is a mapping that has it.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?.iter().find(|e| e.key.as_str() == Some(key))
    }

    /// The value under string key `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The node at `path`, if every step exists.
    pub fn at(&self, path: &Path) -> Option<&Node> {
        path.segments()
            .iter()
            .try_fold(self, |node, segment| match segment {
                Segment::Key(key) => node.get(key),
                Segment::Index(i) => node.as_seq()?.get(*i),
            })
    }

    /// Position of the value at `path`; if it is absent, of its deepest existing ancestor
    /// (so a missing field points at the mapping that lacks it).
    pub fn locate(&self, path: &Path) -> Pos {
        let mut node = self;
        for segment in path.segments() {
            let next = match segment {
                Segment::Key(key) => node.get(key),
                Segment::Index(i) => node.as_seq().and_then(|items| items.get(*i)),
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.pos
    }

    /// Position of the key of the entry at `path` (which must end in a key), falling back to
    /// [`Node::locate`].
    pub fn locate_key(&self, path: &Path) -> Pos {
        if let Some((parent, Segment::Key(key))) = path.split_last()
            && let Some(entry) = self.at(&parent).and_then(|p| p.entry(key))
        {
            return entry.key.pos;
        }
        self.locate(path)
    }
}

fn pos_of<T>(spanned: &Spanned<T>) -> Pos {
    let location = spanned.referenced;
    Pos {
        line: u32::try_from(location.line()).unwrap_or(u32::MAX),
        col: u32::try_from(location.column()).unwrap_or(u32::MAX),
        len: u32::try_from(location.span().len()).unwrap_or(0),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            pos: pos_of(&spanned),
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(if v >= 0 {
            Value::UInt(v.unsigned_abs())
        } else {
            Value::Int(v)
        })
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::UInt(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.into()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v.into_boxed_str()))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        String::from_utf8(v.to_vec())
            .map(|s| Value::Str(s.into_boxed_str()))
            .map_err(|_| E::custom("binary values are not supported"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items.into_boxed_slice()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push(Entry { key, value });
        }
        Ok(Value::Map(entries.into_boxed_slice()))
    }
}
