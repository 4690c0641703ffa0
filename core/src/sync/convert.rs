//! API objects → the controller core's observations. Pure functions over k8s-openapi types, so
//! every rule (what counts as Ready, which Lease field is the heartbeat) is unit-tested without
//! an API server.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde_json::Value;

use crate::controller::{
    GATEWAY_ANNOTATION, GRANT_ANNOTATION, NodeObservation, ObservedCondition, ObservedStatus,
    READY_ANNOTATION, VipLeaseObservation,
};

pub use crate::controller::conditions::READY_CONDITION;

/// A Node as the core sees it; `None` when the object has no name.
pub fn node(node: &Node) -> Option<NodeObservation> {
    let name = node.metadata.name.clone()?;
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|conds| conds.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    Some(NodeObservation {
        name,
        labels: node.metadata.labels.clone().unwrap_or_default(),
        ready,
        unschedulable: node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        deleting: node.metadata.deletion_timestamp.is_some(),
    })
}

/// The node's first `InternalIP` in `status.addresses` (where its Cilium health endpoint
/// and VIP agent listen); `None` without a parsable one.
pub fn internal_ip(node: &Node) -> Option<std::net::IpAddr> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse().ok())
}

/// A kubelet heartbeat Lease (kube-node-lease): (node name, renewTime as an opaque string).
/// kubelet names the Lease after its node; a Lease never renewed reports an empty renewTime.
pub fn node_heartbeat(lease: &Lease) -> Option<(String, String)> {
    let node = lease.metadata.name.clone()?;
    let renew = lease
        .spec
        .as_ref()
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    Some((node, renew))
}

/// An agent Pod: (key `namespace/name`, node, Ready). `None` until the Pod is scheduled.
pub fn agent_pod(pod: &Pod) -> Option<(String, String, bool)> {
    let name = pod.metadata.name.as_deref()?;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let node = pod.spec.as_ref()?.node_name.clone()?;
    let ready = pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|conds| conds.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
    Some((pod_key(namespace, name), node, ready))
}

/// The key the core knows a Pod by: Pods of different namespaces may share a name.
pub fn pod_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// A VIP Lease: (gateway, observation). `None` for Leases without the gateway annotation.
pub fn vip_lease(lease: &Lease) -> Option<(String, VipLeaseObservation)> {
    let annotations = lease.metadata.annotations.as_ref()?;
    let gateway = annotations.get(GATEWAY_ANNOTATION)?.clone();
    let non_empty = |v: Option<&String>| v.filter(|s| !s.is_empty()).cloned();
    let spec = lease.spec.as_ref();
    Some((
        gateway,
        VipLeaseObservation {
            resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
            grant: non_empty(annotations.get(GRANT_ANNOTATION)),
            holder: non_empty(spec.and_then(|s| s.holder_identity.as_ref())),
            ready: non_empty(annotations.get(READY_ANNOTATION)),
            renew_time: spec
                .and_then(|s| s.renew_time.as_ref())
                .map(|t| t.0.to_string()),
        },
    ))
}

