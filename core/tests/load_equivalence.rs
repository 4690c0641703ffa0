//! The loader's two routes agree: `load::parse_stream` (straight from parser events, falling
//! back to serde-saphyr when it declines) gives exactly what `load::parse_stream_reference`
//! (serde-saphyr alone) gives — the same documents, values and positions, or the same
//! diagnostic. Checked on every committed YAML/JSON file, on the benchmark's synthetic cluster
//! (the shape the direct route exists for), and on generated documents full of spellings
//! whose meaning depends on the YAML schema. The node inventory is loaded with the fields
//! its reader ignores left out (`parse_stream_needed`); what the reader makes of it (nodes
//! and diagnostics) must not change either.

// An integration test reads fixture files, which the core's own code may not (core/clippy.toml).
#![allow(clippy::disallowed_methods)]

mod support;

#[path = "../../dev/gen/synthetic.rs"]
#[allow(dead_code)]
mod synthetic;

use std::fs;
use std::path::{Path, PathBuf};

use egressc_core::load::{Limits, parse_stream, parse_stream_needed, parse_stream_reference};
use egressc_core::validate::{nodes::NEEDED, read_inventory};
use proptest::prelude::*;

/// Debug builds spend ~35 KB of stack per nesting level while parsing; the 64-level budget
/// needs more than a test thread's default 2 MB.
const STACK: usize = 16 * 1024 * 1024;

/// Both routes' results, printed (`Debug` makes NaN equal to NaN, which `PartialEq` does not).
fn both(text: &str, limits: &Limits) -> (String, String) {
    let fast = format!("{:?}", parse_stream("in.yaml", text, limits));
    let reference = format!("{:?}", parse_stream_reference("in.yaml", text, limits));
    (fast, reference)
}

fn assert_agree(text: &str, limits: &Limits, what: &str) {
    let (fast, reference) = both(text, limits);
    assert!(
        fast == reference,
        "{what}: routes differ\nfast: {fast}\nreference: {reference}"
    );
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("directory readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json" || e == "nodes")
        {
            out.push(path);
        }
    }
}

fn on_big_stack(work: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(work)
        .expect("thread starts")
        .join()
        .expect("no assertion failed");
}

#[test]
fn committed_inputs_load_the_same_either_way() {
    on_big_stack(|| {
        let root = support::repo_root();
        let mut files = Vec::new();
        for dir in ["tests/corpus", "tests/fixtures", "fuzz/seeds", "examples"] {
            yaml_files(&root.join(dir), &mut files);
        }
        assert!(files.len() > 200, "only {} files", files.len());
        let small = Limits::default()
            .with_overrides("max_nodes=200,max_depth=6,max_documents=3,max_scalar_bytes=300")
            .expect("valid overrides");
        for file in &files {
            let Ok(text) = String::from_utf8(fs::read(file).expect("readable")) else {
                continue;
            };
            let name = file.display().to_string();
            assert_agree(&text, &Limits::default(), &name);
            // Tight budgets: the direct route must leave every breach to the reference.
            assert_agree(&text, &small, &format!("{name} under small budgets"));
        }
    });
}

/// The inventory reader's result (nodes and diagnostics, printed) on `text` loaded with and
/// without the fields it ignores.
fn inventory_both(text: &str) -> (String, String) {
    let read = |docs: Result<Vec<_>, _>| match docs {
        Ok(docs) => {
            let (nodes, report) = read_inventory(docs);
            format!("{nodes:?} {:?}", report.into_sorted())
        }
        Err(diagnostic) => format!("{diagnostic:?}"),
    };
    let limits = Limits::default();
    (
        read(parse_stream_needed(
            "nodes.yaml",
            text,
            &limits,
            Some(&NEEDED),
        )),
        read(parse_stream_reference("nodes.yaml", text, &limits)),
    )
}

fn assert_inventory_agrees(text: &str, what: &str) {
    let (needed, reference) = inventory_both(text);
    assert!(
        needed == reference,
        "{what}: inventory differs\nneeded: {needed}\nreference: {reference}"
    );
}

