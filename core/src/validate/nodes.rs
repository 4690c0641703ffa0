//! The node inventory (`--nodes`): `kubectl get nodes -o yaml` output (a `v1 List`), a
//! `NodeList`, or single `v1 Node` documents → [`NodeFacts`]. Only the fields election needs
//! are read; everything else of a Node is ignored.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::Report;
use super::documents::{name_of, type_of, unwrap_lists};
use crate::diag::{Code, Diagnostic, Span};
use crate::load::{Document, Needed, Node, Path, Value};
use crate::model::catalog::NodeFacts;

/// The fields of a Node that [`read`] looks at; the loader may leave the others (annotations,
/// addresses, images, node info, …: most of an inventory) out of the documents it gets.
pub const NEEDED: Needed = Needed(&[
    (&["metadata"], &["name", "labels", "deletionTimestamp"]),
    (&["spec"], &["unschedulable"]),
    (&["status"], &["conditions", "addresses"]),
    (&["status", "conditions", Needed::ITEM], &["type", "status"]),
    (&["status", "addresses", Needed::ITEM], &["type", "address"]),
]);

/// Reads the nodes of the inventory documents, sorted by name.
pub fn read(docs: Vec<Document>, report: &mut Report) -> Vec<NodeFacts> {
    let mut nodes: BTreeMap<String, (NodeFacts, Document)> = BTreeMap::new();
    for doc in unwrap_lists(docs) {
        let Some((api_version, kind)) = type_of(&doc, report) else {
            continue;
        };
        if kind != "Node" || api_version != "v1" {
            report.push(
                Diagnostic::new(
                    Code::UnknownKind,
                    doc.span(&Path::root().key("kind")),
                    format!("the node inventory holds `{kind}` ({api_version}); it may hold only v1 Nodes"),
                )
                .with_hint("pass the output of `kubectl get nodes -o yaml`; gateways and policies go in PATH"),
            );
            continue;
        }
        let Some(name) = name_of(&doc, "Node", report) else {
            continue;
        };
        let Some(facts) = facts(&doc, name.clone(), report) else {
            continue;
        };
        let name_path = Path::root().key("metadata").key("name");
        if let Some((_, first)) = nodes.get(&name) {
            report.push(
                Diagnostic::new(
                    Code::DuplicateName,
                    doc.span(&name_path),
                    format!("Node `{name}` appears twice in the inventory"),
                )
                .with_related(first.span(&name_path), "first defined here")
                .with_hint("remove one of them"),
            );
            continue;
        }
        for (ip, span) in internal_ips(&doc) {
            report.node_addresses.push((ip, name.clone(), span));
        }
        nodes.insert(name, (facts, doc));
    }
    nodes.into_values().map(|(facts, _)| facts).collect()
}

fn facts(doc: &Document, name: String, report: &mut Report) -> Option<NodeFacts> {
    let labels_path = Path::root().key("metadata").key("labels");
    let labels = match doc.root.at(&labels_path) {
        None => BTreeMap::new(),
        Some(node) if node.is_null() => BTreeMap::new(),
        Some(node) => string_map(doc, &labels_path, node, report)?,
    };
    let unschedulable_path = Path::root().key("spec").key("unschedulable");
    let unschedulable = match doc.root.at(&unschedulable_path).map(|n| &n.value) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            report.push(invalid(
                doc,
                &unschedulable_path,
                format!(
                    "`spec.unschedulable` must be a boolean, found {}",
                    other.kind_name()
                ),
            ));
            return None;
        }
    };
    let deleting = doc
        .root
        .at(&Path::root().key("metadata").key("deletionTimestamp"))
        .is_some_and(|n| !n.is_null());
    Some(NodeFacts {
        name,
        labels,
        ready: ready(doc),
        unschedulable,
        deleting,
        cilium_agent_ready: None,
        vip_agent_ready: None,
        settled: true,
    })
}

/// Ready condition True. A node without any conditions (a hand-written inventory) counts as
/// ready: the inventory author listed it to be used.
fn ready(doc: &Document) -> bool {
    let conditions = doc
        .root
        .at(&Path::root().key("status").key("conditions"))
        .and_then(Node::as_seq)
        .unwrap_or_default();
    if conditions.is_empty() {
        return true;
    }
    conditions
        .iter()
        .find(|c| c.get("type").and_then(Node::as_str) == Some("Ready"))
        .is_some_and(|c| c.get("status").and_then(Node::as_str) == Some("True"))
}

/// The node's `InternalIP` addresses (`status.addresses`) with where each is written; entries
/// that do not parse are skipped (only the VIP check reads them).
fn internal_ips(doc: &Document) -> Vec<(IpAddr, Span)> {
    let path = Path::root().key("status").key("addresses");
    let entries = doc
        .root
        .at(&path)
        .and_then(Node::as_seq)
        .unwrap_or_default();
    entries
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.get("type").and_then(Node::as_str) == Some("InternalIP"))
        .filter_map(|(i, entry)| {
            let ip = entry.get("address").and_then(Node::as_str)?.parse().ok()?;
            Some((ip, doc.span(&path.index(i).key("address"))))
        })
        .collect()
}

fn string_map(
    doc: &Document,
    path: &Path,
    node: &Node,
    report: &mut Report,
) -> Option<BTreeMap<String, String>> {
    let Some(entries) = node.as_map() else {
        report.push(invalid(
            doc,
            path,
            format!("labels must be a mapping, found {}", node.value.kind_name()),
        ));
        return None;
    };
    let mut map = BTreeMap::new();
    for entry in entries {
        match (entry.key.as_str(), entry.value.as_str()) {
            (Some(k), Some(v)) => {
                map.insert(k.to_owned(), v.to_owned());
            }
            (key, _) => {
                let at = path.key(key.unwrap_or("?"));
                report.push(invalid(
                    doc,
                    &at,
                    format!(
                        "label values must be strings, found {}",
                        entry.value.value.kind_name()
                    ),
                ));
                return None;
            }
        }
    }
    Some(map)
}

fn invalid(doc: &Document, path: &Path, message: String) -> Diagnostic {
    Diagnostic::new(Code::InvalidNode, doc.span(path), message)
        .with_hint("pass the output of `kubectl get nodes -o yaml` unchanged")
}
