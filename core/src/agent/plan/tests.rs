//! Planner tests: worked examples, then properties over random node states checked against a
//! small model of the kernel's address table.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

fn link(index: u32, name: &str) -> ObservedLink {
    ObservedLink {
        index,
        name: name.into(),
        mac: Some(MacAddr([2, 0, 0, 0, 0, index as u8])),
    }
}

fn addr(ifindex: u32, cidr: &str, lifetime: Lifetime) -> ObservedAddr {
    let (a, p) = cidr.split_once('/').unwrap_or((cidr, "32"));
    ObservedAddr {
        ifindex,
        ip: ip(a),
        prefix_len: p.parse().unwrap_or(0),
        lifetime,
    }
}

const FINITE: Lifetime = Lifetime::Finite {
    valid_secs: 1,
    preferred_secs: 1,
};

fn want(ip_s: &str, interfaces: &[&str]) -> DesiredVip {
    DesiredVip {
        gateway: "gw".into(),
        ip: ip(ip_s),
        interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
    }
}

fn node() -> Observed {
    Observed {
        links: vec![link(1, "lo"), link(2, "eth0"), link(3, "eth1")],
        addrs: vec![
            addr(1, "127.0.0.1/8", Lifetime::Permanent),
            addr(2, "198.51.100.1/24", Lifetime::Permanent),
            addr(3, "198.51.100.129/25", Lifetime::Permanent),
            addr(3, "2001:db8::1/64", Lifetime::Permanent),
        ],
    }
}

fn on(ifindex: u32, ifname: &str, ip_s: &str) -> VipOnLink {
    VipOnLink {
        ifindex,
        ifname: ifname.into(),
        ip: ip(ip_s),
    }
}

fn adds(plan: &Plan) -> Vec<&VipOnLink> {
    plan.ops
        .iter()
        .filter_map(|op| match op {
            Op::AddOrRefresh { vip, .. } => Some(vip),
            _ => None,
        })
        .collect()
}

#[test]
fn first_existing_listed_interface_wins() {
    let p = plan(
        &[want("198.51.100.100", &["bond0", "eth1", "eth0"])],
        &BTreeSet::new(),
        &node(),
        Lifetimes::default(),
    );
    assert_eq!(adds(&p), vec![&on(3, "eth1", "198.51.100.100")]);
    assert!(p.issues.is_empty());
}

#[test]
fn subnet_fallback_prefers_the_longest_prefix() {
    let observed = node();
    let known = BTreeSet::new();
    let lt = Lifetimes::default();
    // .100 is only in eth0's /24; .200 is in both, and eth1's /25 is more specific.
    let p = plan(&[want("198.51.100.100", &["bond0"])], &known, &observed, lt);
    assert_eq!(adds(&p), vec![&on(2, "eth0", "198.51.100.100")]);
    let p = plan(&[want("198.51.100.200", &[])], &known, &observed, lt);
    assert_eq!(adds(&p), vec![&on(3, "eth1", "198.51.100.200")]);
    let p = plan(&[want("2001:db8::100", &[])], &known, &observed, lt);
    assert_eq!(adds(&p), vec![&on(3, "eth1", "2001:db8::100")]);
}

#[test]
fn no_interface_is_an_issue_not_an_op() {
    let p = plan(
        &[want("203.0.113.7", &["bond0"])],
        &BTreeSet::new(),
        &node(),
        Lifetimes::default(),
    );
    assert!(p.ops.is_empty());
    assert_eq!(
        p.issues,
        vec![PlanIssue::NoInterface {
            gateway: "gw".into(),
            ip: ip("203.0.113.7"),
        }]
    );
}

#[test]
fn new_vip_is_added_then_announced_present_vip_only_refreshed() {
    let lt = Lifetimes::default();
    let held = [want("198.51.100.100", &[])];
    let mut observed = node();
    let p = plan(&held, &BTreeSet::new(), &observed, lt);
    let vip = on(2, "eth0", "198.51.100.100");
    assert_eq!(
        p.ops,
        vec![
            Op::AddOrRefresh {
                vip: vip.clone(),
                lifetimes: lt
            },
            Op::Announce {
                vip: vip.clone(),
                mac: MacAddr([2, 0, 0, 0, 0, 2])
            },
        ]
    );
    observed.addrs.push(addr(2, "198.51.100.100/32", FINITE));
    let p = plan(&held, &BTreeSet::new(), &observed, lt);
    assert_eq!(p.ops, vec![Op::AddOrRefresh { vip, lifetimes: lt }]);
}