#[test]
fn inventories_read_the_same_with_ignored_fields_left_out() {
    on_big_stack(|| {
        let root = support::repo_root();
        let mut files = Vec::new();
        for dir in ["tests/corpus", "tests/fixtures", "examples"] {
            yaml_files(&root.join(dir), &mut files);
        }
        for file in &files {
            if let Ok(text) = String::from_utf8(fs::read(file).expect("readable")) {
                assert_inventory_agrees(&text, &file.display().to_string());
            }
        }
        let node = |name: &str, extra: &str| {
            format!(
                "- apiVersion: v1\n  kind: Node\n  metadata:\n    name: {name}\n    \
                 annotations: {{a: b}}\n    labels: {{role: egress}}\n{extra}"
            )
        };
        let hostile = [
            // Nested lists, the reader's fields at every level, ignored fields around them.
            format!(
                "apiVersion: v1\nkind: List\nmetadata: {{resourceVersion: \"1\"}}\nitems:\n{}{}",
                node("a", "  spec: {podCIDR: 10.0.0.0/24, unschedulable: true}\n"),
                "- kind: NodeList\n  apiVersion: v1\n  items:\n  - {apiVersion: v1, kind: Node, \
                 metadata: {name: b, uid: x, deletionTimestamp: \"2025-01-01T00:00:00Z\"}, \
                 status: {addresses: [], conditions: [{type: Ready, status: \"False\"}]}}\n"
            ),
            // Wrong types in read and in ignored fields; a duplicate name.
            format!(
                "kind: List\napiVersion: v1\nitems:\n{}{}{}",
                node("c", "  spec: {unschedulable: maybe, taints: 7}\n"),
                node("d", "  status: {conditions: 5, images: x}\n"),
                node("d", "")
            ),
            // A duplicate key inside an ignored field is still a syntax error.
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: e\n  annotations:\n    a: 1\n    a: 2\n"
                .to_owned(),
            // An `items` key in a document that is not a list, and a list without items.
            "apiVersion: v1\nkind: Node\nmetadata: {name: f}\nitems:\n- metadata: {name: g, uid: u}\n---\nkind: List\n"
                .to_owned(),
        ];
        for (i, text) in hostile.iter().enumerate() {
            assert_inventory_agrees(text, &format!("hostile inventory {i}"));
        }
    });
}

#[test]
fn the_benchmark_cluster_loads_the_same_either_way() {
    on_big_stack(|| {
        let cluster = synthetic::generate(&synthetic::Settings {
            gateways: 40,
            groups: 4,
            policies: 200,
            nodes: 120,
            ..synthetic::Settings::default()
        });
        for (name, text) in [
            ("gateways", &cluster.gateways_yaml),
            ("policies", &cluster.policies_yaml),
            ("nodes", &cluster.nodes_yaml),
        ] {
            assert_agree(text, &Limits::default(), name);
        }
        assert_inventory_agrees(&cluster.nodes_yaml, "nodes");
    });
}

/// Scalars whose meaning depends on the schema, quoting or position, and keys likewise.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "~",
            "null",
            "Null",
            "NULL",
            "true",
            "false",
            "True",
            "FALSE",
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "n",
            "0",
            "7",
            "-7",
            "-0",
            "+7",
            "007",
            "0x1F",
            "0o17",
            "0b101",
            "1_000",
            "1.5",
            "-1.5e3",
            ".inf",
            "-.inf",
            ".nan",
            "+.nan",
            "1e999",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "10.0.0.1",
            "2001:db8::1",
            "2025-01-01T00:00:00Z",
            "<<",
            "=",
            "a b",
            "x: y",
            "#c",
            "- z",
            "é",
            "'q'",
            "\"d\"",
            "|",
            ">",
            "&a",
            "*a",
            "!t",
            "%",
            "@",
            "`",
            "node-00001",
            "1930m",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9.:/_-]{1,12}",
    ]
}

/// One scalar written plain, single-quoted, double-quoted or as a literal block.
fn written(value: String, style: u8, indent: usize) -> String {
    match style {
        0 => value,
        1 => format!("'{}'", value.replace('\'', "''")),
        2 => format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
        _ => format!("|\n{}{}", " ".repeat(indent + 2), value),
    }
}

/// A small block-style document: a mapping of scalars, a flow sequence and a nested mapping.
fn document() -> impl Strategy<Value = String> {
    let entry = (scalar(), 0u8..3, scalar(), 0u8..4);
    (
        prop::collection::vec(entry, 1..6),
        prop::collection::vec((scalar(), 0u8..3), 0..4),
        prop::bool::ANY,
    )
        .prop_map(|(entries, items, comment)| {
            let mut text = String::from("---\n");
            if comment {
                text.push_str("# a comment\n");
            }
            for (key, key_style, value, value_style) in &entries {
                let key = written(key.clone(), *key_style, 0);
                let value = written(value.clone(), *value_style, 0);
                text.push_str(&format!("{key}: {value}\n"));
            }
            text.push_str("list: [");
            let items: Vec<String> = items
                .into_iter()
                .map(|(item, style)| written(item, style.min(2), 0))
                .collect();
            text.push_str(&items.join(", "));
            text.push_str("]\nnested:\n");
            for (key, key_style, value, value_style) in &entries {
                let key = written(key.clone(), *key_style, 2);
                let value = written(value.clone(), *value_style, 2);
                text.push_str(&format!("  {key}: {value}\n"));
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_documents_load_the_same_either_way(docs in prop::collection::vec(document(), 1..3)) {
        let text = docs.concat();
        let (fast, reference) = both(&text, &Limits::default());
        prop_assert_eq!(fast, reference, "{}", text);
    }
}
