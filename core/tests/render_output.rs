//! Rendered streams: snapshots of typical catalogs, determinism, strict re-parse of every
//! CiliumEgressGatewayPolicy, validation against Cilium's own CRD schemas, and template errors.

// An integration test reads fixture files, which the core's own code may not (core/clippy.toml).
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeMap;

use egressc_core::elect::{Election, ElectionReason, GatewayElection};
use egressc_core::model::catalog::{Catalog, Gateway, NodeFacts, Policy, SourceIp};
use egressc_core::model::labels::active_for_label;
use egressc_core::render::{
    CiliumVersion, RenderError, RenderOptions, Renderer, Templates, render,
};
use egressc_core::strict_cegp::{self as cilium, CiliumEgressGatewayPolicy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use serde_json::Value as Json;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn primary_gateway(name: &str, selector: &[(&str, &str)], interface: &str) -> Gateway {
    Gateway {
        name: name.into(),
        node_selector: labels(selector),
        source: SourceIp::PrimaryInterface {
            interface: interface.into(),
        },
    }
}

fn vip_gateway(name: &str, selector: &[(&str, &str)], ip: &str) -> Gateway {
    Gateway {
        name: name.into(),
        node_selector: labels(selector),
        source: SourceIp::VirtualIp {
            ip: ip.parse().unwrap(),
            interfaces: vec![],
        },
    }
}

fn pods(match_labels: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels(match_labels)),
        match_expressions: None,
    }
}

fn policy(name: &str, gateway: &str, destinations: &[&str], excluded: &[&str]) -> Policy {
    Policy {
        name: name.into(),
        gateway: gateway.into(),
        selectors: vec![pods(&[
            ("app", "backend"),
            ("io.kubernetes.pod.namespace", "my-ns"),
        ])],
        destinations: destinations.iter().map(|d| d.parse().unwrap()).collect(),
        excluded: excluded.iter().map(|d| d.parse().unwrap()).collect(),
    }
}

fn elected(active: &str, ready: &[&str]) -> GatewayElection {
    GatewayElection {
        active: Some(active.into()),
        reason: ElectionReason::Elected,
        ready_nodes: std::sync::Arc::new(ready.iter().map(|n| n.to_string()).collect()),
    }
}

fn election(entries: Vec<(&str, GatewayElection)>) -> Election {
    Election {
        gateways: entries
            .into_iter()
            .map(|(g, e)| (g.to_string(), e))
            .collect(),
    }
}

fn options(minor: u8) -> RenderOptions {
    RenderOptions {
        cilium: format!("1.{minor}").parse::<CiliumVersion>().unwrap(),
        agent_image: "registry.example/egressc:1.0.0".into(),
        ..RenderOptions::default()
    }
}

/// A PrimaryIP gateway, a VIP gateway, policies of both, three nodes.
fn mixed_catalog() -> (Catalog, Election) {
    let egress = [("node-role.example/egress", "")];
    let catalog = Catalog {
        gateways: vec![
            primary_gateway("myegressgw", &egress, "eth1"),
            vip_gateway(
                "myeg",
                &[("node-role.example/egress-vip", "")],
                "198.51.100.10",
            ),
        ],
        policies: vec![
            policy(
                "my-egressgw-policy",
                "myegressgw",
                &["0.0.0.0/0"],
                &["192.0.2.0/24"],
            ),
            Policy {
                selectors: vec![LabelSelector {
                    match_labels: None,
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: "tier".into(),
                        operator: "In".into(),
                        values: Some(vec!["web".into(), "api".into()]),
                    }]),
                }],
                ..policy("vip-policy", "myeg", &["203.0.113.0/24"], &[])
            },
        ],
        nodes: vec![
            NodeFacts::healthy("node-a", labels(&egress)),
            NodeFacts::healthy("node-b", labels(&[("node-role.example/egress-vip", "")])),
            NodeFacts::healthy("node-c", labels(&[("node-role.example/egress", "")])),
            NodeFacts::healthy("worker-1", labels(&[])),
        ],
    };
    let election = election(vec![
        ("myegressgw", elected("node-c", &["node-a", "node-c"])),
        ("myeg", elected("node-b", &["node-b"])),
    ]);
    (catalog, election)
}

