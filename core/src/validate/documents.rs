//! Document triage: unwrap `List`s, check the header (`apiVersion`, `kind`, `metadata.name`,
//! top-level fields), route each document to its kind and deserialize the typed `spec`. Serde
//! errors become diagnostics at the exact key or value.

use serde::de::DeserializeOwned;

use super::Report;
use super::suggest::did_you_mean;
use super::syntax::check_subdomain;
use crate::diag::{Code, Diagnostic};
use crate::load::de::{self, ErrorKind};
use crate::load::{Document, Node, Path, Value};
use crate::model::api::API_VERSION;

/// Top-level fields of a Kubernetes object.
const TOP_LEVEL: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
/// Kinds egressc compiles.
pub const GATEWAY_KIND: &str = "EgressGateway";
/// Kinds egressc compiles.
pub const POLICY_KIND: &str = "EgressGatewayPolicy";
const SOURCE_KINDS: &[&str] = &[GATEWAY_KIND, POLICY_KIND];

/// A document of a known kind with a checked name and a typed spec.
#[derive(Debug)]
pub struct Object<T> {
    /// The document, for locating values.
    pub doc: Document,
    /// `metadata.name` (syntax already reported if invalid).
    pub name: String,
    /// The typed spec, if it deserialized.
    pub spec: Option<T>,
}

/// The documents of an input split by kind.
#[derive(Debug, Default)]
pub struct Sorted {
    /// EgressGateway documents.
    pub gateways: Vec<Object<crate::model::api::EgressGatewaySpec>>,
    /// EgressGatewayPolicy documents.
    pub policies: Vec<Object<crate::model::api::EgressGatewayPolicySpec>>,
}

/// Replaces every `List`-like document (`kind: List` or `…List` with `items`) by its items,
/// each keeping its position and an `items[i]` base path. Lists inside lists are flattened
/// (as kubectl does); a list with `items: null` (or `kind: List` without `items`) is empty.
pub fn unwrap_lists(docs: Vec<Document>) -> Vec<Document> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        unwrap_into(doc, &mut out);
    }
    out
}

/// Recursion depth is bounded by the loader's nesting budget.
fn unwrap_into(mut doc: Document, out: &mut Vec<Document>) {
    let kind = doc.str_at(&Path::root().key("kind")).map(str::to_owned);
    if !kind.as_deref().is_some_and(|k| k.ends_with("List")) {
        out.push(doc);
        return;
    }
    let empty = match doc.root.get("items") {
        None => kind.as_deref() == Some("List"),
        Some(node) => node.is_null(),
    };
    // The items are moved out, not cloned: a node inventory is mostly one List, and a copy
    // would double its memory and cost as much time as building it.
    match take_items(&mut doc.root) {
        Some(items) => {
            for (i, item) in items.into_iter().enumerate() {
                let inner = Document {
                    file: doc.file.clone(),
                    root: item,
                    base: doc.base.key("items").index(i),
                };
                unwrap_into(inner, out);
            }
        }
        None if empty => {}
        None => out.push(doc),
    }
}

/// Moves the `items` sequence out of a List's root, if it has one (the first `items` key, as
/// [`Node::get`] finds it).
fn take_items(root: &mut Node) -> Option<Vec<Node>> {
    let Value::Map(entries) = &mut root.value else {
        return None;
    };
    let entry = entries
        .iter_mut()
        .find(|entry| entry.key.as_str() == Some("items"))?;
    match &mut entry.value.value {
        Value::Seq(items) => Some(std::mem::take(items).into_vec()),
        _ => None,
    }
}

/// `apiVersion` and `kind` of a document, or a diagnostic.
pub fn type_of(doc: &Document, report: &mut Report) -> Option<(String, String)> {
    if doc.root.as_map().is_none() {
        report.push(
            Diagnostic::new(
                Code::NotAnObject,
                doc.span(&Path::root()),
                format!(
                    "expected a Kubernetes object (a mapping), found {}",
                    doc.root.value.kind_name()
                ),
            )
            .with_hint("write `apiVersion: …`, `kind: …`, `metadata: …`, `spec: …`"),
        );
        return None;
    }
    let field = |name: &str| doc.str_at(&Path::root().key(name)).map(str::to_owned);
    match (field("apiVersion"), field("kind")) {
        (Some(api_version), Some(kind)) => Some((api_version, kind)),
        (api_version, _) => {
            let missing = if api_version.is_none() {
                "apiVersion"
            } else {
                "kind"
            };
            report.push(
                Diagnostic::new(
                    Code::MissingTypeInfo,
                    doc.span(&Path::root().key(missing)),
                    format!("document has no `{missing}` string"),
                )
                .with_hint(format!(
                    "start the document with `apiVersion: {API_VERSION}` and `kind: {GATEWAY_KIND}` or `kind: {POLICY_KIND}`"
                )),
            );
            None
        }
    }
}

/// Splits source documents by kind; unknown kinds are reported unless ignored.
pub fn sort(docs: Vec<Document>, ignore_unknown_kinds: bool, report: &mut Report) -> Sorted {
    let mut sorted = Sorted::default();
    for doc in unwrap_lists(docs) {
        let Some((api_version, kind)) = type_of(&doc, report) else {
            continue;
        };
        let known_kind = SOURCE_KINDS.contains(&kind.as_str());
        if known_kind && api_version != API_VERSION {
            report.push(
                Diagnostic::new(
                    Code::UnknownKind,
                    doc.span(&Path::root().key("apiVersion")),
                    format!("{kind} has apiVersion `{api_version}`; egressc reads `{API_VERSION}`"),
                )
                .with_hint(format!("write `apiVersion: {API_VERSION}`")),
            );
            continue;
        }
        if !known_kind {
            if !ignore_unknown_kinds {
                report.push(unknown_kind(&doc, &api_version, &kind));
            }
            continue;
        }
        check_top_level(&doc, report);
        let Some(name) = name_of(&doc, &kind, report) else {
            continue;
        };
        if kind == GATEWAY_KIND {
            let spec = typed_spec(&doc, report);
            sorted.gateways.push(Object { doc, name, spec });
        } else {
            let spec = typed_spec(&doc, report);
            sorted.policies.push(Object { doc, name, spec });
        }
    }
    sorted
}

