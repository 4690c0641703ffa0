//! A Cilium egress-gateway datapath stand-in for the data-plane lab (docs/arch/datapath-lab.md).
//!
//! One "cilium-agent" per node namespace reads the CiliumEgressGatewayPolicies and CiliumNodes
//! from kube-testserver (a shared 20 ms poller fans every change out to the agents, as each
//! agent's own informer would deliver it) and programs its node with `nft` and `ip`, following
//! the rules Cilium documents:
//! - the gateway of a policy is the first CiliumNode, by name, whose labels match
//!   `egressGateway.nodeSelector`; none matching → the pod's traffic to the destinations is
//!   dropped on every node;
//! - on the gateway node, traffic is SNATed to `egressIP`, or to the first IPv4 of `interface`;
//!   when that address is not on the node at the moment the gateway configuration is
//!   (re)generated, the traffic is dropped there — and it is *not* picked up when the address
//!   appears later (cilium#47761): only the next CEGP or CiliumNode event regenerates;
//! - every other node forwards the pod's traffic to the gateway's InternalIP (the tunnel of a
//!   real cluster is plain routing over the node network here).
//!
//! The agent also serves Cilium's cluster-health endpoint (`:4240/hello`) on its node's
//! InternalIP. Killing an agent stops the endpoint and freezes the node's programming at its
//! last state (Cilium's BPF programs and maps outlive the agent process).
//!
//! The decision (`plan`) and the rendering (`ruleset`) are pure; the shells poll, read
//! addresses and run `nft`.

use std::collections::BTreeMap;
use std::io;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::Ipv4Net;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;
use tokio::sync::watch;

use super::netns::enter;

/// Cilium's cluster-health port.
pub const HEALTH_PORT: u16 = 4240;
/// How often the shared poller lists CEGPs and CiliumNodes.
const POLL: Duration = Duration::from_millis(20);
/// nftables table the stand-in owns in every node namespace.
const TABLE: &str = "cilium_egw_lab";
/// First fwmark / routing table of "forward to gateway k" (one per gateway candidate).
pub const MARK_BASE: u32 = 0x6c00;

/// A node the stand-in runs on.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Kubernetes node name (and CiliumNode name).
    pub name: String,
    /// Its network namespace.
    pub ns: String,
    /// Its InternalIP (node network).
    pub internal_ip: Ipv4Addr,
}

/// A pod, as Cilium's endpoint manager knows it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    /// Pod labels plus `io.kubernetes.pod.namespace`.
    pub labels: BTreeMap<String, String>,
    pub namespace_labels: BTreeMap<String, String>,
}

/// One CEGP as the stand-in reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub name: String,
    /// `(podSelector, namespaceSelector)` pairs.
    pub selectors: Vec<(Option<LabelSelector>, Option<LabelSelector>)>,
    pub destinations: Vec<Ipv4Net>,
    pub excluded: Vec<Ipv4Net>,
    pub node_selector: LabelSelector,
    pub egress_ip: Option<Ipv4Addr>,
    pub interface: Option<String>,
}

/// One CiliumNode as the stand-in reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct CiliumNode {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub internal_ip: Option<Ipv4Addr>,
}

/// What the API said at one poll; `generation` counts events (any change of any object).
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    pub generation: u64,
    pub policies: Vec<Policy>,
    /// Sorted by name.
    pub nodes: Vec<CiliumNode>,
}

/// What one node does with one (pod, destination) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// This node is the gateway: SNAT to the address.
    Snat(Ipv4Addr),
    /// Forward to the gateway node with this InternalIP.
    Forward(Ipv4Addr),
    /// No gateway, or this node is the gateway without its egress IP.
    Drop,
}

/// One programmed policy entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub source: Ipv4Addr,
    pub destination: Ipv4Net,
    pub excluded: Vec<Ipv4Net>,
    pub action: Action,
}

/// Does `selector` select `labels`? (matchLabels and the four matchExpressions operators.)
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            // An operator Cilium would reject selects nothing.
            _ => false,
        }
    });
    by_labels && by_expressions
}

fn selects_endpoint(policy: &Policy, endpoint: &Endpoint) -> bool {
    policy.selectors.iter().any(|(pods, namespaces)| {
        pods.as_ref().is_none_or(|s| selects(s, &endpoint.labels))
            && namespaces
                .as_ref()
                .is_none_or(|s| selects(s, &endpoint.namespace_labels))
    })
}

