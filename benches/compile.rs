//! Compile benchmarks, stage by stage, over the reference synthetic cluster (1,000 gateways
//! in 50 node groups, 10,000 policies, 5,000 nodes; `dev/gen/synthetic.rs`), generated in
//! memory. In-process numbers for finding where `egressc build` spends its time; the
//! end-to-end wall time and peak RSS come from `scripts/bench.sh`.
//!
//! Run with `cargo bench --bench compile`.

#[path = "../dev/gen/synthetic.rs"]
#[allow(dead_code)]
mod synthetic;

use egressc::elect::{Election, elect};
use egressc::load::{self, Limits};
use egressc::model::catalog::Catalog;
use egressc::pipeline::{self, Input};
use egressc::render::{RenderOptions, Renderer, Templates};
use egressc::validate::Options;
use egressc::validate::nodes::NEEDED;

// The allocator the egressc binary ships with (src/main.rs), so these numbers are the binary's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

/// The reference cluster's sources and inventory, and the options to compile it.
struct Fixture {
    sources: Vec<Input>,
    inventory: Input,
    options: Options,
    render: RenderOptions,
    renderer: Renderer,
}

fn fixture() -> Fixture {
    let cluster = synthetic::generate(&synthetic::Settings::default());
    let options = Options {
        cilium: "1.19".parse().expect("1.19 is a supported Cilium version"),
        ..Options::default()
    };
    let render = RenderOptions {
        cilium: options.cilium,
        include_node_labels: true,
        ..RenderOptions::default()
    };
    Fixture {
        sources: vec![
            Input {
                name: "gateways.yaml".to_owned(),
                text: cluster.gateways_yaml,
            },
            Input {
                name: "policies.yaml".to_owned(),
                text: cluster.policies_yaml,
            },
        ],
        inventory: Input {
            name: "nodes.yaml".to_owned(),
            text: cluster.nodes_yaml,
        },
        options,
        render,
        renderer: Renderer::new(&Templates::builtin()).expect("built-in templates compile"),
    }
}

/// The validated catalog and its election, checked to be error-free.
fn catalog_and_election(fixture: &Fixture) -> (Catalog, Election) {
    let checked = pipeline::check(
        &fixture.sources,
        Some(&fixture.inventory),
        &fixture.options,
        &Limits::default(),
    );
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let election = elect(&checked.catalog.gateways, &checked.catalog.nodes);
    (checked.catalog, election)
}

/// YAML text → located trees, every input, as the pipeline loads them (the inventory without
/// the fields its reader ignores).
#[divan::bench(sample_count = 10)]
fn parse(bencher: divan::Bencher) {
    let fixture = fixture();
    let limits = Limits::default();
    bencher.bench_local(|| {
        let inventory = &fixture.inventory;
        let mut counts: Vec<_> = fixture
            .sources
            .iter()
            .map(|input| load::parse_stream(&input.name, &input.text, &limits).map(|d| d.len()))
            .collect();
        counts.push(
            load::parse_stream_needed(&inventory.name, &inventory.text, &limits, Some(&NEEDED))
                .map(|d| d.len()),
        );
        counts
    });
}

/// Parse + validate (what `egressc check` does).
#[divan::bench(sample_count = 10)]
fn check(bencher: divan::Bencher) {
    let fixture = fixture();
    let limits = Limits::default();
    bencher.bench_local(|| {
        pipeline::check(
            &fixture.sources,
            Some(&fixture.inventory),
            &fixture.options,
            &limits,
        )
    });
}

/// Election over the validated catalog.
#[divan::bench(sample_count = 10)]
fn elect_catalog(bencher: divan::Bencher) {
    let fixture = fixture();
    let (catalog, _) = catalog_and_election(&fixture);
    bencher.bench_local(|| elect(&catalog.gateways, &catalog.nodes));
}

/// Rendering the manifests from catalog and election.
#[divan::bench(sample_count = 10)]
fn render(bencher: divan::Bencher) {
    let fixture = fixture();
    let (catalog, election) = catalog_and_election(&fixture);
    bencher.bench_local(|| {
        fixture
            .renderer
            .render(&catalog, &election, &fixture.render)
            .map(|s| s.len())
    });
}

/// Everything `egressc build` does between reading the files and writing the output.
#[divan::bench(sample_count = 10)]
fn compile(bencher: divan::Bencher) {
    let fixture = fixture();
    let limits = Limits::default();
    bencher.bench_local(|| {
        pipeline::compile(
            &fixture.sources,
            Some(&fixture.inventory),
            &fixture.options,
            &limits,
            &fixture.renderer,
            &fixture.render,
        )
        .map(|c| c.manifests.len())
    });
}
