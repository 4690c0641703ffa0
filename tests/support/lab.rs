//! The data-plane lab (docs/arch/datapath-lab.md): a client node with a pod, two gateway
//! nodes, an external host and two controller replicas in network namespaces; kube-testserver;
//! the Cilium datapath stand-in; the release `egressc sync` and `egressc agent` started as the
//! manifests of `egressc install` / `egressc build` start them; pod traffic every 10 ms; and
//! the recorders (labelled CiliumNodes, ARP answers, source IPs, blackout). [`run`] plays one
//! scenario and returns what was measured; the tests and `scripts/lab-bench.sh` judge it.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use egressc::agent::frames::MacAddr;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::api::dynamic;
use super::apinet::ApiNet;
use super::datapath::{Action, Datapath, Endpoint, NodeSpec};
use super::fleet::{Fleet, GATEWAY, LabelSample};
use super::netns::{Host, LAN_IF, Lan, Netns};
use super::observer::{Claim, Observer, Sighting, two_answers_within};
use super::traffic::{Record, Traffic, Verdict, judge};
use super::vipctl::{NAMESPACE, VipControl};

/// The gateway nodes (A on `lan.a`, B on `lan.b`).
pub const NODES: [&str; 2] = ["node-a", "node-b"];
/// The client node the pod runs on (not a gateway candidate).
pub const CLIENT: &str = "node-c";
/// The VIP in VirtualIPAddress mode.
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 100);
/// The pod and its node-side gateway address (pod CIDR 203.0.113.0/24).
pub const POD_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const POD_GATEWAY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const POD_CIDR: &str = "203.0.113.0/24";
/// The external host (the observer's namespace on the gateways' LAN).
pub const EXTERNAL_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// InternalIPs (node network = the API network): A, B, client; then the two controllers.
const INTERNAL: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 10),
    Ipv4Addr::new(192, 0, 2, 11),
    Ipv4Addr::new(192, 0, 2, 12),
];
/// The controllers' addresses on the API network (after the three nodes'; see `ApiNet::new`).
const CONTROLLER_IPS: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 13), Ipv4Addr::new(192, 0, 2, 14)];
/// The controller replicas (their Pod names).
pub const REPLICAS: [&str; 2] = ["egressc-sync-0", "egressc-sync-1"];
/// Two MACs answering one ARP probe (sent every 100 ms) would answer within this.
const SAME_PROBE: Duration = Duration::from_millis(10);
/// Guard against hangs, not a measurement.
const PATIENCE: Duration = Duration::from_secs(90);
/// The leader Lease of `egressc sync` (src/sync/run.rs).
const LEADER_LEASE: &str = "egressc-sync";
/// kubelet reports a dead container's Pod NotReady after about one PLEG relist (1 s).
pub const CONTAINER_DEATH_REPORTED_AFTER: Duration = Duration::from_secs(1);
/// kubelet reports a killed cilium-agent's Pod NotReady after its readiness probe failed
/// enough times. Cilium's chart probes every 30 s with 3 failures (up to 90 s); the lab uses
/// a shorter delay so that the test stays short (the controller notices nothing before it).
pub const CILIUM_NOT_READY_AFTER: Duration = Duration::from_secs(5);

/// How the gateway picks its source IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    PrimaryIp,
    Vip,
}

/// What happens to the active gateway node (or the control plane).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Links down, agent and cilium stand-in killed, heartbeat stops; Node stays Ready.
    PowerOff,
    /// The VIP agent SIGKILLed, not restarted; kubelet reports its Pod NotReady.
    AgentKill,
    /// The cilium-agent stand-in killed (health endpoint gone, programming frozen); kubelet
    /// reports its Pod NotReady after [`CILIUM_NOT_READY_AFTER`].
    CiliumKill,
    /// `spec.unschedulable: true`.
    Cordon,
    /// Power-off (VIP mode), and the leader controller SIGKILLed as soon as the VIP Lease
    /// shows the failover under way (its grant left the active node).
    LeaderKillMidFailover,
    /// Both controllers cut from the active node (only them: the node still reaches the API
    /// and the LAN), observed for [`PARTITION_OBSERVED`].
    ControllerPartition,
    /// The API server answers 503 for `seconds`, `times` times with [`OUTAGE_PAUSE`] between.
    ApiOutages { seconds: u64, times: u32 },
}

