//! The synthetic cluster behind the benchmarks, shared by `dev/gen` (writes it to files)
//! and `benches/compile.rs` (uses it in memory): EgressGateways over node groups,
//! EgressGatewayPolicies, and a node inventory shaped like `kubectl get nodes -o yaml`.
//!
//! Deterministic: the same [`Settings`] always give the same bytes (a seeded SplitMix64 is the
//! only source of variation).
//!
//! Shape of the data:
//! - node `i` is in group `i % groups` (label `bench.example.com/egress-group: group-K`); a
//!   share `unhealthy` of nodes is NotReady or cordoned (half each);
//! - gateway `g` selects group `g % groups`; a share `vip` is `VirtualIPAddress` (IPv4 VIPs
//!   from the documentation ranges, then from 100.64.0.0/10 once those run out), the rest
//!   `PrimaryIPFromEgressGatewayNodeInterface`; about half the gateways already have an
//!   `active-for-…` label on one node of their group, as in a running cluster;
//! - each policy routes 1–3 destinations (a share `ipv6` of them IPv6, for policies of
//!   PrimaryIP gateways only: an IPv4 VIP cannot carry IPv6) with an exclusion now and then,
//!   through 1–2 pod selectors. IPv6 destinations need `--cilium-version 1.19`.

use std::fmt::Write as _;

const GROUP_LABEL: &str = "bench.example.com/egress-group";
const ACTIVE_FOR_PREFIX: &str = "egress-gateway.network.deckhouse.io/active-for-";
const NAMESPACES: u64 = 200;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Settings {
    pub gateways: usize,
    pub groups: usize,
    pub policies: usize,
    pub nodes: usize,
    /// Share of nodes that are NotReady or cordoned.
    pub unhealthy: f64,
    /// Share of destinations (of PrimaryIP-gateway policies) that are IPv6.
    pub ipv6: f64,
    /// Share of gateways in `VirtualIPAddress` mode.
    pub vip: f64,
    pub seed: u64,
}

impl Default for Settings {
    /// The benchmark's reference size.
    fn default() -> Self {
        Settings {
            gateways: 1_000,
            groups: 50,
            policies: 10_000,
            nodes: 5_000,
            unhealthy: 0.05,
            ipv6: 0.2,
            vip: 0.5,
            seed: 1,
        }
    }
}

/// The generated YAML texts and a few counts about them.
pub struct Cluster {
    pub gateways_yaml: String,
    pub policies_yaml: String,
    pub nodes_yaml: String,
    pub vip_gateways: usize,
    pub unhealthy_nodes: usize,
}

/// Generates the cluster described by `settings`. `groups` must be at least 1, and there must
/// be a gateway if there are policies (the caller checks).
pub fn generate(settings: &Settings) -> Cluster {
    let mut rng = SplitMix64(settings.seed);
    let gateways = gateways(settings, &mut rng);
    let nodes = nodes(settings, &gateways, &mut rng);
    let policies = policies(settings, &gateways, &mut rng);
    Cluster {
        gateways_yaml: gateways_yaml(&gateways),
        policies_yaml: policies_yaml(&policies),
        nodes_yaml: nodes_yaml(&nodes),
        vip_gateways: gateways.iter().filter(|g| g.vip.is_some()).count(),
        unhealthy_nodes: nodes.iter().filter(|n| !n.ready || n.cordoned).count(),
    }
}

/// A small, seedable, well-mixed generator (SplitMix64): enough for synthetic data and keeps
/// the example free of extra dependencies.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        // 53 random bits → [0, 1).
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

struct GatewaySpec {
    name: String,
    group: usize,
    /// `Some(ip)` in VIP mode, else PrimaryIP on `interface`.
    vip: Option<String>,
    interface: &'static str,
}

struct NodeSpec {
    name: String,
    group: usize,
    ready: bool,
    cordoned: bool,
    /// Gateways this node already carries (`active-for-…` labels).
    active_for: Vec<String>,
    zone: u64,
}

struct PolicySpec {
    name: String,
    gateway: String,
    namespaces: Vec<(u64, Option<u64>)>,
    destinations: Vec<String>,
    excluded: Option<String>,
}

fn gateways(settings: &Settings, rng: &mut SplitMix64) -> Vec<GatewaySpec> {
    let mut vips = 0u32;
    (0..settings.gateways)
        .map(|g| {
            let vip = rng.chance(settings.vip).then(|| {
                vips += 1;
                vip_address(vips - 1)
            });
            GatewaySpec {
                name: format!("gw-{g:05}"),
                group: g % settings.groups,
                vip,
                interface: ["eth1", "bond0", "ens5"][rng.below(3) as usize],
            }
        })
        .collect()
}

