//! Measures one render of N policies (default 10,000) over 10 gateways:
//! `cargo run --release --example render-bench -- 10000`.

use std::collections::BTreeMap;
use std::time::Instant;

use egressc::elect::Election;
use egressc::model::catalog::{Catalog, Gateway, Policy, SourceIp};
use egressc::render::{RenderOptions, Renderer, Templates};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(10_000);
    let gateways: Vec<Gateway> = (0..10u8)
        .map(|i| Gateway {
            name: format!("gw-{i}"),
            node_selector: BTreeMap::from([("egress".to_string(), format!("g{i}"))]),
            source: if i % 2 == 0 {
                SourceIp::PrimaryInterface {
                    interface: "eth1".into(),
                }
            } else {
                SourceIp::VirtualIp {
                    ip: std::net::IpAddr::from([198, 51, 100, i]),
                    interfaces: vec![],
                }
            },
        })
        .collect();
    let policies = (0..count)
        .map(|i| {
            Ok(Policy {
                name: format!("policy-{i:05}"),
                gateway: format!("gw-{}", i % 10),
                selectors: vec![LabelSelector {
                    match_labels: Some(BTreeMap::from([
                        ("app".to_string(), format!("app-{i}")),
                        (
                            "io.kubernetes.pod.namespace".to_string(),
                            format!("ns-{}", i % 100),
                        ),
                    ])),
                    match_expressions: None,
                }],
                destinations: vec!["203.0.113.0/24".parse()?, "192.0.2.0/24".parse()?],
                excluded: vec!["192.0.2.128/25".parse()?],
            })
        })
        .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
    let catalog = Catalog {
        gateways,
        policies,
        nodes: vec![],
    };
    let renderer = Renderer::new(&Templates::builtin())?;
    let options = RenderOptions::default();
    let started = Instant::now();
    let out = renderer.render(&catalog, &Election::default(), &options)?;
    let elapsed = started.elapsed();
    println!("{count} policies: {} bytes in {elapsed:?}", out.len());
    Ok(())
}
