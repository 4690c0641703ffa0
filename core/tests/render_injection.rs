//! Injection safety: names, labels and values full of YAML indicators, line breaks, keywords and
//! non-printable characters must come back from the rendered stream exactly as they went in, in
//! exactly the intended structure.

use std::collections::BTreeMap;

use egressc_core::elect::{Election, ElectionReason, GatewayElection};
use egressc_core::model::catalog::{Catalog, Gateway, NodeFacts, Policy, SourceIp};
use egressc_core::model::labels::{MEMBER_LABEL, active_for_label};
use egressc_core::render::{RenderOptions, Renderer, Templates, label_value};
use egressc_core::strict_cegp::{self as cilium, CiliumEgressGatewayPolicy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use proptest::prelude::*;
use serde_json::Value as Json;

/// Strings built to break naive YAML templating.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        // Structure-changing characters and whitespace.
        "[a-z\": \n\t\r#{}\\[\\]'&*!|>%@`,?=~-]{0,12}",
        // Keywords and numbers a YAML reader would not read back as strings.
        prop::sample::select(vec![
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "true",
            "False",
            "null",
            "~",
            "1e3",
            "0x1F",
            "012",
            ".inf",
            "-.5",
            "1:20",
            "2001:db8::1",
            "<<",
            "=",
            "---",
            "...",
            "- x",
            "a: b",
            "",
        ])
        .prop_map(String::from),
        // Any Unicode, including control characters, NEL, LS/PS and BOM.
        any::<String>().prop_map(|s| s.chars().take(10).collect()),
        prop::collection::vec(
            prop::sample::select(vec![
                '\u{0}', '\u{7f}', '\u{85}', '\u{2028}', '\u{feff}', 'é', '"', '\\'
            ]),
            0..6
        )
        .prop_map(|chars| chars.into_iter().collect()),
    ]
}

fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(hostile(), hostile(), 0..4)
}

fn expression() -> impl Strategy<Value = LabelSelectorRequirement> {
    (hostile(), hostile(), prop::collection::vec(hostile(), 0..3)).prop_map(
        |(key, operator, values)| LabelSelectorRequirement {
            key,
            operator,
            values: (!values.is_empty()).then_some(values),
        },
    )
}

fn selector() -> impl Strategy<Value = LabelSelector> {
    (label_map(), prop::collection::vec(expression(), 0..3)).prop_map(|(labels, expressions)| {
        LabelSelector {
            match_labels: (!labels.is_empty()).then_some(labels),
            match_expressions: (!expressions.is_empty()).then_some(expressions),
        }
    })
}

#[derive(Debug, Clone)]
struct Case {
    catalog: Catalog,
    election: Election,
}

fn case() -> impl Strategy<Value = Case> {
    (
        hostile(),
        hostile(),
        hostile(),
        prop::collection::vec(selector(), 0..3),
        label_map(),
        hostile(),
        any::<bool>(),
    )
        .prop_map(
            |(gateway, policy, interface, selectors, node_selector, node, vip)| {
                let source = if vip {
                    SourceIp::VirtualIp {
                        ip: "198.51.100.7".parse().unwrap(),
                        interfaces: vec![],
                    }
                } else {
                    SourceIp::PrimaryInterface { interface }
                };
                let catalog = Catalog {
                    gateways: vec![Gateway {
                        name: gateway.clone(),
                        node_selector: node_selector.clone(),
                        source,
                    }],
                    policies: vec![Policy {
                        name: policy,
                        gateway: gateway.clone(),
                        selectors,
                        destinations: vec!["192.0.2.0/24".parse().unwrap()],
                        excluded: vec!["192.0.2.128/25".parse().unwrap()],
                    }],
                    nodes: vec![NodeFacts::healthy(node.clone(), node_selector)],
                };
                let election = Election {
                    gateways: BTreeMap::from([(
                        gateway,
                        GatewayElection {
                            active: Some(node.clone()),
                            reason: ElectionReason::Elected,
                            ready_nodes: vec![node].into(),
                        },
                    )]),
                };
                Case { catalog, election }
            },
        )
}

