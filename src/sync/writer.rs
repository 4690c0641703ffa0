//! The writes of `egressc sync`, one method per kind of write. Labels and CEGPs go out by
//! server-side apply (field manager `egressc-sync`), status and label removals by merge patch,
//! VIP Leases by conditional update (a 409 means the watch brings a newer version; the next
//! reconcile decides again), Events (`events.k8s.io/v1`) by create.
//!
//! Events are created directly rather than through kube-runtime's `Recorder`: its dedup cache
//! keys on the whole object reference (resourceVersion included), so every egressc Event got a
//! key of its own, the cache grew by one entry per Event for 6 minutes (100 per failover of a
//! node carrying 100 gateways), and every publish scanned all of it under a lock.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
};
use serde_json::Value;

use super::patches::{self, Body, FIELD_MANAGER};
use super::sync_core::{EventWrite, LabelWrite, VipLeaseWrite, VipRequest};
use super::watch::{cegp_resource, cilium_node_resource};
use crate::controller::NodeKind;
use crate::model::api::{EgressGateway, EgressGatewayPolicy};

/// Holds the clients of every write.
pub struct Writer {
    nodes: Api<Node>,
    cilium_nodes: Api<DynamicObject>,
    leases: Api<Lease>,
    gateways: Api<DynamicObject>,
    policies: Api<DynamicObject>,
    cegps: Api<DynamicObject>,
    /// Events about cluster-scoped objects go to `default`, as the apiserver's own do.
    events: Api<Event>,
    /// `reportingInstance` of every Event.
    identity: String,
}

/// `reportingController` of every Event.
const REPORTING_CONTROLLER: &str = "egressc-sync";

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

impl Writer {
    /// Writer for the controller in `namespace`; Events name `identity` as the instance.
    pub fn new(client: Client, namespace: &str, identity: &str) -> Self {
        Writer {
            nodes: Api::all(client.clone()),
            cilium_nodes: Api::all_with(client.clone(), &cilium_node_resource()),
            leases: Api::namespaced(client.clone(), namespace),
            gateways: Api::all_with(client.clone(), &ApiResource::erase::<EgressGateway>(&())),
            policies: Api::all_with(
                client.clone(),
                &ApiResource::erase::<EgressGatewayPolicy>(&()),
            ),
            cegps: Api::all_with(client.clone(), &cegp_resource()),
            events: Api::namespaced(client, "default"),
            identity: identity.to_owned(),
        }
    }

    /// Applies one label patch: removals by merge patch, then the full set of egressc labels
    /// the object keeps, by apply.
    pub async fn labels(&self, write: &LabelWrite) -> Result<(), kube::Error> {
        let patch = &write.patch;
        let name = patch.node.as_str();
        if !patch.remove.is_empty() {
            let body = Patch::Merge(patches::label_removal(&patch.remove));
            let params = PatchParams::default();
            match patch.kind {
                NodeKind::Node => self.nodes.patch(name, &params, &body).await.map(drop)?,
                NodeKind::CiliumNode => self
                    .cilium_nodes
                    .patch(name, &params, &body)
                    .await
                    .map(drop)?,
            }
        }
        if patch.set.is_empty() {
            return Ok(());
        }
        let body = Patch::Apply(patches::label_apply(patch.kind, name, &write.labels));
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match patch.kind {
            NodeKind::Node => self.nodes.patch(name, &params, &body).await.map(drop),
            NodeKind::CiliumNode => self
                .cilium_nodes
                .patch(name, &params, &body)
                .await
                .map(drop),
        }
    }