#[test]
fn startup_cleanup_removes_our_stale_vips_and_spares_foreign_ones() {
    let mut observed = node();
    observed.addrs.push(addr(2, "198.51.100.100/32", FINITE));
    observed.addrs.push(addr(3, "2001:db8::100/128", FINITE));
    // Same IP as a VIP but permanent: the operator's, not ours.
    observed
        .addrs
        .push(addr(2, "198.51.100.101/32", Lifetime::Permanent));
    // A finite /32 that is no VIP (e.g. another tool's): not ours either.
    observed.addrs.push(addr(2, "198.51.100.55/32", FINITE));
    let known: BTreeSet<IpAddr> = ["198.51.100.100", "198.51.100.101", "2001:db8::100"]
        .into_iter()
        .map(ip)
        .collect();
    let p = plan(&[], &known, &observed, Lifetimes::default());
    assert_eq!(
        p.ops,
        vec![
            Op::Remove(on(2, "eth0", "198.51.100.100")),
            Op::Remove(on(3, "eth1", "2001:db8::100")),
        ]
    );
    assert_eq!(
        p.issues,
        vec![PlanIssue::ForeignAddress {
            ifname: "eth0".into(),
            ip: ip("198.51.100.101"),
            prefix_len: 32,
        }]
    );
}

#[test]
fn held_vip_with_a_foreign_copy_is_left_alone() {
    let mut observed = node();
    observed.addrs.push(addr(3, "198.51.100.100/24", FINITE));
    let p = plan(
        &[want("198.51.100.100", &[])],
        &BTreeSet::new(),
        &observed,
        Lifetimes::default(),
    );
    assert!(p.ops.is_empty());
    assert_eq!(p.issues.len(), 1);
}

#[test]
fn vip_on_the_wrong_link_moves_removal_first() {
    let mut observed = node();
    observed.addrs.push(addr(2, "198.51.100.100/32", FINITE));
    let lt = Lifetimes::default();
    let p = plan(
        &[want("198.51.100.100", &["eth1"])],
        &BTreeSet::new(),
        &observed,
        lt,
    );
    let new = on(3, "eth1", "198.51.100.100");
    assert_eq!(
        p.ops,
        vec![
            Op::Remove(on(2, "eth0", "198.51.100.100")),
            Op::AddOrRefresh {
                vip: new.clone(),
                lifetimes: lt
            },
            Op::Announce {
                vip: new,
                mac: MacAddr([2, 0, 0, 0, 0, 3])
            },
        ]
    );
}

#[test]
fn links_without_mac_get_no_announcement() {
    let mut observed = node();
    observed.links[1].mac = None;
    let p = plan(
        &[want("198.51.100.100", &["eth0"])],
        &BTreeSet::new(),
        &observed,
        Lifetimes::default(),
    );
    assert_eq!(p.ops.len(), 1);
    assert!(matches!(p.ops[0], Op::AddOrRefresh { .. }));
}

// ---- properties ----------------------------------------------------------------------------

/// VIP candidates: some inside the generated subnets, some outside every subnet.
const POOL: [&str; 6] = [
    "198.51.100.100",
    "198.51.100.101",
    "203.0.113.100",
    "192.0.2.200",
    "2001:db8:1::100",
    "2001:db8:9::100",
];
const SUBNETS: [&str; 4] = [
    "198.51.100.1/24",
    "203.0.113.1/24",
    "2001:db8:1::1/64",
    "198.51.100.1/25",
];

fn arb_state() -> impl Strategy<Value = (Vec<DesiredVip>, BTreeSet<IpAddr>, Observed)> {
    let links = prop::collection::vec(any::<bool>(), 1..4);
    let subnets = prop::collection::vec((0..4u32, 0..SUBNETS.len()), 0..5);
    // (pool index, link slot, kind: 0 ours, 1 permanent host, 2 finite non-host)
    let vip_addrs = prop::collection::vec((0..POOL.len(), 0..4u32, 0..6u8), 0..6);
    let known = prop::collection::vec(0..POOL.len(), 0..6);
    let held = prop::collection::vec((0..POOL.len(), prop::collection::vec(0..6u32, 0..3)), 0..4);
    (links, subnets, vip_addrs, known, held).prop_map(|(macs, subnets, vip_addrs, known, held)| {
        let n = macs.len() as u32;
        // Sparse ifindexes, as on real nodes.
        let idx = |slot: u32| (slot % n) * 3 + 2;
        let links = macs
            .iter()
            .enumerate()
            .map(|(i, has_mac)| {
                let mut l = link(i as u32 * 3 + 2, &format!("eth{i}"));
                if !has_mac {
                    l.mac = None;
                }
                l
            })
            .collect();
        let mut table: BTreeMap<(u32, IpAddr, u8), Lifetime> = BTreeMap::new();
        for (slot, s) in subnets {
            let a = addr(idx(slot), SUBNETS[s], Lifetime::Permanent);
            table.insert((a.ifindex, a.ip, a.prefix_len), a.lifetime);
        }
        for (p, slot, kind) in vip_addrs {
            let vip = ip(POOL[p]);
            let (prefix, lifetime) = match kind {
                1 => (host_prefix_len(vip), Lifetime::Permanent),
                2 => (host_prefix_len(vip) - 8, FINITE),
                _ => (host_prefix_len(vip), FINITE),
            };
            table.insert((idx(slot), vip, prefix), lifetime);
        }
        let addrs = table
            .into_iter()
            .map(|((ifindex, ip, prefix_len), lifetime)| ObservedAddr {
                ifindex,
                ip,
                prefix_len,
                lifetime,
            })
            .collect();
        let known = known.into_iter().map(|p| ip(POOL[p])).collect();
        let held = held
            .into_iter()
            .map(|(p, ifs)| DesiredVip {
                gateway: format!("gw{p}"),
                ip: ip(POOL[p]),
                interfaces: ifs.into_iter().map(|i| format!("eth{i}")).collect(),
            })
            .collect();
        (held, known, Observed { links, addrs })
    })
}