/// The `n`th unique VIP: the three IPv4 documentation ranges first, then shared address space.
fn vip_address(n: u32) -> String {
    const DOC_RANGES: [[u8; 3]; 3] = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];
    match DOC_RANGES.get((n / 256) as usize) {
        Some([a, b, c]) => format!("{a}.{b}.{c}.{}", n % 256),
        None => {
            let k = n - 768 + 1;
            format!("100.{}.{}.{}", 64 + (k >> 16) % 64, (k >> 8) & 255, k & 255)
        }
    }
}

fn nodes(settings: &Settings, gateways: &[GatewaySpec], rng: &mut SplitMix64) -> Vec<NodeSpec> {
    let mut nodes: Vec<NodeSpec> = (0..settings.nodes)
        .map(|i| {
            let unhealthy = rng.chance(settings.unhealthy);
            let cordoned = unhealthy && rng.chance(0.5);
            NodeSpec {
                name: format!("node-{i:05}"),
                group: i % settings.groups,
                ready: !unhealthy || cordoned,
                cordoned,
                active_for: Vec::new(),
                zone: rng.below(3),
            }
        })
        .collect();
    // Half the gateways were elected before: their label sits on some node of their group
    // (possibly one that has failed since, as after an outage).
    let per_group = settings.nodes.div_ceil(settings.groups).max(1) as u64;
    for gateway in gateways {
        if nodes.is_empty() || !rng.chance(0.5) {
            continue;
        }
        let k = rng.below(per_group) as usize;
        let index = gateway.group + k * settings.groups;
        if let Some(node) = nodes.get_mut(index) {
            node.active_for.push(gateway.name.clone());
        }
    }
    nodes
}

fn policies(
    settings: &Settings,
    gateways: &[GatewaySpec],
    rng: &mut SplitMix64,
) -> Vec<PolicySpec> {
    (0..settings.policies)
        .map(|p| {
            let gateway = &gateways[rng.below(gateways.len() as u64) as usize];
            let ipv6_allowed = gateway.vip.is_none();
            let destinations: Vec<String> = (0..1 + rng.below(3))
                .map(|_| {
                    if ipv6_allowed && rng.chance(settings.ipv6) {
                        format!("2001:db8:{:x}::/48", rng.below(0x10000))
                    } else {
                        let base = ["192.0.2", "198.51.100", "203.0.113"][rng.below(3) as usize];
                        let block = rng.below(16) * 16;
                        format!("{base}.{block}/28")
                    }
                })
                .collect();
            // Exclude one host of the first destination now and then.
            let excluded = rng
                .chance(0.25)
                .then(|| match destinations[0].split_once('/') {
                    Some((net, "48")) => format!("{}1/128", net),
                    Some((net, _)) => {
                        let (prefix, last) = net.rsplit_once('.').unwrap_or((net, "0"));
                        let host: u64 = last.parse().unwrap_or(0) + 1;
                        format!("{prefix}.{host}/32")
                    }
                    None => destinations[0].clone(),
                });
            let namespaces = (0..1 + rng.below(2))
                .map(|_| {
                    let namespace = rng.below(NAMESPACES);
                    let app = rng.chance(0.5).then(|| rng.below(50));
                    (namespace, app)
                })
                .collect();
            PolicySpec {
                name: format!("team-{:03}-egress-{p:05}", p % 300),
                gateway: gateway.name.clone(),
                namespaces,
                destinations,
                excluded,
            }
        })
        .collect()
}

fn gateways_yaml(gateways: &[GatewaySpec]) -> String {
    let mut out = String::with_capacity(gateways.len() * 400);
    for gateway in gateways {
        let _ = write!(
            out,
            "---\napiVersion: network.deckhouse.io/v1alpha1\nkind: EgressGateway\nmetadata:\n  \
             name: {}\nspec:\n  nodeSelector:\n    {GROUP_LABEL}: group-{}\n  sourceIP:\n",
            gateway.name, gateway.group
        );
        match &gateway.vip {
            Some(ip) => {
                let _ = write!(
                    out,
                    "    mode: VirtualIPAddress\n    virtualIPAddress:\n      ip: {ip}\n      \
                     interfaces: [{}]\n",
                    gateway.interface
                );
            }
            None => {
                let _ = write!(
                    out,
                    "    mode: PrimaryIPFromEgressGatewayNodeInterface\n    \
                     primaryIPFromEgressGatewayNodeInterface:\n      interfaceName: {}\n",
                    gateway.interface
                );
            }
        }
    }
    out
}