    /// Makes one VIP Lease write; a lost race (409) is not an error: the watch delivers the
    /// newer version and the next plan decides again.
    pub async fn vip(&self, write: &VipLeaseWrite) -> Result<(), kube::Error> {
        let lease = write.lease.as_str();
        let result = match &write.request {
            VipRequest::Create(object) => self
                .leases
                .create(&PostParams::default(), object)
                .await
                .map(drop),
            VipRequest::Replace(updated) => self
                .leases
                .replace(lease, &PostParams::default(), updated)
                .await
                .map(drop),
            VipRequest::Delete { resource_version } => {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        resource_version: Some(resource_version.clone()),
                        uid: None,
                    }),
                    ..DeleteParams::default()
                };
                self.leases.delete(lease, &params).await.map(drop)
            }
        };
        match result {
            Err(e) if is_status(&e, 409) || is_status(&e, 404) => Ok(()),
            other => other,
        }
    }

    /// Merge-patches the status of gateway `name`.
    pub async fn gateway_status(&self, name: &str, body: Body) -> Result<(), kube::Error> {
        self.gateways
            .patch_status(name, &PatchParams::default(), &Patch::Merge(body))
            .await
            .map(drop)
    }

    /// Merge-patches the status of policy `name`.
    pub async fn policy_status(&self, name: &str, body: Body) -> Result<(), kube::Error> {
        self.policies
            .patch_status(name, &PatchParams::default(), &Patch::Merge(body))
            .await
            .map(drop)
    }

    /// Applies a CEGP. `force` only for a CEGP observed to be egressc's own: a CEGP not seen
    /// yet is applied without force, so that one someone else created in the meantime with
    /// fields of its own is refused by the API server (409) instead of being taken over.
    pub async fn apply_cegp(
        &self,
        name: &str,
        body: Value,
        force: bool,
    ) -> Result<(), kube::Error> {
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = force;
        self.cegps
            .patch(name, &params, &Patch::Apply(body))
            .await
            .map(drop)
    }

    /// Deletes a CEGP (already gone is fine), only if it is still the object observed as
    /// egressc's (`uid`): a CEGP recreated by someone else under that name is left alone.
    pub async fn delete_cegp(&self, name: &str, uid: Option<&str>) -> Result<(), kube::Error> {
        let params = DeleteParams {
            preconditions: uid.map(|uid| Preconditions {
                resource_version: None,
                uid: Some(uid.to_owned()),
            }),
            ..DeleteParams::default()
        };
        match self.cegps.delete(name, &params).await {
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Publishes an Event.
    pub async fn event(&self, write: &EventWrite) -> Result<(), kube::Error> {
        let event = new_event(
            &write.regarding,
            write.warning,
            &write.reason,
            write.note.clone(),
            &self.identity,
        );
        self.events
            .create(&PostParams::default(), &event)
            .await
            .map(drop)
    }
}

/// An Event about `regarding`, named after it and the time (as kube-runtime names them).
fn new_event(
    regarding: &ObjectReference,
    warning: bool,
    reason: &str,
    note: String,
    identity: &str,
) -> Event {
    let now = k8s_openapi::jiff::Timestamp::now();
    let name = regarding.name.as_deref().unwrap_or(REPORTING_CONTROLLER);
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some("Reconcile".to_owned()),
        reason: Some(reason.to_owned()),
        note: Some(note),
        regarding: Some(regarding.clone()),
        reporting_controller: Some(REPORTING_CONTROLLER.to_owned()),
        reporting_instance: Some(identity.to_owned()),
        type_: Some(if warning { "Warning" } else { "Normal" }.to_owned()),
        ..Event::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_its_object_reason_type_and_reporter() {
        let regarding = ObjectReference {
            api_version: Some("network.deckhouse.io/v1alpha1".to_owned()),
            kind: Some("EgressGateway".to_owned()),
            name: Some("gw".to_owned()),
            ..ObjectReference::default()
        };
        let event = new_event(&regarding, true, "Failover", "moved".to_owned(), "pod-a");
        assert!(
            event
                .metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("gw.")),
            "{event:?}"
        );
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.reason.as_deref(), Some("Failover"));
        assert_eq!(event.note.as_deref(), Some("moved"));
        assert_eq!(event.reporting_controller.as_deref(), Some("egressc-sync"));
        assert_eq!(event.reporting_instance.as_deref(), Some("pod-a"));
        assert_eq!(event.regarding, Some(regarding));
        assert!(event.event_time.is_some());
        assert_eq!(
            new_event(
                &ObjectReference::default(),
                false,
                "Valid",
                String::new(),
                "a"
            )
            .type_
            .as_deref(),
            Some("Normal")
        );
    }
}
