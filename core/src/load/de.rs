//! Typed deserialization from the located tree. Works like any serde deserializer, but every
//! error carries the position and path of the value (or key) it is about, and a kind that
//! validation maps to a diagnostic code (unknown field, missing field, wrong type).

use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use super::path::Path;
use super::tree::{Entry, Node, Pos, Value};

/// What went wrong, for choosing a diagnostic code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A field the type does not have; `expected` lists the known fields.
    UnknownField {
        /// The unknown field.
        field: String,
        /// Fields the type knows.
        expected: Vec<&'static str>,
    },
    /// A required field is absent.
    MissingField(&'static str),
    /// An enum value that is not one of the variants.
    UnknownVariant {
        /// The value found.
        variant: String,
        /// Allowed values.
        expected: Vec<&'static str>,
    },
    /// Anything else: wrong type, invalid value, custom messages.
    Invalid,
}

/// A deserialization error located in the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Classification.
    pub kind: ErrorKind,
    /// Human-readable message.
    pub message: String,
    /// Position of the offending value or key (set by the innermost node that saw it).
    pub pos: Option<Pos>,
    /// Path of that value, relative to the tree the deserialization started from.
    pub path: Path,
}

impl Error {
    fn located(mut self, pos: Pos, path: &Path) -> Self {
        if self.pos.is_none() {
            self.pos = Some(pos);
            self.path = path.clone();
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            kind: ErrorKind::Invalid,
            message: msg.to_string(),
            pos: None,
            path: Path::root(),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error {
            kind: ErrorKind::UnknownField {
                field: field.to_owned(),
                expected: expected.to_vec(),
            },
            message: format!("unknown field `{field}`"),
            pos: None,
            path: Path::root(),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Error {
            kind: ErrorKind::MissingField(field),
            message: format!("missing field `{field}`"),
            pos: None,
            path: Path::root(),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error {
            kind: ErrorKind::UnknownVariant {
                variant: variant.to_owned(),
                expected: expected.to_vec(),
            },
            message: format!(
                "unknown value `{variant}`, expected one of: {}",
                expected.join(", ")
            ),
            pos: None,
            path: Path::root(),
        }
    }
}

/// Deserializes `T` from `node`; `path` is the node's path within its document.
pub fn from_node<T: DeserializeOwned>(node: &Node, path: &Path) -> Result<T, Error> {
    T::deserialize(NodeDeserializer { node, path })
}

/// A serde deserializer over one located node.
struct NodeDeserializer<'a> {
    node: &'a Node,
    path: &'a Path,
}

impl NodeDeserializer<'_> {
    fn locate(&self, error: Error) -> Error {
        error.located(self.node.pos, self.path)
    }
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::UInt(u) => visitor.visit_u64(*u),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter().enumerate(),
                path: self.path,
            }),
            Value::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                current: None,
                path: self.path,
            }),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            visitor.visit_none().map_err(|e| self.locate(e))
        } else {
            let (pos, path) = (self.node.pos, self.path);
            visitor.visit_some(self).map_err(|e| e.located(pos, path))
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (pos, path) = (self.node.pos, self.path);
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| e.located(pos, path))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Only unit variants (written as plain strings) occur in the API types.
        let result = match &self.node.value {
            Value::Str(s) => {
                let de: StrDeserializer<'_, Error> = (&**s).into_deserializer();
                visitor.visit_enum(de)
            }
            other => Err(de::Error::custom(format!(
                "invalid type: {}, expected a string",
                other.kind_name()
            ))),
        };
        result.map_err(|e| self.locate(e))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct SeqAccess<'a, I> {
    items: I,
    path: &'a Path,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Node)>> de::SeqAccess<'de> for SeqAccess<'a, I> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some((index, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = self.path.index(index);
        seed.deserialize(NodeDeserializer { node, path: &path })
            .map(Some)
            .map_err(|e| e.located(node.pos, &path))
    }
}

struct MapAccess<'a, I> {
    entries: I,
    current: Option<&'a Entry>,
    path: &'a Path,
}

impl<'a, I> MapAccess<'a, I> {
    fn key_path(&self, entry: &Entry) -> Path {
        match &entry.key.value {
            Value::Str(key) => self.path.key(&**key),
            _ => self.path.key(format!("{:?}", entry.key.value)),
        }
    }
}

impl<'de, 'a, I: Iterator<Item = &'a Entry>> de::MapAccess<'de> for MapAccess<'a, I> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.current = Some(entry);
        let path = self.key_path(entry);
        seed.deserialize(NodeDeserializer {
            node: &entry.key,
            path: &path,
        })
        .map(Some)
        .map_err(|e| e.located(entry.key.pos, &path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some(entry) = self.current.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        let path = self.key_path(entry);
        seed.deserialize(NodeDeserializer {
            node: &entry.value,
            path: &path,
        })
        .map_err(|e| e.located(entry.value.pos, &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{Limits, parse_stream};
    use crate::model::api::{EgressGatewayPolicySpec, EgressGatewaySpec};

    fn spec_of<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
        let docs = parse_stream("t.yaml", text, &Limits::default()).expect("parses");
        let spec = docs[0].root.get("spec").expect("spec");
        from_node::<T>(spec, &Path::root().key("spec"))
    }

    #[test]
    fn deserializes_api_types() {
        let spec: EgressGatewayPolicySpec = spec_of(
            "spec:\n  egressGatewayName: gw\n  destinationCIDRs: [198.51.100.0/24]\n  \
             selectors:\n  - podSelector:\n      matchLabels: {app: web}\n",
        )
        .expect("valid");
        assert_eq!(spec.egress_gateway_name, "gw");
        assert_eq!(spec.selectors.len(), 1);
    }

    #[test]
    fn unknown_fields_point_at_the_key() {
        let err = spec_of::<EgressGatewayPolicySpec>(
            "spec:\n  egressGatewayName: gw\n  destinationCIDR: [x]\n",
        )
        .unwrap_err();
        assert!(
            matches!(err.kind, ErrorKind::UnknownField { ref field, .. } if field == "destinationCIDR")
        );
        assert_eq!(err.pos.map(|p| (p.line, p.col)), Some((3, 3)));
        assert_eq!(err.path.to_string(), "spec.destinationCIDR");
    }

    #[test]
    fn wrong_types_point_at_the_value() {
        let err = spec_of::<EgressGatewaySpec>(
            "spec:\n  sourceIP:\n    mode: VirtualIPAddress\n    virtualIPAddress:\n      ip: [1]\n",
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert_eq!(err.pos.map(|p| (p.line, p.col)), Some((5, 11)));
        assert_eq!(err.path.to_string(), "spec.sourceIP.virtualIPAddress.ip");
    }

    #[test]
    fn missing_fields_point_at_the_mapping() {
        let err =
            spec_of::<EgressGatewaySpec>("spec:\n  sourceIP:\n    virtualIPAddress: {ip: x}\n")
                .unwrap_err();
        assert_eq!(err.kind, ErrorKind::MissingField("mode"));
        assert_eq!(err.path.to_string(), "spec.sourceIP");
    }

    #[test]
    fn unknown_variants_are_classified() {
        let err =
            spec_of::<EgressGatewaySpec>("spec:\n  sourceIP:\n    mode: VirtualIP\n").unwrap_err();
        assert!(matches!(err.kind, ErrorKind::UnknownVariant { .. }));
        assert_eq!(err.pos.map(|p| (p.line, p.col)), Some((3, 11)));
    }
}