/// The kernel's address table as the executor leaves it after `ops`.
fn apply(observed: &Observed, ops: &[Op]) -> Observed {
    let mut out = observed.clone();
    for op in ops {
        match op {
            Op::Remove(v) => out.addrs.retain(|a| {
                !(a.ifindex == v.ifindex && a.ip == v.ip && a.prefix_len == v.prefix_len())
            }),
            Op::AddOrRefresh { vip, lifetimes } => {
                let lifetime = Lifetime::Finite {
                    valid_secs: lifetimes.valid_secs,
                    preferred_secs: lifetimes.preferred_secs,
                };
                out.addrs.retain(|a| {
                    !(a.ifindex == vip.ifindex
                        && a.ip == vip.ip
                        && a.prefix_len == vip.prefix_len())
                });
                out.addrs.push(ObservedAddr {
                    ifindex: vip.ifindex,
                    ip: vip.ip,
                    prefix_len: vip.prefix_len(),
                    lifetime,
                });
            }
            Op::Announce { .. } => {}
        }
    }
    out
}

fn rank(op: &Op) -> u8 {
    match op {
        Op::Remove(_) => 0,
        Op::AddOrRefresh { .. } => 1,
        Op::Announce { .. } => 2,
    }
}

proptest! {
    #[test]
    fn plan_converges_safely((held, known, observed) in arb_state()) {
        let lt = Lifetimes::default();
        let p = plan(&held, &known, &observed, lt);
        let vips: BTreeSet<IpAddr> = known.iter().copied().chain(held.iter().map(|h| h.ip)).collect();

        // Removals, then adds, then announcements.
        prop_assert!(p.ops.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])));

        // Only our own addresses are ever removed.
        for op in &p.ops {
            if let Op::Remove(v) = op {
                prop_assert!(observed.addrs.iter().any(|a| a.ifindex == v.ifindex && a.ip == v.ip && is_ours(a, &vips)));
            }
        }

        // A VIP goes on at most one link.
        let added: Vec<IpAddr> = adds(&p).iter().map(|v| v.ip).collect();
        let unique: BTreeSet<IpAddr> = added.iter().copied().collect();
        prop_assert_eq!(added.len(), unique.len());

        // Announce exactly what is newly added on a link with a MAC.
        for op in &p.ops {
            if let Op::Announce { vip, mac } = op {
                prop_assert!(added.contains(&vip.ip));
                prop_assert!(!observed.addrs.iter().any(|a| a.ifindex == vip.ifindex && a.ip == vip.ip && is_ours(a, &vips)));
                let l = observed.links.iter().find(|l| l.index == vip.ifindex);
                prop_assert_eq!(l.and_then(|l| l.mac), Some(*mac));
            }
        }

        let after = apply(&observed, &p.ops);

        // Foreign addresses are untouched.
        for a in observed.addrs.iter().filter(|a| !is_ours(a, &vips)) {
            prop_assert!(after.addrs.contains(a));
        }

        // Afterwards our addresses are exactly the planned VIPs, each once, and every held VIP
        // is either carried or explained by an issue.
        let ours_after: BTreeSet<(u32, IpAddr)> = after.addrs.iter().filter(|a| is_ours(a, &vips)).map(|a| (a.ifindex, a.ip)).collect();
        let planned: BTreeSet<(u32, IpAddr)> = adds(&p).iter().map(|v| (v.ifindex, v.ip)).collect();
        prop_assert_eq!(&ours_after, &planned);
        for h in &held {
            let carried = unique.contains(&h.ip);
            let explained = p.issues.iter().any(|i| match i {
                PlanIssue::NoInterface { ip, .. } | PlanIssue::ForeignAddress { ip, .. } => *ip == h.ip,
            });
            prop_assert!(carried != explained, "{} carried={} explained={}", h.ip, carried, explained);
        }

        // Idempotent: the next round only refreshes the same addresses.
        let again = plan(&held, &known, &after, lt);
        let only_refreshes = again.ops.iter().all(|op| matches!(op, Op::AddOrRefresh { .. }));
        prop_assert!(only_refreshes);
        let again_planned: BTreeSet<(u32, IpAddr)> = adds(&again).iter().map(|v| (v.ifindex, v.ip)).collect();
        prop_assert_eq!(again_planned, planned);
    }
}