fn policies_yaml(policies: &[PolicySpec]) -> String {
    let mut out = String::with_capacity(policies.len() * 500);
    for policy in policies {
        let _ = write!(
            out,
            "---\napiVersion: network.deckhouse.io/v1alpha1\nkind: EgressGatewayPolicy\n\
             metadata:\n  name: {}\nspec:\n  egressGatewayName: {}\n  destinationCIDRs:\n",
            policy.name, policy.gateway
        );
        for destination in &policy.destinations {
            let _ = writeln!(out, "  - {destination}");
        }
        if let Some(excluded) = &policy.excluded {
            let _ = writeln!(out, "  excludedCIDRs:\n  - {excluded}");
        }
        out.push_str("  selectors:\n");
        for (namespace, app) in &policy.namespaces {
            let _ = writeln!(
                out,
                "  - podSelector:\n      matchLabels:\n        io.kubernetes.pod.namespace: ns-{namespace:03}"
            );
            if let Some(app) = app {
                let _ = writeln!(
                    out,
                    "      matchExpressions:\n      - key: app.kubernetes.io/name\n        \
                     operator: In\n        values: [app-{app}, app-{app}-worker]"
                );
            }
        }
    }
    out
}

/// A `v1 List` of Nodes trimmed the way `kubectl get nodes -o yaml` prints them (without the
/// image list and managed fields, which egressc ignores and which would only add parse time).
fn nodes_yaml(nodes: &[NodeSpec]) -> String {
    let mut out = String::with_capacity(nodes.len() * 2_000 + 100);
    out.push_str("apiVersion: v1\nkind: List\nitems:\n");
    for (i, node) in nodes.iter().enumerate() {
        let _ = write!(
            out,
            "- apiVersion: v1\n  kind: Node\n  metadata:\n    annotations:\n      \
             node.alpha.kubernetes.io/ttl: \"0\"\n      \
             volumes.kubernetes.io/controller-managed-attach-detach: \"true\"\n    \
             creationTimestamp: \"2025-01-{:02}T10:00:00Z\"\n    labels:\n      \
             beta.kubernetes.io/arch: amd64\n      beta.kubernetes.io/os: linux\n      \
             {GROUP_LABEL}: group-{}\n      kubernetes.io/arch: amd64\n      \
             kubernetes.io/hostname: {}\n      kubernetes.io/os: linux\n      \
             node.kubernetes.io/instance-type: m5.large\n      \
             topology.kubernetes.io/zone: zone-{}\n",
            1 + i % 28,
            node.group,
            node.name,
            node.zone
        );
        for gateway in &node.active_for {
            let _ = writeln!(out, "      {ACTIVE_FOR_PREFIX}{gateway}: \"\"");
        }
        let _ = write!(
            out,
            "    name: {}\n    resourceVersion: \"{}\"\n    \
             uid: 00000000-0000-4000-8000-{:012x}\n  spec:\n    podCIDR: 10.{}.{}.0/24\n    \
             providerID: bench:///{}\n",
            node.name,
            100_000 + i,
            i,
            (i >> 8) & 255,
            i & 255,
            node.name
        );
        if node.cordoned {
            out.push_str(
                "    taints:\n    - effect: NoSchedule\n      \
                 key: node.kubernetes.io/unschedulable\n      \
                 timeAdded: \"2025-02-01T00:00:00Z\"\n    unschedulable: true\n",
            );
        }
        let ready = if node.ready { "True" } else { "False" };
        let _ = write!(
            out,
            "  status:\n    addresses:\n    - address: 10.{}.{}.10\n      type: InternalIP\n    \
             - address: {}\n      type: Hostname\n    allocatable:\n      cpu: 1930m\n      \
             memory: 7Gi\n      pods: \"110\"\n    capacity:\n      cpu: \"2\"\n      \
             memory: 8Gi\n      pods: \"110\"\n    conditions:\n",
            (i >> 8) & 255,
            i & 255,
            node.name
        );
        for (kind, status, reason) in [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID"),
            (
                "Ready",
                ready,
                if node.ready {
                    "KubeletReady"
                } else {
                    "NodeStatusUnknown"
                },
            ),
        ] {
            let _ = write!(
                out,
                "    - lastHeartbeatTime: \"2025-03-01T12:00:00Z\"\n      \
                 lastTransitionTime: \"2025-02-01T00:00:00Z\"\n      message: {kind} {status}\n      \
                 reason: {reason}\n      status: \"{status}\"\n      type: {kind}\n"
            );
        }
        out.push_str(
            "    daemonEndpoints:\n      kubeletEndpoint:\n        Port: 10250\n    nodeInfo:\n      \
             architecture: amd64\n      containerRuntimeVersion: containerd://1.7.27\n      \
             kernelVersion: 6.8.0-1024-aws\n      kubeProxyVersion: \"\"\n      \
             kubeletVersion: v1.33.1\n      operatingSystem: linux\n      \
             osImage: Ubuntu 24.04.2 LTS\n",
        );
    }
    out.push_str("metadata:\n  resourceVersion: \"\"\n");
    out
}