/// The gateway of `policy`: the first CiliumNode by name matching its node selector.
pub fn gateway_of<'a>(policy: &Policy, nodes: &'a [CiliumNode]) -> Option<&'a CiliumNode> {
    let mut sorted: Vec<&CiliumNode> = nodes.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    sorted
        .into_iter()
        .find(|n| selects(&policy.node_selector, &n.labels))
}

/// The egress IP `node` would use for `policy` given its addresses now: `egressIP` when it is
/// on some interface, else the first IPv4 of `interface`; `None` = not found.
pub fn egress_ip(policy: &Policy, local: &[(String, Ipv4Addr)]) -> Option<Ipv4Addr> {
    match (&policy.egress_ip, &policy.interface) {
        (Some(ip), _) => local.iter().any(|(_, a)| a == ip).then_some(*ip),
        (None, Some(interface)) => local
            .iter()
            .find(|(name, _)| name == interface)
            .map(|(_, a)| *a),
        (None, None) => None,
    }
}

/// Node `me`'s entries for `view`, with its IPv4 addresses (in kernel order) read now.
pub fn plan(
    me: &str,
    view: &ClusterView,
    endpoints: &[Endpoint],
    local: &[(String, Ipv4Addr)],
) -> Vec<Entry> {
    let mut entries = Vec::new();
    for policy in &view.policies {
        let gateway = gateway_of(policy, &view.nodes);
        let action = match gateway {
            None => Action::Drop,
            Some(g) if g.name == me => match egress_ip(policy, local) {
                Some(ip) => Action::Snat(ip),
                None => Action::Drop,
            },
            Some(g) => match g.internal_ip {
                Some(ip) => Action::Forward(ip),
                None => Action::Drop,
            },
        };
        for endpoint in endpoints.iter().filter(|e| selects_endpoint(policy, e)) {
            for destination in &policy.destinations {
                entries.push(Entry {
                    source: endpoint.ip,
                    destination: *destination,
                    excluded: policy.excluded.clone(),
                    action: action.clone(),
                });
            }
        }
    }
    entries
}

/// The node's whole nftables program for `entries` (one atomic `nft -f` transaction).
/// `gateways` lists the InternalIPs that have a "forward to" mark (MARK_BASE + index).
pub fn ruleset(entries: &[Entry], gateways: &[Ipv4Addr]) -> String {
    let mut pre = String::new();
    let mut post = String::new();
    for e in entries {
        let pair = format!("ip saddr {} ip daddr", e.source);
        for x in &e.excluded {
            pre.push_str(&format!("    {pair} {x} return\n"));
            post.push_str(&format!("    {pair} {x} return\n"));
        }
        match &e.action {
            Action::Drop => pre.push_str(&format!("    {pair} {} drop\n", e.destination)),
            // Relayed traffic is not tracked: a conntrack entry without NAT would otherwise
            // pin "no SNAT" on this flow if the node later becomes the gateway (Cilium's SNAT
            // decision is per packet).
            Action::Forward(gw) => match gateways.iter().position(|g| g == gw) {
                Some(k) => pre.push_str(&format!(
                    "    {pair} {} meta mark set {:#x} notrack\n",
                    e.destination,
                    MARK_BASE + k as u32
                )),
                None => pre.push_str(&format!("    {pair} {} drop\n", e.destination)),
            },
            Action::Snat(ip) => {
                post.push_str(&format!("    {pair} {} snat ip to {ip}\n", e.destination))
            }
        }
    }
    format!(
        "table ip {TABLE} {{}}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n  \
         chain pre {{\n    type filter hook prerouting priority raw; policy accept;\n{pre}  }}\n  \
         chain post {{\n    type nat hook postrouting priority srcnat; policy accept;\n{post}  }}\n}}\n"
    )
}

// ---- reading the API ----------------------------------------------------------------------

fn api(client: &Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("cilium.io", "v2", kind);
    Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

fn selector(value: &Value) -> Option<LabelSelector> {
    if value.is_null() {
        return None;
    }
    serde_json::from_value(value.clone()).ok()
}

fn cidrs(value: &Value) -> Vec<Ipv4Net> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str()?.parse().ok())
        .collect()
}

fn read_policy(object: &DynamicObject) -> Option<Policy> {
    let spec = object.data.get("spec")?;
    let gateway = &spec["egressGateway"];
    Some(Policy {
        name: object.metadata.name.clone()?,
        selectors: spec["selectors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    selector(&s["podSelector"]),
                    selector(&s["namespaceSelector"]),
                )
            })
            .collect(),
        destinations: cidrs(&spec["destinationCIDRs"]),
        excluded: cidrs(&spec["excludedCIDRs"]),
        node_selector: selector(&gateway["nodeSelector"]).unwrap_or_default(),
        egress_ip: gateway["egressIP"].as_str().and_then(|s| s.parse().ok()),
        interface: gateway["interface"].as_str().map(str::to_owned),
    })
}

