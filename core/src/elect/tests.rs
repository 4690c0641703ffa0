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
fn adding_an_unrelated_gateway_moves_no_other() {
    // The review's case: nodes n1–n3 without labels (the first GitOps commit), gateways
    // `alpha` and `beta`; adding `aa` used to move `alpha` (balancing counted `aa`'s pick).
    let nodes: Vec<NodeFacts> = (1..=3).map(|i| node(&format!("n{i}"), "g")).collect();
    let before = elect(&[gw("alpha", "g"), gw("beta", "g")], &nodes);
    let after = elect(&[gw("aa", "g"), gw("alpha", "g"), gw("beta", "g")], &nodes);
    for name in ["alpha", "beta"] {
        assert_eq!(active(&before, name), active(&after, name), "{name} moved");
        // Each is what it would be alone.
        assert_eq!(
            active(&elect(&[gw(name, "g")], &nodes), name),
            active(&after, name)
        );
    }
    assert_eq!(before.gateways["alpha"].reason, ElectionReason::Elected);
    assert_eq!(*before.gateways["alpha"].ready_nodes, ["n1", "n2", "n3"]);
}

#[test]
fn gateways_sharing_a_group_spread_over_it() {
    // 1,000 gateways on 10 nodes: rendezvous hashing gives each node about 100. The bound is
    // loose (a binomial(1000, 0.1) stays within ±40 of 100 except with negligible odds), but
    // a hash that ignored the node or the gateway would put everything on one node.
    let gateways: Vec<Gateway> = (0..1000).map(|i| gw(&format!("gw-{i}"), "g")).collect();
    let nodes: Vec<NodeFacts> = (0..10).map(|i| node(&format!("n{i}"), "g")).collect();
    let election = elect(&gateways, &nodes);
    let mut counts = BTreeMap::<String, usize>::new();
    for result in election.gateways.values() {
        *counts.entry(result.active.clone().unwrap()).or_default() += 1;
    }
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert!(
        counts.values().all(|&c| (60..=140).contains(&c)),
        "{counts:?}"
    );
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
    // Gateways added later each take their own rendezvous choice, whatever `a` held.
    assert!(elector.delete_gateway("a"));
    assert!(elector.apply_gateway(gw("b", "g")));
    assert!(elector.apply_gateway(gw("c", "g")));
    let nodes = [node("n1", "g"), node("n2", "g")];
    for name in ["b", "c"] {
        assert_eq!(
            active(elector.election(), name),
            active(&elect(&[gw(name, "g")], &nodes), name)
        );
    }
}

#[test]
fn a_failover_moves_each_gateway_to_its_own_next_choice() {
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
    // Each moved gateway lands where it would alone on the surviving nodes: the failed node's
    // gateways scatter by their own rendezvous order rather than by what the others chose.
    let survivors: Vec<NodeFacts> = (1..=3)
        .map(|i| format!("n{i}"))
        .filter(|n| *n != victim)
        .map(|n| node(&n, "g"))
        .collect();
    for g in &held {
        let alone = elect(&[gw(g, "g")], &survivors);
        assert_eq!(active(elector.election(), g), active(&alone, g), "{g}");
    }
}