/// How long a controller partition is watched.
pub const PARTITION_OBSERVED: Duration = Duration::from_secs(10);
/// Time between two API outages, and after the last one.
pub const OUTAGE_PAUSE: Duration = Duration::from_secs(5);

/// One lab scenario.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub mode: Mode,
    pub fault: Fault,
}

/// Every scenario of the lab (tests and benchmark).
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "power-off-primary-ip",
        mode: Mode::PrimaryIp,
        fault: Fault::PowerOff,
    },
    Scenario {
        name: "power-off-vip",
        mode: Mode::Vip,
        fault: Fault::PowerOff,
    },
    Scenario {
        name: "vip-agent-sigkill",
        mode: Mode::Vip,
        fault: Fault::AgentKill,
    },
    Scenario {
        name: "cilium-agent-killed",
        mode: Mode::Vip,
        fault: Fault::CiliumKill,
    },
    Scenario {
        name: "cordon",
        mode: Mode::Vip,
        fault: Fault::Cordon,
    },
    Scenario {
        name: "leader-killed-mid-failover",
        mode: Mode::Vip,
        fault: Fault::LeaderKillMidFailover,
    },
    Scenario {
        name: "controller-partitioned-from-gateway",
        mode: Mode::Vip,
        fault: Fault::ControllerPartition,
    },
    Scenario {
        name: "api-outage-30s-twice-vip",
        mode: Mode::Vip,
        fault: Fault::ApiOutages {
            seconds: 30,
            times: 2,
        },
    },
    Scenario {
        name: "api-outage-30s-twice-primary-ip",
        mode: Mode::PrimaryIp,
        fault: Fault::ApiOutages {
            seconds: 30,
            times: 2,
        },
    },
];

/// The scenario called `name`.
pub fn scenario(name: &str) -> io::Result<Scenario> {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .copied()
        .ok_or_else(|| io::Error::other(format!("no lab scenario {name}")))
}

/// What one run of a scenario measured.
#[derive(Debug)]
pub struct Outcome {
    pub scenario: Scenario,
    pub verdict: Verdict,
    /// The first sample with the label on two CiliumNodes (or Nodes), if any.
    pub doubled_label: Option<LabelSample>,
    /// The first pair of answers from two MACs to one probe, if any (VIP mode).
    pub two_macs: Option<(Sighting, Sighting)>,
    /// The node active before the fault and the one active at the end.
    pub active_before: String,
    pub active_after: Option<String>,
    /// Fault → label on the new node, when it moved.
    pub label_moved_after: Option<Duration>,
    /// The first label sample after the fault without the label on `active_before` alone.
    pub label_left: Option<LabelSample>,
    /// VIP mode: the longest time in the window without an answer to the external host's
    /// ARP probes for the VIP (sent every 100 ms), from any MAC.
    pub arp_silence: Option<Duration>,
    /// Scenario notes (e.g. where a leader kill landed).
    pub notes: Vec<String>,
    /// Logs, for failure messages.
    pub logs: String,
}

impl Outcome {
    /// The safety properties of every scenario: no wrong-source packet, never the label on two
    /// (Cilium)Nodes, never two MACs answering one ARP probe.
    pub fn check_safety(&self) -> Result<(), String> {
        let mut broken = Vec::new();
        if !self.verdict.wrong_source.is_empty() {
            let n = self.verdict.wrong_source.len();
            let first = self.verdict.wrong_source.first();
            broken.push(format!("{n} wrong-source packets, first {first:?}"));
        }
        if let Some(sample) = &self.doubled_label {
            broken.push(format!("the label was on two nodes: {sample:?}"));
        }
        if let Some(pair) = &self.two_macs {
            broken.push(format!("two MACs answered one ARP probe: {pair:?}"));
        }
        if broken.is_empty() {
            Ok(())
        } else {
            Err(format!("{}\n{}", broken.join("\n"), self.summary()))
        }
    }

