//! The RBAC `egressc build` renders for the VIP agent is exactly what the agent uses: the real
//! `egressc agent` runs in a node namespace against kube-testserver (which does no
//! authorization) through a relay that records every API request. Each request must be
//! allowed by the rendered Role, ClusterRole and bindings of the agent's ServiceAccount, and
//! every permission they grant must have been used (no `create` or `patch` it never needs).
//!
//! The scenario: the agent watches its Leases and the EgressGateways, is granted the VIP and
//! renews (update), meets a conflict (the test controller moves the Lease's resourceVersion
//! while the agent is stopped, so its next renewal conflicts and it re-reads the Lease: get),
//! and shuts down (releasing the Lease: update). Needs root and `ip`; skips otherwise (fails
//! with EGRESSC_REQUIRE_NETNS=1).

mod support;

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use egressc::render::AGENT_NAME;
use serde_json::Value;
use support::agents::AgentProcess;
use support::apinet::{API_IP, ApiNet};
use support::netns::{LAN_IF, Lan};
use support::rbac::{Attributes, Policy};
use support::relay::Relay;
use support::vipctl::{NAMESPACE, install};

const GATEWAY: &str = "gw";
const VIP: &str = "198.51.100.100";

/// The manifests `egressc build` renders for one VirtualIPAddress gateway, agent included.
fn build_documents() -> Vec<Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = format!(
        "apiVersion: network.deckhouse.io/v1alpha1\nkind: EgressGateway\nmetadata:\n  name: {GATEWAY}\nspec:\n  nodeSelector: {{role: egress}}\n  sourceIP:\n    mode: VirtualIPAddress\n    virtualIPAddress:\n      ip: {VIP}\n      interfaces: [{LAN_IF}]\n"
    );
    std::fs::write(dir.path().join("gw.yaml"), source).expect("source written");
    let out = Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(["build", "gw.yaml", "--agent-namespace", NAMESPACE])
        .current_dir(dir.path())
        .stderr(Stdio::inherit())
        .output()
        .expect("egressc build runs");
    assert!(out.status.success(), "egressc build failed");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    serde_saphyr::from_str_multiple(&text).expect("YAML")
}

/// The recorded resource requests, names dropped (no rendered rule uses resourceNames).
fn attributes(relay: &Relay) -> (BTreeSet<Attributes>, Vec<String>) {
    let recorded = relay.requests();
    let requests = recorded
        .iter()
        .filter_map(|r| support::rbac::attributes(&r.method, &r.target))
        .map(|a| Attributes { name: None, ..a })
        .collect();
    let non_resource = recorded
        .iter()
        .filter(|r| support::rbac::attributes(&r.method, &r.target).is_none())
        .map(|r| r.target.clone())
        .collect();
    (requests, non_resource)
}

fn has(requests: &BTreeSet<Attributes>, verb: &str, resource: &str) -> bool {
    requests
        .iter()
        .any(|r| r.verb == verb && r.resource == resource)
}

#[test]
fn the_agent_uses_exactly_the_rbac_build_renders_for_it() -> io::Result<()> {
    require_netns!();
    let documents = build_documents();
    let lan = Lan::new()?;
    let api = ApiNet::new(&[&lan.a])?;
    let server_port = api.server_port();
    let relay = api.run(async move { Relay::start_on(IpAddr::V4(API_IP), server_port).await })?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_node_kubeconfig_via(&kubeconfig, relay.port)?;
    let client = api.client()?;
    let vip: IpAddr = VIP.parse().map_err(io::Error::other)?;
    let ctl = api
        .run(async move { install(client, GATEWAY, vip, &[LAN_IF]).await })?
        .map_err(io::Error::other)?;
    let mut agent = AgentProcess::start(&lan.a.ns, "node-a", &kubeconfig, dir.path())?;
    let fail = |what: &str, agent: &AgentProcess| {
        io::Error::other(format!("{what}\n--- agent ---\n{}", agent.log_text()))
    };

    let grant = ctl.clone();
    api.run(async move { grant.grant("node-a", false).await })?
        .map_err(io::Error::other)?;
    let ready = ctl.clone();
    api.run(async move { ready.wait_ready("node-a", Duration::from_secs(10)).await })?
        .ok_or_else(|| fail("node-a never became ready", &agent))?;

    // A conflict: while the agent is stopped, the Lease's resourceVersion moves; on waking,
    // its renewal (due by then) races the watch event bringing the new version. Repeated
    // until the agent lost one race and re-read the Lease.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut round = 0;
    while !has(&attributes(&relay).0, "get", "leases") {
        if Instant::now() > deadline {
            return Err(fail(
                "the agent never re-read its Lease after a conflict",
                &agent,
            ));
        }
        round += 1;
        agent.signal(libc::SIGSTOP)?;
        let touch = ctl.clone();
        let value = round.to_string();
        api.run(async move { touch.touch(&value).await })?
            .map_err(io::Error::other)?;
        std::thread::sleep(Duration::from_millis(700));
        agent.signal(libc::SIGCONT)?;
        std::thread::sleep(Duration::from_millis(500));
    }
    agent.signal(libc::SIGTERM)?;
    let status = agent
        .wait_exit(Duration::from_secs(10))?
        .ok_or_else(|| fail("the agent did not stop on SIGTERM", &agent))?;
    assert!(status.success(), "agent exit {status:?}");

    let (requests, non_resource) = attributes(&relay);
    assert!(
        non_resource.is_empty(),
        "non-resource requests need their own rules: {non_resource:?}"
    );
    let policy = Policy::from_documents(&documents);
    let refused: Vec<&Attributes> = requests
        .iter()
        .filter(|r| !policy.allows(NAMESPACE, AGENT_NAME, r))
        .collect();
    assert!(
        refused.is_empty(),
        "requests the rendered agent RBAC refuses: {refused:#?}\nagent log:\n{}",
        agent.log_text()
    );
    let unused = policy.unused(NAMESPACE, AGENT_NAME, &requests);
    assert!(
        unused.is_empty(),
        "the rendered agent RBAC grants what the agent never does: {unused:#?}\nrequests: {requests:#?}"
    );
    eprintln!(
        "{} distinct agent requests (after {round} conflict rounds), all allowed, every rule used:",
        requests.len()
    );
    for r in &requests {
        eprintln!("  {r}");
    }

    // Neither check is vacuous: a create on Leases (what the agent's RBAC once granted) is
    // reported as unused, and without the Lease rule the agent's requests are refused.
    let mut with_create = Policy::from_documents(&documents);
    for role in &mut with_create.roles {
        for rule in role.rules.iter_mut().flatten() {
            rule.verbs.push("create".to_owned());
        }
    }
    assert!(
        with_create
            .unused(NAMESPACE, AGENT_NAME, &requests)
            .iter()
            .any(|u| u.starts_with("create coordination.k8s.io/leases")),
        "an unused create must be reported"
    );
    let mut without_leases = Policy::from_documents(&documents);
    for role in &mut without_leases.roles {
        role.rules = Some(Vec::new());
    }
    assert!(
        requests
            .iter()
            .any(|r| r.resource == "leases" && !without_leases.allows(NAMESPACE, AGENT_NAME, r)),
        "removing the Lease rule must refuse the Lease requests"
    );
    Ok(())
}