fn expected_selector(selector: &LabelSelector) -> cilium::LabelSelector {
    cilium::LabelSelector {
        match_labels: selector.match_labels.clone(),
        match_expressions: selector.match_expressions.as_ref().map(|exprs| {
            exprs
                .iter()
                .map(|e| cilium::LabelSelectorRequirement {
                    key: e.key.clone(),
                    operator: e.operator.clone(),
                    values: e.values.clone(),
                })
                .collect()
        }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn hostile_values_round_trip_exactly(case in case()) {
        let renderer = Renderer::new(&Templates::builtin()).unwrap();
        let options = RenderOptions { include_node_labels: true, ..RenderOptions::default() };
        let out = renderer.render(&case.catalog, &case.election, &options).unwrap();
        let docs: Vec<Json> = serde_saphyr::from_multiple(&out)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{out}")))?;

        let gateway = &case.catalog.gateways[0];
        let policy = &case.catalog.policies[0];
        let node = &case.catalog.nodes[0];
        let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
        // The VIP agent's objects; its Namespace belongs to the controller's install.
        let agent_docs = if gateway.needs_vip_agent() { 6 } else { 0 };
        prop_assert_eq!(docs.len(), agent_docs + 2, "{:?}", kinds);

        let cegp_doc = docs.iter().find(|d| d["kind"] == cilium::KIND).unwrap().clone();
        let cegp: CiliumEgressGatewayPolicy = serde_json::from_value(cegp_doc)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&cegp.metadata.name, &policy.name);
        prop_assert_eq!(cegp.metadata.labels.get("egress-gateway.network.deckhouse.io/policy"), Some(&label_value(&policy.name)));
        let selectors: Vec<cilium::LabelSelector> = cegp.spec.selectors.iter().map(|s| s.pod_selector.clone().unwrap_or_default()).collect();
        let expected: Vec<cilium::LabelSelector> = policy.selectors.iter().map(expected_selector).collect();
        prop_assert_eq!(selectors, expected);
        prop_assert_eq!(cegp.spec.destination_cidrs, vec!["192.0.2.0/24".to_string()]);
        prop_assert_eq!(cegp.spec.excluded_cidrs, Some(vec!["192.0.2.128/25".to_string()]));
        let egress = &cegp.spec.egress_gateway;
        prop_assert_eq!(egress.node_selector.match_labels.clone(), Some(BTreeMap::from([(active_for_label(&gateway.name), String::new())])));
        match &gateway.source {
            SourceIp::PrimaryInterface { interface } => {
                prop_assert_eq!(egress.interface.as_ref(), Some(interface));
                prop_assert_eq!(egress.egress_ip.as_ref(), None);
            }
            SourceIp::VirtualIp { .. } => {
                prop_assert_eq!(egress.egress_ip.as_deref(), Some("198.51.100.7"));
                prop_assert_eq!(egress.interface.as_ref(), None);
                let ds = docs.iter().find(|d| d["kind"] == "DaemonSet").unwrap();
                let terms = &ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
                if gateway.node_selector.is_empty() {
                    prop_assert!(terms.is_null());
                } else {
                    let expressions: Vec<(String, Vec<String>)> = terms[0]["matchExpressions"].as_array().unwrap().iter()
                        .map(|e| (e["key"].as_str().unwrap().to_string(), serde_json::from_value(e["values"].clone()).unwrap()))
                        .collect();
                    let want: Vec<(String, Vec<String>)> = gateway.node_selector.iter().map(|(k, v)| (k.clone(), vec![v.clone()])).collect();
                    prop_assert_eq!(expressions, want);
                }
            }
        }

        let node_doc = docs.iter().find(|d| d["kind"] == "Node").unwrap();
        prop_assert_eq!(node_doc["metadata"]["name"].as_str(), Some(node.name.as_str()));
        let node_labels: BTreeMap<String, String> = serde_json::from_value(node_doc["metadata"]["labels"].clone()).unwrap();
        prop_assert_eq!(node_labels, BTreeMap::from([
            (active_for_label(&gateway.name), String::new()),
            (MEMBER_LABEL.to_string(), String::new()),
        ]));
    }
}
