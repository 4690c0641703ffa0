//! The RBAC `egressc install` renders is enough for `egressc sync`: the real binary runs
//! against kube-testserver (which does no authorization) through a relay that records every
//! API request; each request is then checked against the rendered Roles, ClusterRoles and
//! bindings of the controller's ServiceAccount. The scenario exercises leader election, the
//! initial election (label apply on Node and CiliumNode), CEGP apply, status, Events, a
//! failover (label removal) and a policy deletion. (The CEGP then goes by its owner reference,
//! so `sync`'s own CEGP delete is not exercised here; the VIP Lease writes need a VIP gateway
//! and an agent and are not either — both are covered by the same namespace Lease rule and
//! CEGP rule that the leader Lease and the CEGP apply do exercise.) Every granted permission
//! the scenario leaves unused must be listed with its reason (`UNUSED_HERE`), so no grant is
//! added for nothing.

mod support;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};

use egressc::render::{InstallOptions, Renderer, Templates};
use kube::api::DeleteParams;
use serde_json::Value;
use support::cluster::{Cluster, NAMESPACE, cegps, eventually, gateways, policies};
use support::rbac::{Attributes, Policy};
use support::relay::Relay;

const SERVICE_ACCOUNT: &str = "egressc-sync";

/// Grants the scenario leaves unused, each for a reason. Paths not run here: a CEGP `sync`
/// deletes itself (here the owner reference removes it), VIP Leases (create, update, delete:
/// need a VIP gateway and an agent). `create` on CEGPs: server-side apply of a new object is
/// a PATCH that the API server also authorizes as `create`. `patch` on Events: the recorder
/// patches a repeated Event's count.
const UNUSED_HERE: &[&str] = &[
    "create cilium.io/ciliumegressgatewaypolicies in (cluster role)",
    "delete cilium.io/ciliumegressgatewaypolicies in (cluster role)",
    "delete coordination.k8s.io/leases in egressc-system",
    "update coordination.k8s.io/leases in egressc-system",
    "patch events.k8s.io/events in default",
];

/// A running `egressc sync`; killed on drop.
struct Sync(Child);

impl Drop for Sync {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The install manifests for the test's namespace, rendered in-process (the CLI wrapper is
/// tested in `cli_install.rs`).
fn install_documents() -> Vec<Value> {
    let options = InstallOptions {
        namespace: NAMESPACE.to_string(),
        cilium: "1.19".parse().expect("version"),
        ..InstallOptions::default()
    };
    let text = Renderer::new(&Templates::builtin())
        .and_then(|r| r.render_install(&options))
        .expect("install renders");
    serde_saphyr::from_str_multiple(&text).expect("YAML")
}

fn denied(policy: &Policy, requests: &BTreeSet<Attributes>) -> Vec<Attributes> {
    requests
        .iter()
        .filter(|r| !policy.allows(NAMESPACE, SERVICE_ACCOUNT, r))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_sync_is_allowed_by_the_installed_rbac() {
    let cluster = Cluster::start(&["n1", "n2"]).await;
    let relay = Relay::start(cluster.server.port()).await;
    let kubeconfig = cluster.dir.path().join("relay-kubeconfig");
    std::fs::write(
        &kubeconfig,
        cluster.server.kubeconfig_yaml().replace(
            &cluster.server.url(),
            &format!("http://127.0.0.1:{}", relay.port),
        ),
    )
    .expect("kubeconfig");
    let log = cluster.dir.path().join("sync.log");
    let sync = Sync(
        Command::new(env!("CARGO_BIN_EXE_egressc"))
            .args(["sync", "--namespace", NAMESPACE])
            .args(["--metrics-addr", "127.0.0.1:0", "--cilium-version", "1.19"])
            .args(["--node-lease-grace", "3s", "--settle", "1s"])
            .args(["--leader-lease-duration", "3s", "--identity", "rbac"])
            .env("KUBECONFIG", &kubeconfig)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("egressc sync starts"),
    );

    let first = cluster.wait_active(&[]).await;
    eventually("the CEGP is applied", || async {
        cegps(&cluster.client)
            .get_opt("p")
            .await
            .ok()
            .flatten()
            .is_some()
    })
    .await;
    eventually("the gateway status names the active node", || async {
        let gw = gateways(&cluster.client).get("gw").await.expect("gateway");
        serde_json::to_value(gw).unwrap_or_default()["status"]["activeNodeName"] == first.as_str()
    })
    .await;
    eventually("an Event is published", || async {
        !cluster.events().await.is_empty()
    })
    .await;
    cluster.set_ready(&first, false).await;
    cluster.wait_active(&[&first]).await;
    policies(&cluster.client)
        .delete("p", &DeleteParams::default())
        .await
        .expect("policy deleted");
    eventually("the CEGP is deleted", || async {
        cegps(&cluster.client)
            .get_opt("p")
            .await
            .ok()
            .flatten()
            .is_none()
    })
    .await;
    drop(sync);

    let recorded = relay.requests();
    let requests: BTreeSet<Attributes> = recorded
        .iter()
        .filter_map(|r| support::rbac::attributes(&r.method, &r.target))
        // Names do not matter to the rendered rules (none uses resourceNames); dropping them
        // keeps the report short.
        .map(|a| Attributes { name: None, ..a })
        .collect();
    let non_resource: Vec<&str> = recorded
        .iter()
        .filter(|r| support::rbac::attributes(&r.method, &r.target).is_none())
        .map(|r| r.target.as_str())
        .collect();
    assert!(
        non_resource.is_empty(),
        "non-resource requests need their own rules: {non_resource:?}"
    );
    for (verb, resource) in [
        ("patch", "nodes"),
        ("patch", "ciliumnodes"),
        ("patch", "ciliumegressgatewaypolicies"),
        ("patch", "egressgateways/status"),
        ("create", "events"),
        ("create", "leases"),
        ("watch", "pods"),
    ] {
        assert!(
            requests
                .iter()
                .any(|r| r.verb == verb && r.resource == resource),
            "the scenario must exercise {verb} {resource}; seen: {requests:#?}"
        );
    }

    let documents = install_documents();
    let policy = Policy::from_documents(&documents);
    let refused = denied(&policy, &requests);
    assert!(
        refused.is_empty(),
        "requests the installed RBAC refuses: {refused:#?}\nsync log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    eprintln!(
        "{} requests, {} distinct (verb, group, resource, namespace), all allowed:",
        recorded.len(),
        requests.len()
    );
    for r in &requests {
        eprintln!("  {r}");
    }

    // Every permission the scenario does not use is accounted for: a grant added for
    // nothing (a `create` or `patch` sync never issues) fails here.
    let unused: BTreeSet<String> = policy
        .unused(NAMESPACE, SERVICE_ACCOUNT, &requests)
        .into_iter()
        .collect();
    let unexplained: Vec<&String> = unused
        .iter()
        .filter(|u| !UNUSED_HERE.contains(&u.as_str()))
        .collect();
    assert!(
        unexplained.is_empty(),
        "the installed RBAC grants what sync does not use here, for no stated reason: \
         {unexplained:#?}"
    );

    // The check is not vacuous: without the node rule the same requests are refused.
    let mut without_nodes = Policy::from_documents(&documents);
    for role in &mut without_nodes.cluster_roles {
        if let Some(rules) = role.rules.as_mut() {
            rules.retain(|r| r.resources.as_deref() != Some(&["nodes".to_string()]));
        }
    }
    assert!(
        denied(&without_nodes, &requests)
            .iter()
            .any(|r| r.resource == "nodes"),
        "removing the node rule must refuse the node requests"
    );
}