    /// One line for humans and for scripts/lab-bench.sh.
    pub fn summary(&self) -> String {
        let v = &self.verdict;
        format!(
            "LAB scenario={} blackout_ms={} lost={} sent={} wrong_source={} doubled_label={} \
             two_macs={} forward_blackout_ms={} sender_stall_ms={} before={} after={} \
             label_moved_ms={} label_left={} arp_silence_ms={} notes={:?}",
            self.scenario.name,
            v.blackout.as_millis(),
            v.lost,
            v.sent,
            v.wrong_source.len(),
            self.doubled_label.is_some(),
            self.two_macs.is_some(),
            v.forward_blackout.as_millis(),
            v.sender_stall.as_millis(),
            self.active_before,
            self.active_after.as_deref().unwrap_or("-"),
            self.label_moved_after
                .map_or("-".to_owned(), |d| d.as_millis().to_string()),
            self.label_left.is_some(),
            self.arp_silence
                .map_or("-".to_owned(), |d| d.as_millis().to_string()),
            self.notes,
        )
    }
}

// ---- processes ----------------------------------------------------------------------------

/// The egressc binary under test (`EGRESSC_LAB_BIN` overrides cargo's).
fn egressc_bin() -> PathBuf {
    std::env::var_os("EGRESSC_LAB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_egressc")))
}

/// A container's command line: its args and its environment.
struct ContainerCommand {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// The command line of the first container of the `kind` object in `manifests`, as the kubelet
/// would start it: `fieldRef` variables are filled from `fields` (by field path: `metadata.name`,
/// `metadata.namespace`, `spec.nodeName`, `status.podIP`, `status.hostIP`), then `$(NAME)` in the
/// args is replaced by the variable `NAME` (Kubernetes' dependent-variable expansion).
fn container_command(
    manifests: &str,
    kind: &str,
    fields: &[(&str, &str)],
) -> io::Result<ContainerCommand> {
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(manifests).map_err(io::Error::other)?;
    let object = docs
        .iter()
        .find(|d| d["kind"] == kind)
        .ok_or_else(|| io::Error::other(format!("no {kind} in the rendered manifests")))?;
    let container = &object["spec"]["template"]["spec"]["containers"][0];
    let mut env = Vec::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or_default().to_owned();
        let value = match var["value"].as_str() {
            Some(v) => v.to_owned(),
            None => {
                let path = var["valueFrom"]["fieldRef"]["fieldPath"]
                    .as_str()
                    .unwrap_or_default();
                match fields.iter().find(|(k, _)| *k == path) {
                    Some((_, v)) => (*v).to_owned(),
                    None => continue,
                }
            }
        };
        env.push((name, value));
    }
    let expand = |arg: &str| {
        env.iter().fold(arg.to_owned(), |arg, (name, value)| {
            arg.replace(&format!("$({name})"), value)
        })
    };
    let args = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(expand))
        .collect();
    Ok(ContainerCommand { args, env })
}

fn rendered(args: &[&str]) -> io::Result<String> {
    let out = Command::new(egressc_bin()).args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "egressc {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    String::from_utf8(out.stdout).map_err(io::Error::other)
}

/// A release binary running in a namespace (`ip netns exec` execs it: the pid is egressc's).
pub struct Process {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Process {
    fn start(
        ns: &Netns,
        command: &ContainerCommand,
        kubeconfig: &Path,
        log: PathBuf,
    ) -> io::Result<Process> {
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(egressc_bin())
            .args(&command.args)
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()?;
        Ok(Process {
            child: Some(child),
            log,
        })
    }