fn documents(stream: &str) -> Vec<Json> {
    serde_saphyr::from_multiple::<Json>(stream).expect("rendered stream parses as YAML")
}

fn cegps(stream: &str) -> Vec<CiliumEgressGatewayPolicy> {
    documents(stream)
        .into_iter()
        .filter(|d| d["kind"] == cilium::KIND)
        .map(|d| serde_json::from_value(d).expect("CEGP matches the strict Cilium types"))
        .collect()
}

#[test]
fn primary_ip_only() {
    let catalog = Catalog {
        gateways: vec![primary_gateway(
            "myegressgw",
            &[("node-role.deckhouse.io/egress", "")],
            "eth1",
        )],
        policies: vec![policy(
            "my-egressgw-policy",
            "myegressgw",
            &["0.0.0.0/0"],
            &[],
        )],
        nodes: vec![],
    };
    let out = render(&catalog, &Election::default(), &options(17)).unwrap();
    insta::assert_snapshot!(out);
    assert!(!out.contains("DaemonSet"), "no agent without VIP gateways");
}

#[test]
fn vip_only() {
    let catalog = Catalog {
        gateways: vec![vip_gateway(
            "myeg",
            &[("node-role.deckhouse.io/egress", "")],
            "198.51.100.42",
        )],
        policies: vec![policy("p", "myeg", &["203.0.113.0/24"], &[])],
        nodes: vec![],
    };
    insta::assert_snapshot!(render(&catalog, &Election::default(), &options(19)).unwrap());
}

#[test]
fn mixed_with_node_labels() {
    let (catalog, election) = mixed_catalog();
    let opts = RenderOptions {
        include_node_labels: true,
        ..options(19)
    };
    insta::assert_snapshot!(render(&catalog, &election, &opts).unwrap());
}

