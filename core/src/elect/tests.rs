//! Example-based election tests: the scenarios the rules exist for.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use super::{ElectionReason, Elector, elect};
use crate::model::catalog::{Gateway, NodeFacts, SourceIp};
use crate::model::labels::active_for_label;

fn gw(name: &str, group: &str) -> Gateway {
    Gateway {
        name: name.to_owned(),
        node_selector: BTreeMap::from([("group".to_owned(), group.to_owned())]),
        source: SourceIp::PrimaryInterface {
            interface: "eth0".to_owned(),
        },
    }
}

fn vip_gw(name: &str, group: &str) -> Gateway {
    Gateway {
        source: SourceIp::VirtualIp {
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            interfaces: vec![],
        },
        ..gw(name, group)
    }
}

fn node(name: &str, group: &str) -> NodeFacts {
    NodeFacts::healthy(
        name,
        BTreeMap::from([("group".to_owned(), group.to_owned())]),
    )
}

fn holding(mut node: NodeFacts, gateway: &str) -> NodeFacts {
    node.labels.insert(active_for_label(gateway), String::new());
    node
}

fn active(election: &super::Election, gateway: &str) -> Option<String> {
    election.gateways[gateway].active.clone()
}

#[test]
fn two_gateways_on_two_nodes_use_both() {
    let election = elect(
        &[gw("a", "g"), gw("b", "g")],
        &[node("n1", "g"), node("n2", "g")],
    );
    let (a, b) = (
        active(&election, "a").unwrap(),
        active(&election, "b").unwrap(),
    );
    assert_ne!(a, b);
    assert_eq!(election.gateways["a"].reason, ElectionReason::Elected);
    assert_eq!(*election.gateways["a"].ready_nodes, ["n1", "n2"]);
}

#[test]
fn a_recovered_node_does_not_take_its_role_back() {
    let gateways = [gw("a", "g")];
    let mut elector = Elector::new(&gateways, &[holding(node("n1", "g"), "a"), node("n2", "g")]);
    assert_eq!(active(elector.election(), "a").as_deref(), Some("n1"));
    let mut down = holding(node("n1", "g"), "a");
    down.ready = false;
    assert_eq!(elector.apply_node(down), ["a"]);
    assert_eq!(active(elector.election(), "a").as_deref(), Some("n2"));
    assert_eq!(*elector.election().gateways["a"].ready_nodes, ["n2"]);
    // n1 comes back: the result changes (ready_nodes) but the active node stays.
    assert_eq!(elector.apply_node(node("n1", "g")), ["a"]);
    assert_eq!(active(elector.election(), "a").as_deref(), Some("n2"));
}

#[test]
fn settled_nodes_are_preferred_but_unsettled_ones_beat_dropping_traffic() {
    let mut fresh = node("n1", "g");
    fresh.settled = false;
    let both = elect(
        &[gw("a", "g"), gw("b", "g")],
        &[fresh.clone(), node("n2", "g")],
    );
    assert_eq!(active(&both, "a").as_deref(), Some("n2"));
    assert_eq!(active(&both, "b").as_deref(), Some("n2"));
    let only_fresh = elect(&[gw("a", "g")], &[fresh.clone()]);
    assert_eq!(active(&only_fresh, "a").as_deref(), Some("n1"));
    // An unsettled holder is kept (sticky).
    let kept = elect(&[gw("a", "g")], &[holding(fresh, "a"), node("n2", "g")]);
    assert_eq!(active(&kept, "a").as_deref(), Some("n1"));
    assert_eq!(kept.gateways["a"].reason, ElectionReason::Kept);
}

#[test]
fn of_several_label_holders_an_eligible_one_is_kept() {
    let mut dead = holding(node("n1", "g"), "a");
    dead.ready = false;
    let election = elect(
        &[gw("a", "g")],
        &[dead, holding(node("n2", "g"), "a"), node("n3", "g")],
    );
    assert_eq!(active(&election, "a").as_deref(), Some("n2"));
    assert_eq!(election.gateways["a"].reason, ElectionReason::Kept);
}

#[test]
fn vip_agent_readiness_counts_only_for_vip_gateways() {
    let mut no_agent = node("n1", "g");
    no_agent.vip_agent_ready = Some(false);
    let election = elect(&[gw("plain", "g"), vip_gw("vip", "g")], &[no_agent]);
    assert_eq!(active(&election, "plain").as_deref(), Some("n1"));
    assert_eq!(active(&election, "vip"), None);
    assert_eq!(
        election.gateways["vip"].reason,
        ElectionReason::NoEligibleNode
    );
}

#[test]
fn a_gateway_without_nodes_says_why() {
    let election = elect(&[gw("a", "nowhere")], &[node("n1", "g")]);
    assert_eq!(
        election.gateways["a"].reason,
        ElectionReason::NoMatchingNode
    );
    assert_eq!(election.gateways["a"].reason.as_str(), "NoMatchingNode");
}

#[test]
fn gateway_updates_keep_the_active_node_and_deletes_free_it() {
    let mut elector = Elector::new(&[gw("a", "g")], &[node("n1", "g"), node("n2", "g")]);
    let first = active(elector.election(), "a");
    // Switching to VIP mode keeps the node (it is still eligible): no change at all.
    assert!(!elector.apply_gateway(vip_gw("a", "g")));
    assert_eq!(active(elector.election(), "a"), first);
    // Deleting a frees its node: the two new gateways then spread over both nodes.
    assert!(elector.delete_gateway("a"));
    assert!(elector.apply_gateway(gw("b", "g")));
    assert!(elector.apply_gateway(gw("c", "g")));
    assert_ne!(
        active(elector.election(), "b"),
        active(elector.election(), "c")
    );
}

#[test]
fn a_failover_spreads_the_failed_nodes_gateways() {
    let gateways: Vec<Gateway> = (0..4).map(|i| gw(&format!("gw{i}"), "g")).collect();
    let nodes: Vec<NodeFacts> = (1..=3).map(|i| node(&format!("n{i}"), "g")).collect();
    let mut elector = Elector::new(&gateways, &nodes);
    let victim = active(elector.election(), "gw0").unwrap();
    let held: Vec<String> = elector
        .election()
        .gateways
        .iter()
        .filter(|(_, r)| r.active.as_deref() == Some(victim.as_str()))
        .map(|(g, _)| g.clone())
        .collect();
    let mut down = node(&victim, "g");
    down.unschedulable = true;
    let changed = elector.apply_node(down);
    assert_eq!(changed.len(), 4, "every gateway's ready_nodes changed");
    for g in &held {
        assert_ne!(
            active(elector.election(), g).as_deref(),
            Some(victim.as_str())
        );
    }
    let mut counts = BTreeMap::<String, usize>::new();
    for r in elector.election().gateways.values() {
        *counts.entry(r.active.clone().unwrap()).or_default() += 1;
    }
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), [2, 2]);
}