fn unknown_kind(doc: &Document, api_version: &str, kind: &str) -> Diagnostic {
    let hint = if matches!(kind, "Node" | "NodeList") {
        "pass node inventories with `--nodes FILE`".to_owned()
    } else if let Some(suggestion) = did_you_mean(kind, SOURCE_KINDS.iter().copied()) {
        suggestion
    } else {
        format!(
            "egressc reads {GATEWAY_KIND} and {POLICY_KIND} ({API_VERSION}); remove this document or pass `--ignore-unknown-kinds`"
        )
    };
    Diagnostic::new(
        Code::UnknownKind,
        doc.span(&Path::root().key("kind")),
        format!("egressc does not read `{kind}` ({api_version}) documents"),
    )
    .with_hint(hint)
}

fn check_top_level(doc: &Document, report: &mut Report) {
    for entry in doc.root.as_map().unwrap_or_default() {
        let key = entry.key.as_str().unwrap_or_default();
        if !TOP_LEVEL.contains(&key) {
            let path = Path::root().key(key);
            report.push(
                Diagnostic::new(
                    Code::UnknownField,
                    doc.span_at(entry.key.pos, &path),
                    format!("unknown top-level field `{key}`"),
                )
                .with_hint_opt(did_you_mean(key, TOP_LEVEL.iter().copied())),
            );
        }
    }
}

/// `metadata.name`, reported if absent or not a DNS-1123 subdomain. An invalid name is still
/// returned so that references to it do not produce a second, misleading error.
pub fn name_of(doc: &Document, kind: &str, report: &mut Report) -> Option<String> {
    let path = Path::root().key("metadata").key("name");
    let Some(node) = doc.root.at(&path) else {
        // Point at the `metadata` key if there is one: its mapping starts at some other key.
        let metadata = Path::root().key("metadata");
        let span = if doc.root.get("metadata").is_some() {
            doc.key_span(&metadata)
        } else {
            doc.span(&path)
        };
        report.push(
            Diagnostic::new(
                Code::MissingName,
                span,
                format!("{kind} has no `metadata.name`"),
            )
            .with_hint("add `metadata: {name: my-name}`"),
        );
        return None;
    };
    let Some(name) = node.as_str() else {
        report.push(Diagnostic::new(
            Code::InvalidType,
            doc.span(&path),
            format!(
                "`metadata.name` must be a string, found {}",
                node.value.kind_name()
            ),
        ));
        return None;
    };
    if let Err(why) = check_subdomain(name) {
        report.push(
            Diagnostic::new(
                Code::InvalidName,
                doc.span(&path),
                format!("{kind} name `{name}` {why}"),
            )
            .with_hint("names are DNS-1123 subdomains: lowercase letters, digits, `-` and `.`"),
        );
    }
    Some(name.to_owned())
}

/// Deserializes `spec`, reporting the first problem at its exact location.
fn typed_spec<T: DeserializeOwned>(doc: &Document, report: &mut Report) -> Option<T> {
    let path = Path::root().key("spec");
    let Some(node) = doc.root.get("spec") else {
        report.push(
            Diagnostic::new(
                Code::MissingField,
                doc.span(&Path::root()),
                "missing field `spec`",
            )
            .with_hint("add the `spec:` block"),
        );
        return None;
    };
    match de::from_node::<T>(node, &path) {
        Ok(spec) => Some(spec),
        Err(error) => {
            report.push(serde_diagnostic(doc, error));
            None
        }
    }
}

/// Maps a located serde error to a diagnostic.
pub fn serde_diagnostic(doc: &Document, error: de::Error) -> Diagnostic {
    let span = match error.pos {
        Some(pos) => doc.span_at(pos, &error.path),
        None => doc.span(&error.path),
    };
    match &error.kind {
        ErrorKind::UnknownField { field, expected } => {
            let hint = did_you_mean(field, expected.iter().copied())
                .or_else(|| Some(format!("known fields here: {}", expected.join(", "))));
            Diagnostic::new(Code::UnknownField, span, error.message.clone()).with_hint_opt(hint)
        }
        ErrorKind::MissingField(field) => {
            Diagnostic::new(Code::MissingField, span, error.message.clone())
                .with_hint(format!("add `{field}`"))
        }
        ErrorKind::UnknownVariant { variant, expected } => {
            let hint = did_you_mean(variant, expected.iter().copied());
            Diagnostic::new(Code::InvalidType, span, error.message.clone()).with_hint_opt(hint)
        }
        ErrorKind::Invalid => {
            let hint = match doc.root.at(&error.path).map(|n| &n.value) {
                Some(Value::Bool(_) | Value::Int(_) | Value::UInt(_) | Value::Float(_)) => {
                    Some("quote the value to make it a string, e.g. \"true\"".to_owned())
                }
                _ => None,
            };
            Diagnostic::new(Code::InvalidType, span, error.message.clone()).with_hint_opt(hint)
        }
    }
}