#[test]
fn ipv6_destinations_on_cilium_1_19() {
    let catalog = Catalog {
        gateways: vec![primary_gateway("gw6", &[("egress", "v6")], "eth1")],
        policies: vec![policy(
            "v6",
            "gw6",
            &["2001:db8::/32", "192.0.2.0/24"],
            &["2001:db8:1::/48"],
        )],
        nodes: vec![],
    };
    insta::assert_snapshot!(render(&catalog, &Election::default(), &options(19)).unwrap());
    let err = render(&catalog, &Election::default(), &options(17)).unwrap_err();
    assert!(
        matches!(err, RenderError::UnsupportedByCilium { minor: 17, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("2001:db8::/32"), "{err}");
}

#[test]
fn ipv4_mapped_ipv6_cidrs_are_written_in_the_form_cilium_accepts() {
    // Cilium 1.19's IPv6 pattern rejects the embedded-IPv4 form std prints for these networks;
    // egressc writes the same network in plain hex groups.
    let catalog = Catalog {
        gateways: vec![primary_gateway("gw", &[], "eth1")],
        policies: vec![policy("mapped", "gw", &["::ffff:192.0.2.0/120"], &[])],
        nodes: vec![],
    };
    let text = render(&catalog, &Election::default(), &options(19)).unwrap();
    let doc = documents(&text)
        .into_iter()
        .find(|d| d["kind"] == cilium::KIND)
        .unwrap();
    assert_eq!(
        doc["spec"]["destinationCIDRs"],
        serde_json::json!(["::ffff:c000:200/120"])
    );
    let v19 = crd_validator("ciliumegressgatewaypolicies.v1.19.0.yaml");
    assert!(v19.is_valid(&doc), "the hex form passes the CRD");
    let mut embedded = doc.clone();
    embedded["spec"]["destinationCIDRs"] = serde_json::json!(["::ffff:192.0.2.0/120"]);
    assert!(
        !v19.is_valid(&embedded),
        "the CRD really rejects the embedded form"
    );
    let parsed: ipnet::IpNet = "::ffff:c000:200/120".parse().unwrap();
    assert_eq!(
        parsed,
        "::ffff:192.0.2.0/120".parse().unwrap(),
        "same network"
    );
}

#[test]
fn ipv6_vip_is_refused() {
    let catalog = Catalog {
        gateways: vec![vip_gateway("gw6", &[], "2001:db8::10")],
        policies: vec![policy("v6", "gw6", &["2001:db8::/32"], &[])],
        nodes: vec![],
    };
    let err = render(&catalog, &Election::default(), &options(19)).unwrap_err();
    assert!(
        err.to_string().contains("IPv6 egress IP 2001:db8::10"),
        "{err}"
    );
}

#[test]
fn output_is_independent_of_input_order() {
    let (catalog, election) = mixed_catalog();
    let opts = RenderOptions {
        include_node_labels: true,
        ..options(19)
    };
    let expected = render(&catalog, &election, &opts).unwrap();
    let mut reversed = catalog.clone();
    reversed.gateways.reverse();
    reversed.policies.reverse();
    reversed.nodes.reverse();
    assert_eq!(render(&reversed, &election, &opts).unwrap(), expected);
    let mut rotated = catalog;
    rotated.nodes.rotate_left(1);
    rotated.policies.rotate_left(1);
    assert_eq!(render(&rotated, &election, &opts).unwrap(), expected);
    assert!(expected.ends_with('\n') && !expected.ends_with("\n\n"));
}

#[test]
fn every_cegp_has_exactly_one_snat_source_and_the_active_for_selector() {
    let (catalog, election) = mixed_catalog();
    let out = render(&catalog, &election, &options(19)).unwrap();
    let policies = cegps(&out);
    assert_eq!(policies.len(), 2);
    for cegp in &policies {
        let gw = &cegp.spec.egress_gateway;
        assert!(gw.interface.is_some() != gw.egress_ip.is_some(), "{gw:?}");
        let source = catalog
            .policies
            .iter()
            .find(|p| p.name == cegp.metadata.name)
            .unwrap();
        assert_eq!(
            gw.node_selector.match_labels,
            Some(labels(&[(&active_for_label(&source.gateway), "")]))
        );
        assert_eq!(
            cegp.metadata
                .labels
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("egressc")
        );
    }
    let vip = policies
        .iter()
        .find(|p| p.metadata.name == "vip-policy")
        .unwrap();
    assert_eq!(
        vip.spec.egress_gateway.egress_ip.as_deref(),
        Some("198.51.100.10")
    );
    assert_eq!(
        vip.spec.excluded_cidrs, None,
        "empty excludedCIDRs are omitted"
    );
    let primary = policies
        .iter()
        .find(|p| p.metadata.name == "my-egressgw-policy")
        .unwrap();
    assert_eq!(
        primary.spec.egress_gateway.interface.as_deref(),
        Some("eth1")
    );
    assert_eq!(
        primary.spec.excluded_cidrs,
        Some(vec!["192.0.2.0/24".to_string()])
    );
    let selector = primary.spec.selectors[0].pod_selector.as_ref().unwrap();
    assert_eq!(
        selector
            .match_labels
            .as_ref()
            .unwrap()
            .get("io.kubernetes.pod.namespace")
            .map(String::as_str),
        Some("my-ns")
    );
}

/// The `openAPIV3Schema` of a CRD fixture as a JSON Schema validator (formats enforced, as the
/// API server does for `ipv4`).
fn crd_validator(file: &str) -> jsonschema::Validator {
    let path = support::repo_root()
        .join("tests/fixtures/cilium")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let crd: Json = serde_saphyr::from_str(&text).unwrap();
    let schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, doc: &Json) {
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\nin {doc:#}");
}

#[test]
fn rendered_cegps_validate_against_cilium_crds() {
    let v17 = crd_validator("ciliumegressgatewaypolicies.v1.17.6.yaml");
    let v19 = crd_validator("ciliumegressgatewaypolicies.v1.19.0.yaml");
    let (catalog, election) = mixed_catalog();
    for (minor, validator) in [(17, &v17), (19, &v19)] {
        let out = render(&catalog, &election, &options(minor)).unwrap();
        let docs: Vec<Json> = documents(&out)
            .into_iter()
            .filter(|d| d["kind"] == cilium::KIND)
            .collect();
        assert_eq!(docs.len(), 2);
        for doc in &docs {
            assert_valid(validator, doc);
        }
    }
    // IPv6 destinations: valid for 1.19 (despite its regex's missing backslashes, plain hex
    // forms match) and rejected by 1.17's IPv4-only pattern, which is why rendering refuses them.
    let catalog6 = Catalog {
        gateways: vec![primary_gateway("gw6", &[], "eth1")],
        policies: vec![policy(
            "v6",
            "gw6",
            &["2001:db8::/32"],
            &["2001:db8:ab::/48"],
        )],
        nodes: vec![],
    };
    let out = render(&catalog6, &Election::default(), &options(19)).unwrap();
    let doc = documents(&out).remove(0);
    assert_valid(&v19, &doc);
    assert!(!v17.is_valid(&doc));
}

#[test]
fn the_cilium_schema_catches_what_rendering_must_avoid() {
    // Guards the test above: the validator does reject an IPv6 egressIP and a missing gateway.
    let v19 = crd_validator("ciliumegressgatewaypolicies.v1.19.0.yaml");
    let mut doc = documents(&render(&mixed_catalog().0, &mixed_catalog().1, &options(19)).unwrap())
        .into_iter()
        .find(|d| d["metadata"]["name"] == "vip-policy")
        .unwrap();
    assert_valid(&v19, &doc);
    doc["spec"]["egressGateway"]["egressIP"] = Json::from("2001:db8::1");
    assert!(!v19.is_valid(&doc));
    doc["spec"].as_object_mut().unwrap().remove("egressGateway");
    assert!(!v19.is_valid(&doc));
}

#[test]
fn a_template_error_names_template_and_line() {
    let broken = "apiVersion: cilium.io/v2\nkind: CiliumEgressGatewayPolicy\nmetadata:\n  name: {{ name | yaml }\n";
    let templates =
        Templates::with_overrides([("cegp.yaml.j2".to_string(), broken.to_string())]).unwrap();
    let err = Renderer::new(&templates).err().expect("syntax error");
    let message = err.to_string();
    assert!(
        message.starts_with("template `cegp.yaml.j2` line 4:"),
        "{message}"
    );

    let undefined = "kind: X\nmetadata:\n  name: {{ nmae | yaml }}\n";
    let templates =
        Templates::with_overrides([("cegp.yaml.j2".to_string(), undefined.to_string())]).unwrap();
    let (catalog, election) = mixed_catalog();
    let err = Renderer::new(&templates)
        .unwrap()
        .render(&catalog, &election, &options(19))
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("template `cegp.yaml.j2` line 3: undefined"),
        "{message}"
    );
}

#[test]
fn values_printed_without_the_filter_are_still_quoted() {
    // An override that forgets `| yaml` must not let a hostile value change the structure.
    let careless = "apiVersion: v1\nkind: Node\nmetadata:\n  name: {{ name }}\n  labels:\n{% for k, v in labels | items %}\n    {{ k }}: {{ v }}\n{% endfor %}\n";
    let templates =
        Templates::with_overrides([("node.yaml.j2".to_string(), careless.to_string())]).unwrap();
    let hostile = "evil: x\n- #{}";
    let catalog = Catalog {
        gateways: vec![primary_gateway("gw", &[("k", "v")], "eth1")],
        policies: vec![],
        nodes: vec![NodeFacts::healthy(hostile, labels(&[("k", "v")]))],
    };
    let election = election(vec![("gw", elected(hostile, &[hostile]))]);
    let opts = RenderOptions {
        include_node_labels: true,
        ..options(19)
    };
    let out = Renderer::new(&templates)
        .unwrap()
        .render(&catalog, &election, &opts)
        .unwrap();
    let docs = documents(&out);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["metadata"]["name"], hostile);
    assert_eq!(docs[0]["metadata"]["labels"][active_for_label("gw")], "");
}