    /// SIGKILL, reaped: no shutdown path runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- the lab ------------------------------------------------------------------------------

/// A namespace with no LAN port, as a [`Host`] so that [`ApiNet`] links it.
fn bare_host(role: &str, n: u8) -> io::Result<Host> {
    Ok(Host {
        ns: Netns::new(role)?,
        mac: MacAddr([0x02, 0, 0, 0, 1, n]),
        ip4: Ipv4Addr::UNSPECIFIED,
        ip6: Ipv6Addr::UNSPECIFIED,
    })
}

fn sysctls(ns: &Netns, settings: &[&str]) -> io::Result<()> {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "sysctl", "-qw"])
        .args(settings)
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "sysctl in {}: {}",
            ns.name,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// A router: forwards, no reverse-path filter, no ICMP redirects (a redirect would let the
/// client bypass the datapath's choice of gateway).
fn make_router(ns: &Netns, interfaces: &[&str]) -> io::Result<()> {
    let mut settings = vec!["net.ipv4.ip_forward=1".to_owned()];
    for i in ["all", "default"].iter().chain(interfaces) {
        settings.push(format!("net.ipv4.conf.{i}.rp_filter=0"));
        settings.push(format!("net.ipv4.conf.{i}.send_redirects=0"));
        settings.push(format!("net.ipv4.conf.{i}.accept_redirects=0"));
    }
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    sysctls(ns, &settings)
}

async fn merge(api: &Api<DynamicObject>, name: &str, body: Value) -> kube::Result<()> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(body))
        .await
        .map(drop)
}

/// Seeds what the lab needs beyond [`Fleet`]: InternalIPs on Nodes and CiliumNodes, the
/// policy's destination (the external host), and the gateway's mode.
async fn seed(client: kube::Client, mode: Mode) -> kube::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let cilium_nodes = dynamic(&client, "cilium.io", "CiliumNode", "ciliumnodes");
    for (node, ip) in NODES.iter().zip(INTERNAL) {
        let addresses = json!([{"type": "InternalIP", "address": ip.to_string()}]);
        nodes
            .patch_status(
                node,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"addresses": addresses}})),
            )
            .await?;
        let addresses = json!([{"type": "InternalIP", "ip": ip.to_string()}]);
        merge(
            &cilium_nodes,
            node,
            json!({"spec": {"addresses": addresses}}),
        )
        .await?;
    }
    let policies = dynamic(
        &client,
        "network.deckhouse.io",
        "EgressGatewayPolicy",
        "egressgatewaypolicies",
    );
    let destination = format!("{EXTERNAL_IP}/32");
    merge(
        &policies,
        "p",
        json!({"spec": {"destinationCIDRs": [destination]}}),
    )
    .await?;
    if mode == Mode::PrimaryIp {
        let gateways = dynamic(
            &client,
            "network.deckhouse.io",
            "EgressGateway",
            "egressgateways",
        );
        let source = json!({"mode": "PrimaryIPFromEgressGatewayNodeInterface",
                            "virtualIPAddress": null,
                            "primaryIPFromEgressGatewayNodeInterface": {"interfaceName": LAN_IF}});
        merge(&gateways, GATEWAY, json!({"spec": {"sourceIP": source}})).await?;
    }
    Ok(())
}

/// The running lab. Fields drop in order: traffic and processes first, namespaces last.
pub struct Lab {
    pub mode: Mode,
    pub traffic: Option<Traffic>,
    pub syncs: Vec<Process>,
    pub agents: Vec<Process>,
    pub observer: Option<Observer>,
    pub datapath: Datapath,
    labels_stop: Arc<AtomicBool>,
    labels: Option<tokio::task::JoinHandle<Vec<LabelSample>>>,
    pub fleet: Fleet,
    pub api: ApiNet,
    pub pod: Netns,
    pub client: Host,
    pub controllers: [Host; 2],
    pub lan: Lan,
    pub dir: tempfile::TempDir,
}

