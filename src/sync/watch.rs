//! Watch plumbing: one kube-runtime watcher per [`Source`], each forwarding its events as
//! [`WatchEvent`]s into one channel that the reconcile loop drains. A failed watch reports
//! [`WatchEvent::Failed`] (the loop then stops writing) and is restarted from a fresh list
//! after a backoff, so it always reports `Init … InitDone` again before counting as synced.

use std::fmt::Debug;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::config::SyncConfig;
use super::index::{Object, Source, WatchEvent};
use crate::model::api::{EgressGateway, EgressGatewayPolicy};
use crate::model::labels::MANAGED_BY;

/// Namespace of kubelet heartbeat Leases.
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Objects per list page. Nine watches list at once when the controller starts, each holding
/// a page of parsed objects until it has forwarded them: pages of kube-runtime's default 500
/// were the largest part of the start's peak memory (10,000 policies and CEGPs, 5,000 Pods).
const LIST_PAGE: u32 = 100;
/// Watch events parsed but not yet indexed. A burst waits in the watchers (as bytes) rather
/// than here as parsed objects. Not fewer: the echoes of the start's 32,000 writes come
/// through here, and with 128 the loop (which re-plans a label patch until its echo is seen)
/// fell behind them for minutes in the scale bench, a new event queued behind them.
const EVENTS_IN_FLIGHT: usize = 1024;

/// The API resource of CiliumNode.
pub fn cilium_node_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cilium.io", "v2", "CiliumNode"),
        "ciliumnodes",
    )
}

/// The API resource of CiliumEgressGatewayPolicy.
pub fn cegp_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cilium.io", "v2", "CiliumEgressGatewayPolicy"),
        "ciliumegressgatewaypolicies",
    )
}

/// The label selector of everything egressc creates.
pub fn managed_selector() -> String {
    format!("app.kubernetes.io/managed-by={MANAGED_BY}")
}

/// The object as JSON, without `managedFields`: nothing reads them, and they are often
/// larger than the rest of the object (10,000 stored policies and CEGPs add up).
fn json(mut object: DynamicObject) -> serde_json::Value {
    object.metadata.managed_fields = None;
    serde_json::to_value(object).unwrap_or_default()
}

/// A watch event and when its watcher yielded it: the start of a reaction (the loop may be
/// busy when it arrives, and that wait is part of what the reaction metrics report).
#[derive(Debug)]
pub struct Seen {
    /// When the watcher yielded the event.
    pub at: Instant,
    /// The event.
    pub event: WatchEvent,
}

/// Starts every watch; events arrive on the returned channel.
pub fn spawn_all(client: &Client, config: &SyncConfig) -> mpsc::Receiver<Seen> {
    let (tx, rx) = mpsc::channel(EVENTS_IN_FLIGHT);
    let all = watcher::Config::default().page_size(LIST_PAGE);
    let managed = all.clone().labels(&managed_selector());
    let gateway = ApiResource::erase::<EgressGateway>(&());
    let policy = ApiResource::erase::<EgressGatewayPolicy>(&());
    spawn(
        Api::<Node>::all(client.clone()),
        all.clone(),
        Source::Node,
        |n| Object::Node(Box::new(n)),
        tx.clone(),
    );
    spawn(
        Api::<Lease>::namespaced(client.clone(), NODE_LEASE_NAMESPACE),
        all.clone(),
        Source::NodeLease,
        |l| Object::NodeLease(Box::new(l)),
        tx.clone(),
    );
    // Only the name and labels of a CiliumNode matter here, and its spec (IPAM pools,
    // health and encryption addresses) is most of it: metadata only.
    // (`Api<PartialObjectMeta<_>>` asks for `PartialObjectMetadata`.)
    spawn(
        Api::<PartialObjectMeta<DynamicObject>>::all_with(client.clone(), &cilium_node_resource()),
        all.clone(),
        Source::CiliumNode,
        |o| Object::CiliumNode(metadata_json(o)),
        tx.clone(),
    );
    spawn(
        Api::<Pod>::namespaced(client.clone(), &config.cilium_namespace),
        all.clone().labels(&config.cilium_selector),
        Source::CiliumPod,
        |p| Object::CiliumPod(Box::new(p)),
        tx.clone(),
    );
    spawn(
        Api::<Pod>::namespaced(client.clone(), &config.namespace),
        all.clone().labels(&config.vip_agent_selector),
        Source::VipPod,
        |p| Object::VipPod(Box::new(p)),
        tx.clone(),
    );
    spawn(
        Api::<Lease>::namespaced(client.clone(), &config.namespace),
        managed,
        Source::VipLease,
        |l| Object::VipLease(Box::new(l)),
        tx.clone(),
    );
    spawn(
        Api::<DynamicObject>::all_with(client.clone(), &gateway),
        all.clone(),
        Source::Gateway,
        |o| Object::Gateway(json(o)),
        tx.clone(),
    );
    spawn(
        Api::<DynamicObject>::all_with(client.clone(), &policy),
        all.clone(),
        Source::Policy,
        |o| Object::Policy(json(o)),
        tx.clone(),
    );
    // Every CEGP, not only egressc's: a policy whose CEGP name is taken by someone else's
    // object must be seen as a conflict, never written over (see `CegpSummary::is_owned`).
    spawn(
        Api::<DynamicObject>::all_with(client.clone(), &cegp_resource()),
        all,
        Source::Cegp,
        |o| Object::Cegp(json(o)),
        tx,
    );
    rx
}

/// A metadata-only object as the JSON the index reads (`metadata` without `managedFields`).
fn metadata_json<K>(mut object: PartialObjectMeta<K>) -> serde_json::Value {
    object.metadata.managed_fields = None;
    serde_json::json!({ "metadata": object.metadata })
}

/// Watches `api` as `source`, forwarding its events; restarts from a fresh list after a
/// failure.
fn spawn<K>(
    api: Api<K>,
    config: watcher::Config,
    source: Source,
    wrap: fn(K) -> Object,
    tx: mpsc::Sender<Seen>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut stream = watcher::watcher(api.clone(), config.clone()).boxed();
            while let Some(item) = stream.next().await {
                let event = match item {
                    Ok(Event::Init) => WatchEvent::Init(source),
                    Ok(Event::InitApply(k) | Event::Apply(k)) => WatchEvent::Apply(wrap(k)),
                    Ok(Event::Delete(k)) => WatchEvent::Delete(wrap(k)),
                    Ok(Event::InitDone) => {
                        backoff = Duration::from_millis(100);
                        WatchEvent::InitDone(source)
                    }
                    Err(error) => {
                        tracing::warn!(?source, %error, "watch failed; relisting");
                        let failed = Seen {
                            at: Instant::now(),
                            event: WatchEvent::Failed(source),
                        };
                        if tx.send(failed).await.is_err() {
                            return;
                        }
                        break;
                    }
                };
                let seen = Seen {
                    at: Instant::now(),
                    event,
                };
                if tx.send(seen).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
}
