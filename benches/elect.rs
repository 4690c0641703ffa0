//! Election benchmarks: a full pass over 5,000 nodes and 1,000 gateways (10 node groups of 500
//! nodes, 100 gateways each), and the incremental re-election after one node fails.
//!
//! Run with `cargo bench --bench elect`.

use std::collections::BTreeMap;

use egressc::elect::{Elector, elect};
use egressc::model::catalog::{Gateway, NodeFacts, SourceIp};

const GROUPS: usize = 10;
const NODES_PER_GROUP: usize = 500;
const GATEWAYS_PER_GROUP: usize = 100;

// The allocator the egressc binary ships with (src/main.rs), so these numbers are the binary's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

fn cluster() -> (Vec<Gateway>, Vec<NodeFacts>) {
    let mut gateways = Vec::new();
    let mut nodes = Vec::new();
    for group in 0..GROUPS {
        let group_label = format!("group-{group}");
        for i in 0..NODES_PER_GROUP {
            let labels = BTreeMap::from([
                ("node.example.com/group".to_owned(), group_label.clone()),
                ("kubernetes.io/os".to_owned(), "linux".to_owned()),
                (
                    "topology.kubernetes.io/zone".to_owned(),
                    format!("zone-{}", i % 3),
                ),
            ]);
            let mut node = NodeFacts::healthy(format!("node-{group}-{i:04}"), labels);
            node.cilium_agent_ready = Some(true);
            nodes.push(node);
        }
        for i in 0..GATEWAYS_PER_GROUP {
            gateways.push(Gateway {
                name: format!("gw-{group}-{i:03}"),
                node_selector: BTreeMap::from([(
                    "node.example.com/group".to_owned(),
                    group_label.clone(),
                )]),
                source: SourceIp::PrimaryInterface {
                    interface: "eth0".to_owned(),
                },
            });
        }
    }
    (gateways, nodes)
}

/// Full election, no current holders.
#[divan::bench(sample_count = 100)]
fn full_election(bencher: divan::Bencher) {
    let (gateways, nodes) = cluster();
    bencher.bench(|| elect(divan::black_box(&gateways), divan::black_box(&nodes)));
}

/// One node that holds gateways fails; the Elector re-elects incrementally.
#[divan::bench(sample_count = 50)]
fn reelect_after_one_node_fails(bencher: divan::Bencher) {
    let (gateways, nodes) = cluster();
    bencher
        .with_inputs(|| {
            let elector = Elector::new(&gateways, &nodes);
            let victim = elector.election().gateways["gw-3-000"]
                .active
                .clone()
                .unwrap_or_default();
            let mut down = elector
                .node(&victim)
                .map(|node| node.to_facts())
                .unwrap_or_else(|| nodes[0].clone());
            down.ready = false;
            (elector, down)
        })
        // By reference, so that dropping the Elector is not timed.
        .bench_local_refs(|(elector, down)| elector.apply_node(down.clone()));
}