/// `metadata.labels` of a CiliumNode (or any object as JSON).
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The stored conditions of an object's status (as JSON); unreadable entries are skipped.
pub fn conditions_of(object: &Value) -> Vec<Condition> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|c| serde_json::from_value(c.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The status the core compares its wanted status with, from the gateway object (as JSON).
pub fn gateway_status(object: &Value) -> Option<ObservedStatus> {
    let status = object.get("status")?;
    let ready = conditions_of(object)
        .into_iter()
        .find(|c| c.type_ == READY_CONDITION)
        .map(|c| ObservedCondition {
            status: c.status == "True",
            reason: c.reason,
            message: c.message,
            last_transition: serde_json::to_value(&c.last_transition_time)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        });
    Some(ObservedStatus {
        observed_generation: status.get("observedGeneration").and_then(Value::as_i64),
        active_node: status
            .get("activeNodeName")
            .and_then(Value::as_str)
            .map(str::to_owned),
        ready_nodes: status.get("readyNodes").and_then(Value::as_i64),
        ready,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).expect("valid test object")
    }

    #[test]
    fn node_ready_cordon_and_deletion_are_read() {
        let n: Node = from(json!({
            "metadata": {"name": "n1", "labels": {"role": "egress"},
                         "deletionTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"unschedulable": true},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "True"},
                {"type": "Ready", "status": "True"}]}
        }));
        let seen = node(&n).expect("named");
        assert_eq!(seen.name, "n1");
        assert!(seen.ready && seen.unschedulable && seen.deleting);
        assert_eq!(seen.labels.get("role").map(String::as_str), Some("egress"));
        let not_ready: Node = from(json!({"metadata": {"name": "n2"},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}));
        let seen = node(&not_ready).expect("named");
        assert!(!seen.ready && !seen.unschedulable && !seen.deleting);
    }

    #[test]
    fn pods_need_a_node_and_a_true_ready_condition() {
        let pod = |node: Option<&str>, ready: &str| -> Pod {
            from(
                json!({"metadata": {"name": "cilium-x", "namespace": "kube-system"},
                "spec": {"containers": [], "nodeName": node},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}}),
            )
        };
        assert_eq!(
            agent_pod(&pod(Some("n1"), "True")),
            Some(("kube-system/cilium-x".to_owned(), "n1".to_owned(), true))
        );
        assert_eq!(
            agent_pod(&pod(Some("n1"), "False")).map(|p| p.2),
            Some(false)
        );
        assert_eq!(agent_pod(&pod(None, "True")), None);
    }

    #[test]
    fn vip_lease_reads_grant_holder_ready_and_treats_empty_as_none() {
        let lease: Lease = from(json!({
            "metadata": {"name": "egressc-vip-gw", "resourceVersion": "42",
                "annotations": {GATEWAY_ANNOTATION: "gw", GRANT_ANNOTATION: "n1",
                                READY_ANNOTATION: ""}},
            "spec": {"holderIdentity": "n1", "renewTime": "2025-01-01T00:00:01.000000Z"}
        }));
        let (gateway, seen) = vip_lease(&lease).expect("annotated");
        assert_eq!(gateway, "gw");
        assert_eq!(seen.resource_version, "42");
        assert_eq!(seen.grant.as_deref(), Some("n1"));
        assert_eq!(seen.holder.as_deref(), Some("n1"));
        assert_eq!(seen.ready, None);
        assert!(seen.renew_time.is_some());
        let foreign: Lease = from(json!({"metadata": {"name": "other"}}));
        assert_eq!(vip_lease(&foreign), None);
    }

    #[test]
    fn heartbeat_changes_with_renew_time() {
        let lease = |t: &str| -> Lease {
            from(json!({"metadata": {"name": "n1"},
                "spec": {"holderIdentity": "n1", "renewTime": t}}))
        };
        let a = node_heartbeat(&lease("2025-01-01T00:00:01.000000Z")).expect("named");
        let b = node_heartbeat(&lease("2025-01-01T00:00:02.000000Z")).expect("named");
        assert_eq!(a.0, "n1");
        assert_ne!(a.1, b.1);
    }

    #[test]
    fn gateway_status_keeps_transition_time_verbatim() {
        let gw = json!({"status": {"observedGeneration": 3, "activeNodeName": "n1",
            "readyNodes": 2, "conditions": [{"type": "Ready", "status": "True",
            "reason": "Elected", "message": "m", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}});
        let seen = gateway_status(&gw).expect("has status");
        assert_eq!(seen.observed_generation, Some(3));
        assert_eq!(seen.active_node.as_deref(), Some("n1"));
        assert_eq!(seen.ready_nodes, Some(2));
        let ready = seen.ready.expect("Ready condition");
        assert!(ready.status);
        assert_eq!(ready.last_transition, "2025-01-01T00:00:00Z");
        assert_eq!(gateway_status(&json!({"spec": {}})), None);
    }
}