fn read_node(object: &DynamicObject) -> Option<CiliumNode> {
    let internal_ip = object.data["spec"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["ip"].as_str()?.parse().ok());
    Some(CiliumNode {
        name: object.metadata.name.clone()?,
        labels: object.metadata.labels.clone().unwrap_or_default(),
        internal_ip,
    })
}

fn versions(objects: &[DynamicObject]) -> Vec<(Option<String>, Option<String>)> {
    objects
        .iter()
        .map(|o| (o.metadata.name.clone(), o.metadata.resource_version.clone()))
        .collect()
}

/// Polls CEGPs and CiliumNodes every 20 ms; publishes a new view (a new generation) whenever
/// any object was added, changed or deleted. Errors (an API outage) publish nothing: agents
/// keep what they have, as Cilium does while its watches are down.
async fn poll(client: Client, views: watch::Sender<Arc<ClusterView>>) {
    let policies = api(
        &client,
        "CiliumEgressGatewayPolicy",
        "ciliumegressgatewaypolicies",
    );
    let nodes = api(&client, "CiliumNode", "ciliumnodes");
    let mut seen = None;
    let mut generation = 0;
    let all = ListParams::default();
    loop {
        let listed = tokio::try_join!(policies.list(&all), nodes.list(&all));
        if let Ok((p, n)) = listed {
            let fingerprint = (versions(&p.items), versions(&n.items));
            if seen.as_ref() != Some(&fingerprint) {
                seen = Some(fingerprint);
                generation += 1;
                let mut nodes: Vec<CiliumNode> = n.items.iter().filter_map(read_node).collect();
                nodes.sort_by(|a, b| a.name.cmp(&b.name));
                let view = ClusterView {
                    generation,
                    policies: p.items.iter().filter_map(read_policy).collect(),
                    nodes,
                };
                if views.send(Arc::new(view)).is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

// ---- the per-node shells ------------------------------------------------------------------

/// The node's IPv4 addresses per interface, in kernel order.
async fn local_ipv4(ns: &str) -> io::Result<Vec<(String, Ipv4Addr)>> {
    let out = tokio::process::Command::new("ip")
        .args(["-n", ns, "-j", "-4", "addr", "show"])
        .output()
        .await?;
    if !out.status.success() {
        return Err(io::Error::other(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let links: Value = serde_json::from_slice(&out.stdout).map_err(io::Error::other)?;
    let mut found = Vec::new();
    for link in links.as_array().into_iter().flatten() {
        let name = link["ifname"].as_str().unwrap_or_default();
        for addr in link["addr_info"].as_array().into_iter().flatten() {
            if let Some(ip) = addr["local"].as_str().and_then(|s| s.parse().ok()) {
                found.push((name.to_owned(), ip));
            }
        }
    }
    Ok(found)
}

/// Runs `nft -f -` with `program` in namespace `ns`.
pub async fn nft(ns: &str, program: &str) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(program.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "nft in {ns}: {}\n{program}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// Shared log of what every agent programmed (for failure messages and EGRESSC_LAB_DEBUG).
pub type ProgramLog = Arc<Mutex<Vec<String>>>;
/// What every agent has programmed now, by node.
pub type Programmed = Arc<Mutex<BTreeMap<String, Vec<Entry>>>>;

async fn run_agent(
    node: NodeSpec,
    gateways: Vec<Ipv4Addr>,
    endpoints: Arc<Vec<Endpoint>>,
    mut views: watch::Receiver<Arc<ClusterView>>,
    log: ProgramLog,
    now: Programmed,
) {
    let mut programmed: Option<Vec<Entry>> = None;
    while views.changed().await.is_ok() {
        let view = views.borrow_and_update().clone();
        // The egress IP is looked up now, at regeneration, and never again until the next
        // event (cilium#47761).
        let local = match local_ipv4(&node.ns).await {
            Ok(local) => local,
            Err(e) => {
                push(&log, format!("{}: cannot read addresses: {e}", node.name));
                continue;
            }
        };
        let entries = plan(&node.name, &view, &endpoints, &local);
        if programmed.as_ref() == Some(&entries) {
            continue;
        }
        match nft(&node.ns, &ruleset(&entries, &gateways)).await {
            Ok(()) => {
                push(
                    &log,
                    format!("{} gen {}: {:?}", node.name, view.generation, entries),
                );
                if let Ok(mut now) = now.lock() {
                    now.insert(node.name.clone(), entries.clone());
                }
                programmed = Some(entries);
            }
            Err(e) => push(&log, format!("{}: {e}", node.name)),
        }
    }
}

fn push(log: &ProgramLog, line: String) {
    if std::env::var_os("EGRESSC_LAB_DEBUG").is_some() {
        eprintln!("datapath: {line}");
    }
    if let Ok(mut v) = log.lock() {
        v.push(line);
    }
}

/// Cilium's health responder on `ip:4240` inside `ns`: `GET /hello` → 200, keep-alive.
/// Stops (closing every connection) when dropped.
pub struct HealthServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HealthServer {
    pub fn start(ns: &str, ip: Ipv4Addr) -> io::Result<HealthServer> {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let ns = ns.to_owned();
        let thread = std::thread::spawn(move || {
            let started = enter(&ns).and_then(|()| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            });
            let runtime = match started {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::bind((ip, HEALTH_PORT)).await {
                    Ok(l) => {
                        let _ = ready_tx.send(Ok(()));
                        l
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let serve = async {
                    while let Ok((stream, _)) = listener.accept().await {
                        tokio::spawn(serve_hello(stream));
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime drops every connection task: their sockets close.
        });
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("health server thread died"))??;
        Ok(HealthServer {
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve_hello(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        // One request = headers up to the blank line (no bodies on GET).
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.len() > 16 * 1024 {
                return;
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
        let request: Vec<u8> = buf.drain(..end).collect();
        let ok = request.starts_with(b"GET /hello ");
        let response: &[u8] = if ok {
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        } else {
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        };
        if stream.write_all(response).await.is_err() {
            return;
        }
    }
}

/// The running stand-in: the poller and one agent (programming task + health server) per node.
pub struct Datapath {
    agents: BTreeMap<String, (tokio::task::JoinHandle<()>, Option<HealthServer>)>,
    poller: tokio::task::JoinHandle<()>,
    pub log: ProgramLog,
    now: Programmed,
}

impl Datapath {
    /// Installs the static node routes (a table and fwmark rule per gateway candidate on every
    /// node) and starts the agents on `runtime` (the api runtime, where `client` lives).
    /// `health` names the nodes that serve `:4240/hello`.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        client: Client,
        nodes: &[NodeSpec],
        gateways: &[Ipv4Addr],
        endpoints: Vec<Endpoint>,
        health: &[&str],
    ) -> io::Result<Datapath> {
        for node in nodes {
            for (k, gw) in gateways.iter().enumerate() {
                if *gw == node.internal_ip {
                    continue;
                }
                let id = (MARK_BASE + k as u32).to_string();
                let via = gw.to_string();
                super::netns::ip(&[
                    "-n", &node.ns, "route", "add", "default", "via", &via, "table", &id,
                ])?;
                super::netns::ip(&[
                    "-n", &node.ns, "rule", "add", "fwmark", &id, "lookup", &id, "priority", "100",
                ])?;
            }
        }
        let (tx, rx) = watch::channel(Arc::new(ClusterView::default()));
        let log: ProgramLog = Arc::default();
        let now: Programmed = Arc::default();
        let endpoints = Arc::new(endpoints);
        let mut agents = BTreeMap::new();
        for node in nodes {
            let task = runtime.spawn(run_agent(
                node.clone(),
                gateways.to_vec(),
                endpoints.clone(),
                rx.clone(),
                log.clone(),
                now.clone(),
            ));
            let server = if health.contains(&node.name.as_str()) {
                Some(HealthServer::start(&node.ns, node.internal_ip)?)
            } else {
                None
            };
            agents.insert(node.name.clone(), (task, server));
        }
        let poller = runtime.spawn(poll(client, tx));
        Ok(Datapath {
            agents,
            poller,
            log,
            now,
        })
    }

    /// "cilium-agent killed" on `node`: the health endpoint stops answering and the node's
    /// programming stays as it is.
    pub fn kill(&mut self, node: &str) {
        if let Some((task, server)) = self.agents.get_mut(node) {
            task.abort();
            server.take();
        }
    }

    /// What `node` has programmed now.
    pub fn programmed(&self, node: &str) -> Option<Vec<Entry>> {
        self.now.lock().ok()?.get(node).cloned()
    }

    /// Every programming step so far.
    pub fn history(&self) -> Vec<String> {
        self.log.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for Datapath {
    fn drop(&mut self) {
        self.poller.abort();
        for (task, server) in self.agents.values_mut() {
            task.abort();
            server.take();
        }
    }
}