impl Lab {
    pub fn start(mode: Mode) -> io::Result<Lab> {
        let lan = Lan::new()?;
        let client = bare_host("cli", 3)?;
        let controllers = [bare_host("ctl0", 4)?, bare_host("ctl1", 5)?];
        let api = ApiNet::new(&[&lan.a, &lan.b, &client, &controllers[0], &controllers[1]])?;
        let pod = Netns::new("pod")?;
        client.ns.ip(&[
            "link", "add", "lxc0", "type", "veth", "peer", "name", LAN_IF, "netns", &pod.name,
        ])?;
        client
            .ns
            .ip(&["addr", "add", &format!("{POD_GATEWAY}/24"), "dev", "lxc0"])?;
        client.ns.ip(&["link", "set", "lxc0", "up"])?;
        pod.ip(&["addr", "add", &format!("{POD_IP}/24"), "dev", LAN_IF])?;
        pod.ip(&["link", "set", LAN_IF, "up"])?;
        pod.ip(&["route", "add", "default", "via", &POD_GATEWAY.to_string()])?;
        make_router(&client.ns, &["lxc0", "api0"])?;
        let client_ip = INTERNAL[2].to_string();
        for host in [&lan.a, &lan.b] {
            make_router(&host.ns, &[LAN_IF, "api0"])?;
            host.ns.ip(&["route", "add", POD_CIDR, "via", &client_ip])?;
        }

        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        api.write_node_kubeconfig(&kubeconfig)?;
        let seeded = api.client()?;
        let fleet = api
            .run(async move {
                let fleet = Fleet::install(seeded.clone(), &NODES, IpAddr::V4(VIP)).await?;
                seed(seeded, mode).await?;
                Ok::<_, kube::Error>(fleet)
            })?
            .map_err(io::Error::other)?;
        let labels_stop = Arc::new(AtomicBool::new(false));
        let labels = Some(api.spawn(fleet.clone().record_labels(labels_stop.clone())));

        let nodes: Vec<NodeSpec> = [(&lan.a, NODES[0]), (&lan.b, NODES[1]), (&client, CLIENT)]
            .iter()
            .zip(INTERNAL)
            .map(|((host, name), internal_ip)| NodeSpec {
                name: (*name).to_owned(),
                ns: host.ns.name.clone(),
                internal_ip,
            })
            .collect();
        let endpoint = Endpoint {
            ip: POD_IP,
            labels: [("app", "web"), ("io.kubernetes.pod.namespace", "default")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            namespace_labels: [(
                "kubernetes.io/metadata.name".to_owned(),
                "default".to_owned(),
            )]
            .into(),
        };
        let datapath = Datapath::start(
            &api.handle(),
            api.client()?,
            &nodes,
            &INTERNAL[..2],
            vec![endpoint],
            &NODES,
        )?;

        let observer = match mode {
            Mode::Vip => {
                let observer = Observer::start(&lan.observer, IpAddr::V4(VIP))?;
                observer.set_probing(true);
                Some(observer)
            }
            Mode::PrimaryIp => None,
        };

        let mut agents = Vec::new();
        if mode == Mode::Vip {
            let sources = dir.path().join("sources.yaml");
            std::fs::write(&sources, AGENT_SOURCES)?;
            let manifests = rendered(&["build", &sources.to_string_lossy()])?;
            for ((host, node), internal_ip) in [(&lan.a, NODES[0]), (&lan.b, NODES[1])]
                .into_iter()
                .zip(INTERNAL)
            {
                let host_ip = internal_ip.to_string();
                let command = container_command(
                    &manifests,
                    "DaemonSet",
                    &[
                        ("spec.nodeName", node),
                        ("metadata.namespace", NAMESPACE),
                        ("status.hostIP", &host_ip),
                        ("status.podIP", &host_ip),
                    ],
                )?;
                let log = dir.path().join(format!("agent-{node}.log"));
                agents.push(Process::start(&host.ns, &command, &kubeconfig, log)?);
            }
        }
        let manifests = rendered(&["install", "--namespace", NAMESPACE])?;
        let mut syncs = Vec::new();
        for ((host, replica), ip) in controllers.iter().zip(REPLICAS).zip(CONTROLLER_IPS) {
            // The controller runs in the host network: its Pod IP is its node's.
            let ip = ip.to_string();
            let command = container_command(
                &manifests,
                "Deployment",
                &[
                    ("metadata.name", replica),
                    ("metadata.namespace", NAMESPACE),
                    ("status.podIP", &ip),
                    ("status.hostIP", &ip),
                ],
            )?;
            let log = dir.path().join(format!("{replica}.log"));
            syncs.push(Process::start(&host.ns, &command, &kubeconfig, log)?);
        }
        Ok(Lab {
            mode,
            lan,
            api,
            client,
            pod,
            controllers,
            fleet,
            datapath,
            agents,
            syncs,
            observer,
            traffic: None,
            labels_stop,
            labels,
            dir,
        })
    }

    fn host(&self, node: &str) -> &Host {
        [&self.lan.a, &self.lan.b][Self::index(node)]
    }

    fn index(node: &str) -> usize {
        usize::from(node != NODES[0])
    }

    /// Every process log and the datapath's programming history.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for p in self.syncs.iter().chain(&self.agents) {
            text.push_str(&format!("--- {} ---\n{}\n", p.log.display(), p.log_text()));
        }
        text.push_str("--- datapath ---\n");
        for line in self.datapath.history() {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    fn failure(&self, what: &str) -> io::Error {
        io::Error::other(format!("{what}\n{}", self.logs()))
    }

    /// Waits until exactly one node, not in `not`, carries the label on Node and CiliumNode.
    pub fn wait_label(&self, not: &[&str], timeout: Duration) -> io::Result<(String, Instant)> {
        let not = not.iter().map(|s| s.to_string()).collect();
        let found = self.api.run(self.fleet.clone().wait_single(not, timeout))?;
        found.ok_or_else(|| self.failure("the label never settled on one node"))
    }

    /// Starts the pod traffic once every node has programmed a gateway for it: a node that
    /// does not know the policy yet would forward the pod's packets unSNATed (Cilium's own
    /// start-up race when a policy is first created, not what the lab measures).
    pub fn start_traffic(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let ready = |node: &str| {
            self.datapath.programmed(node).is_some_and(|entries| {
                !entries.is_empty() && entries.iter().all(|e| e.action != Action::Drop)
            })
        };
        while !(ready(NODES[0]) && ready(NODES[1]) && ready(CLIENT)) {
            if Instant::now() >= deadline {
                return Err(self.failure("the datapath never programmed the gateway"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let observer = &self.lan.observer.ns.name;
        self.traffic = Some(Traffic::start(
            observer,
            EXTERNAL_IP,
            &self.pod.name,
            POD_IP,
        )?);
        Ok(())
    }

    fn traffic(&self) -> io::Result<&Traffic> {
        self.traffic
            .as_ref()
            .ok_or_else(|| io::Error::other("the traffic was not started"))
    }

    /// Waits until the last 100 packets (1 s) sent after `since` were all delivered.
    pub fn wait_flowing(&self, since: Instant, timeout: Duration) -> io::Result<Instant> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .traffic()?
                .flowing(100, Duration::from_millis(200), since)
            {
                return Ok(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(self.failure("pod traffic never flowed for a second"))
    }

    /// The allowed sources: the VIP, or the gateway nodes' primary IPs on `eth0`.
    pub fn allowed_sources(&self) -> Vec<Ipv4Addr> {
        match self.mode {
            Mode::Vip => vec![VIP],
            Mode::PrimaryIp => vec![self.lan.a.ip4, self.lan.b.ip4],
        }
    }

    /// The leader replica's index, from the leader Lease.
    fn leader(&self) -> io::Result<usize> {
        let client = self.api.client()?;
        let holder = self.api.run(async move {
            let leases: Api<Lease> = Api::namespaced(client, NAMESPACE);
            leases
                .get_opt(LEADER_LEASE)
                .await
                .ok()
                .flatten()
                .and_then(|l| l.spec?.holder_identity)
        })?;
        REPLICAS
            .iter()
            .position(|r| Some(*r) == holder.as_deref())
            .ok_or_else(|| self.failure(&format!("no leader replica: {holder:?}")))
    }

    fn patch_pod_ready(&self, namespace: &str, pod: String, ready: bool) -> io::Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.api.client()?, namespace);
        let status = if ready { "True" } else { "False" };
        let body = json!({"status": {"conditions": [{"type": "Ready", "status": status}]}});
        self.api
            .run(async move {
                pods.patch_status(&pod, &PatchParams::default(), &Patch::Merge(body))
                    .await
                    .map(drop)
            })?
            .map_err(io::Error::other)
    }

    fn cordon(&self, node: &str) -> io::Result<()> {
        let nodes: Api<Node> = Api::all(self.api.client()?);
        let node = node.to_owned();
        self.api
            .run(async move {
                let body = json!({"spec": {"unschedulable": true}});
                nodes
                    .patch(&node, &PatchParams::default(), &Patch::Merge(body))
                    .await
                    .map(drop)
            })?
            .map_err(io::Error::other)
    }

    fn power_off(&mut self, node: &str) -> io::Result<()> {
        let host = self.host(node);
        host.ns.ip(&["link", "set", LAN_IF, "down"])?;
        host.ns.ip(&["link", "set", "api0", "down"])?;
        if let Some(agent) = self.agents.get_mut(Self::index(node)) {
            agent.kill();
        }
        self.datapath.kill(node);
        self.fleet.power_off(node);
        Ok(())
    }

    /// Drops every packet between both controllers and `node`'s InternalIP.
    fn partition_controllers_from(&self, node: &str) -> io::Result<()> {
        let ip = INTERNAL[Self::index(node)];
        let program = format!(
            "table inet lab_partition {{\n  chain in {{ type filter hook input priority 0; \
             ip saddr {ip} drop; }}\n  chain out {{ type filter hook output priority 0; \
             ip daddr {ip} drop; }}\n}}\n"
        );
        for host in &self.controllers {
            let ns = host.ns.name.clone();
            let program = program.clone();
            self.api
                .run(async move { super::datapath::nft(&ns, &program).await })??;
        }
        Ok(())
    }

    /// Powers `node` off and SIGKILLs the leader as soon as the VIP Lease shows the failover
    /// under way (its grant left `node`), polling every 2 ms; notes where the kill landed.
    fn power_off_and_kill_leader(&mut self, node: &str, notes: &mut Vec<String>) -> io::Result<()> {
        let leader = self.leader()?;
        let lease = VipControl::attach(self.api.client()?, GATEWAY);
        let fault = Instant::now();
        self.power_off(node)?;
        let me = Some(node.to_owned());
        let seen = self.api.run(async move {
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline {
                if let Ok(l) = lease.read().await
                    && l.view.grant != me
                {
                    return Some(l);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            None
        })?;
        self.syncs[leader].kill();
        let labels = self.api.run({
            let fleet = self.fleet.clone();
            async move { fleet.labels().await.ok() }
        })?;
        match seen {
            Some(lease) => notes.push(format!(
                "leader {} killed {:?} after the power-off; Lease then grant={:?} holder={:?}; \
                 label then on {:?}",
                REPLICAS[leader],
                fault.elapsed(),
                lease.view.grant,
                lease.view.holder,
                labels.map(|l| l.cilium_nodes)
            )),
            None => notes.push("the grant never left the powered-off node".to_owned()),
        }
        Ok(())
    }

    /// Stops the label recorder; every sample.
    fn stop_labels(&mut self) -> io::Result<Vec<LabelSample>> {
        self.labels_stop.store(true, Ordering::Relaxed);
        let samples = match self.labels.take() {
            Some(task) => self.api.join(task)?,
            None => Vec::new(),
        };
        if samples.is_empty() {
            return Err(self.failure("the label recorder recorded nothing"));
        }
        Ok(samples)
    }
}

/// The gateway `egressc build` renders the VIP agent DaemonSet for (its command line only).
const AGENT_SOURCES: &str = "apiVersion: network.deckhouse.io/v1alpha1
kind: EgressGateway
metadata: {name: gw}
spec:
  nodeSelector: {role: egress}
  sourceIP:
    mode: VirtualIPAddress
    virtualIPAddress: {ip: 198.51.100.100, interfaces: [eth0]}
";

/// Plays `scenario` on a fresh lab and measures it.
pub fn run(scenario: Scenario) -> io::Result<Outcome> {
    let mut lab = Lab::start(scenario.mode)?;
    let (first, _) = lab.wait_label(&[], PATIENCE)?;
    lab.start_traffic(PATIENCE)?;
    lab.wait_flowing(Instant::now(), PATIENCE)?;
    let fault_at = Instant::now();
    let window_from = fault_at - Duration::from_secs(1);
    let mut notes = Vec::new();
    let moves = match scenario.fault {
        Fault::PowerOff => {
            lab.power_off(&first)?;
            true
        }
        Fault::AgentKill => {
            lab.agents[Lab::index(&first)].kill();
            std::thread::sleep(CONTAINER_DEATH_REPORTED_AFTER);
            let fleet = lab.fleet.clone();
            let node = first.clone();
            lab.api
                .run(async move { fleet.set_agent_ready(&node, false).await })?
                .map_err(io::Error::other)?;
            true
        }
        Fault::CiliumKill => {
            lab.datapath.kill(&first);
            std::thread::sleep(CILIUM_NOT_READY_AFTER);
            lab.patch_pod_ready("kube-system", format!("cilium-{first}"), false)?;
            true
        }
        Fault::Cordon => {
            lab.cordon(&first)?;
            true
        }
        Fault::LeaderKillMidFailover => {
            lab.power_off_and_kill_leader(&first, &mut notes)?;
            true
        }
        Fault::ControllerPartition => {
            lab.partition_controllers_from(&first)?;
            std::thread::sleep(PARTITION_OBSERVED);
            false
        }
        Fault::ApiOutages { seconds, times } => {
            for _ in 0..times {
                lab.api.outage(Duration::from_secs(seconds));
                std::thread::sleep(Duration::from_secs(seconds) + OUTAGE_PAUSE);
            }
            false
        }
    };
    let mut label_moved_after = None;
    if moves {
        let (_, labelled) = lab.wait_label(&[first.as_str()], PATIENCE)?;
        label_moved_after = Some(labelled.saturating_duration_since(fault_at));
        lab.wait_flowing(labelled, PATIENCE)?;
    } else {
        // A scenario that stopped the traffic shows how long it stays down.
        let _ = lab.wait_flowing(Instant::now() - Duration::from_secs(1), PATIENCE);
    }
    let window_to = Instant::now() - Duration::from_millis(200);
    let active_after = lab
        .api
        .run({
            let fleet = lab.fleet.clone();
            async move { fleet.labels().await.ok() }
        })?
        .and_then(|s| s.single().map(str::to_owned));
    let samples = lab.stop_labels()?;
    let doubled_label = samples
        .iter()
        .find(|s| s.nodes.len() > 1 || s.cilium_nodes.len() > 1)
        .cloned();
    let label_left = samples
        .iter()
        .find(|s| s.at >= fault_at && s.single() != Some(first.as_str()))
        .cloned();
    let sightings = lab.observer.as_ref().map(Observer::sightings);
    let two_macs = sightings
        .as_ref()
        .and_then(|s| two_answers_within(s, SAME_PROBE));
    let arp_silence = sightings.map(|s| {
        let answers: Vec<Instant> = s
            .iter()
            .filter(|s| s.claim == Claim::ArpReply)
            .map(|s| s.at)
            .collect();
        longest_silence(window_from, &answers, window_to)
    });
    let record: Record = lab.traffic()?.snapshot();
    let verdict = judge(&record, window_from, window_to, &lab.allowed_sources());
    let outcome = Outcome {
        scenario,
        verdict,
        doubled_label,
        two_macs,
        active_before: first,
        active_after,
        label_moved_after,
        label_left,
        arp_silence,
        notes,
        logs: lab.logs(),
    };
    if std::env::var_os("EGRESSC_LAB_DEBUG").is_some() {
        eprintln!("{}", outcome.logs);
    }
    Ok(outcome)
}

/// The longest gap between `from`, the `times` inside the window, and `to`.
fn longest_silence(from: Instant, times: &[Instant], to: Instant) -> Duration {
    let mut points: Vec<Instant> = times
        .iter()
        .copied()
        .filter(|t| *t >= from && *t <= to)
        .collect();
    points.push(from);
    points.push(to);
    points.sort();
    points
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default()
}
