//! Data-driven validation tests. Every `fixtures/invalid/<CODE>-<case>.yaml` must produce a
//! diagnostic with that code; the rendered diagnostics are snapshotted. Every
//! `fixtures/valid/*.yaml` must produce none. A fixture may start with
//! `# cilium-version: X.Y`, and `fixtures/nodes/<same name>` is passed as `--nodes`.

// An integration test reads fixture files, which the core's own code may not (core/clippy.toml).
#![allow(clippy::disallowed_methods)]

mod support;

use std::fs;
use std::path::Path;

use egressc_core::diag::render::{Sources, render_human};
use egressc_core::load::Limits;
use egressc_core::model::cilium::CiliumVersion;
use egressc_core::pipeline::{self, Compiled, Input};
use egressc_core::validate::Options;

fn run_fixture(path: &Path) -> (Compiled, Sources<'static>) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = fs::read_to_string(path).unwrap();
    let cilium = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# cilium-version: "))
        .map(|v| v.parse::<CiliumVersion>().unwrap())
        .unwrap_or_default();
    let nodes_path = path.parent().unwrap().join("../nodes").join(&name);
    let nodes = nodes_path.exists().then(|| Input {
        name: format!("nodes/{name}"),
        text: fs::read_to_string(&nodes_path).unwrap(),
    });
    let input = Input {
        name: name.clone(),
        text: text.clone(),
    };
    let options = Options {
        cilium,
        ignore_unknown_kinds: false,
    };
    let compiled = pipeline::check(&[input], nodes.as_ref(), &options, &Limits::default());
    let mut sources = Sources::default();
    sources.insert(name, text);
    if let Some(nodes) = nodes {
        sources.insert(nodes.name, nodes.text);
    }
    (compiled, sources)
}

#[test]
fn invalid_fixtures_report_their_code() {
    insta::glob!("../../tests/fixtures/invalid", "*.yaml", |path| {
        let (compiled, sources) = run_fixture(path);
        let name = path.file_name().unwrap().to_string_lossy();
        let code = &name[..4];
        assert!(
            compiled.diagnostics.iter().any(|d| d.code.as_str() == code),
            "{name}: expected {code}, got {:#?}",
            compiled.diagnostics
        );
        insta::assert_snapshot!(render_human(&compiled.diagnostics, &sources));
    });
}

#[test]
fn valid_fixtures_have_no_diagnostics() {
    insta::glob!("../../tests/fixtures/valid", "*.yaml", |path| {
        let (compiled, _) = run_fixture(path);
        assert_eq!(compiled.diagnostics, vec![], "{}", path.display());
        assert!(!compiled.catalog.gateways.is_empty(), "{}", path.display());
    });
}

#[test]
fn inventory_becomes_node_facts() {
    let dir = support::repo_root().join("tests/fixtures/valid");
    let (compiled, _) = run_fixture(&dir.join("with-inventory.yaml"));
    let nodes = &compiled.catalog.nodes;
    assert_eq!(nodes.len(), 2);
    let (a, b) = (&nodes[0], &nodes[1]);
    assert_eq!(a.name, "node-a");
    assert!(a.ready && !a.unschedulable && !a.deleting && a.settled);
    assert!(
        a.labels
            .contains_key("egress-gateway.network.deckhouse.io/active-for-edge")
    );
    assert_eq!(a.cilium_agent_ready, None);
    assert_eq!(b.name, "node-b");
    assert!(!b.ready && b.unschedulable && b.deleting);
}

#[test]
fn seed_examples_fail_only_on_the_dangling_reference() {
    let dir = support::repo_root().join("examples/seed");
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let inputs: Vec<Input> = entries
        .iter()
        .map(|p| Input {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            text: fs::read_to_string(p).unwrap(),
        })
        .collect();
    let compiled = pipeline::check(&inputs, None, &Options::default(), &Limits::default());
    let codes: Vec<&str> = compiled
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["E022"]);
    let d = &compiled.diagnostics[0];
    assert_eq!(
        (d.span.file.as_str(), d.span.line, d.span.col),
        ("03-egressgatewaypolicy.yaml", 8, 22)
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean `myegressgw`?"));
    assert_eq!(compiled.catalog.gateways.len(), 2);
    assert!(compiled.catalog.policies.is_empty());
}

#[test]
fn every_code_is_in_the_readme_table_and_has_a_fixture() {
    let root = support::repo_root();
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let fixtures: Vec<String> = fs::read_dir(root.join("tests/fixtures/invalid"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for code in egressc_core::diag::Code::ALL {
        let code = code.as_str();
        assert!(
            readme.contains(&format!("| {code} |")),
            "{code} is missing from README.md's code table"
        );
        // Budget codes (E002, E003, E006, E007) and E008 need inputs too large or too odd to
        // commit; the corpus generates those.
        if code.starts_with("E04") || code.starts_with("W01") {
            assert!(
                fixtures.iter().any(|f| f.starts_with(code)),
                "{code} has no tests/fixtures/invalid/{code}-*.yaml"
            );
        }
    }
}
