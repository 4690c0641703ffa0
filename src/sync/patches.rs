//! The plan's writes as request bodies: label applies, status patches and VIP Lease updates.
//! Pure, so the exact bytes sent to the API server are unit-tested.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use serde_json::{Value, json};

use crate::controller::{
    GATEWAY_ANNOTATION, GRANT_ANNOTATION, LabelPatch, NodeKind, READY_ANNOTATION, StatusUpdate,
    TransitionTime, VIP_ANNOTATION, VipWrite,
};
use crate::model::labels::{MANAGED_BY, MEMBER_LABEL, is_active_for_label};

/// Field manager of every write of `egressc sync`.
pub const FIELD_MANAGER: &str = "egressc-sync";
/// Condition type of a gateway's validity (its `Ready` belongs to the core).
pub const ACCEPTED_CONDITION: &str = "Accepted";
/// Condition reason of an object refused by validation.
pub const INVALID_REASON: &str = "InvalidSpec";

fn ours(key: &str) -> bool {
    key == MEMBER_LABEL || is_active_for_label(key)
}

/// The egressc labels the object should carry after `patch`: what it carries of ours now,
/// minus the removals, plus the additions.
pub fn owned_labels(
    observed: &BTreeMap<String, String>,
    patch: &LabelPatch,
) -> BTreeMap<String, String> {
    observed
        .iter()
        .filter(|(k, _)| ours(k) && !patch.remove.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(patch.set.clone())
        .collect()
}

/// The server-side apply body for the labels this manager owns on a Node or CiliumNode.
pub fn label_apply(kind: NodeKind, node: &str, labels: &BTreeMap<String, String>) -> Value {
    let (api_version, kind) = match kind {
        NodeKind::Node => ("v1", "Node"),
        NodeKind::CiliumNode => ("cilium.io/v2", "CiliumNode"),
    };
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": { "name": node, "labels": labels },
    })
}

/// A merge patch deleting `keys`. Removal does not rely on apply's "omit to remove", because
/// an adopted label may be owned by another field manager (a previous controller, kubectl).
pub fn label_removal(keys: &BTreeSet<String>) -> Value {
    let labels: serde_json::Map<String, Value> =
        keys.iter().map(|k| (k.clone(), Value::Null)).collect();
    json!({ "metadata": { "labels": labels } })
}

fn condition(type_: &str, status: bool, reason: &str, message: &str, at: Time) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: at,
        observed_generation: None,
    }
}

/// Replaces (or, with `None`, drops) the condition of `type_` in `conditions`.
fn upsert(conditions: &mut Vec<Condition>, type_: &str, wanted: Option<Condition>) {
    conditions.retain(|c| c.type_ != type_);
    conditions.extend(wanted);
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// The `Accepted` condition a gateway should carry: `False` with the diagnostic while it is
/// invalid, `True` once it is fixed after having been refused, none otherwise.
pub fn accepted_condition(
    stored: &[Condition],
    invalid: Option<&str>,
    now: &Time,
) -> Option<Condition> {
    let current = stored.iter().find(|c| c.type_ == ACCEPTED_CONDITION);
    let keep_or_now = |status: bool| match current {
        Some(c) if (c.status == "True") == status => c.last_transition_time.clone(),
        _ => now.clone(),
    };
    match (invalid, current) {
        (Some(message), _) => Some(condition(
            ACCEPTED_CONDITION,
            false,
            INVALID_REASON,
            message,
            keep_or_now(false),
        )),
        (None, Some(_)) => Some(condition(
            ACCEPTED_CONDITION,
            true,
            "Valid",
            "the spec is valid",
            keep_or_now(true),
        )),
        (None, None) => None,
    }
}

/// Whether `wanted` differs from the stored condition of its type (ignoring timestamps).
pub fn condition_differs(stored: &[Condition], wanted: &Condition) -> bool {
    stored
        .iter()
        .find(|c| c.type_ == wanted.type_)
        .is_none_or(|c| {
            c.status != wanted.status || c.reason != wanted.reason || c.message != wanted.message
        })
}

/// The merge patch of a gateway's status subresource: the core's update (if any) merged with
/// the stored conditions and the `Accepted` condition. Conditions are a whole list in a merge
/// patch, so every condition is sent.
pub fn gateway_status(
    update: Option<&StatusUpdate>,
    stored: &[Condition],
    accepted: Option<Condition>,
    now: &Time,
) -> Value {
    let mut conditions = stored.to_vec();
    let mut status = serde_json::Map::new();
    if let Some(update) = update {
        let at = match &update.ready.last_transition {
            TransitionTime::Keep(text) => serde_json::from_value(json!(text))
                .ok()
                .unwrap_or_else(|| now.clone()),
            TransitionTime::Now => now.clone(),
        };
        let ready = condition(
            super::convert::READY_CONDITION,
            update.ready.status,
            &update.ready.reason,
            &update.ready.message,
            at,
        );
        upsert(
            &mut conditions,
            super::convert::READY_CONDITION,
            Some(ready),
        );
        status.insert(
            "observedGeneration".into(),
            json!(update.observed_generation),
        );
        status.insert("activeNodeName".into(), json!(update.active_node));
        status.insert("readyNodes".into(), json!(update.ready_nodes));
    }
    let had_accepted = stored.iter().any(|c| c.type_ == ACCEPTED_CONDITION);
    if accepted.is_some() || had_accepted {
        upsert(&mut conditions, ACCEPTED_CONDITION, accepted);
    }
    status.insert("conditions".into(), json!(conditions));
    json!({ "status": status })
}

/// The merge patch of a policy's status: `Ready` says whether it compiled.
pub fn policy_status(generation: i64, ready: Condition) -> Value {
    json!({ "status": { "observedGeneration": generation, "conditions": [ready] } })
}

/// The `Ready` condition of a policy.
pub fn policy_ready(
    stored: &[Condition],
    invalid: Option<&str>,
    cegp: &str,
    now: &Time,
) -> Condition {
    let status = invalid.is_none();
    let at = stored
        .iter()
        .find(|c| c.type_ == super::convert::READY_CONDITION && (c.status == "True") == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    match invalid {
        Some(message) => condition(
            super::convert::READY_CONDITION,
            false,
            INVALID_REASON,
            message,
            at,
        ),
        None => condition(
            super::convert::READY_CONDITION,
            true,
            "Compiled",
            &format!("compiled into CiliumEgressGatewayPolicy {cegp}"),
            at,
        ),
    }
}

/// A new VIP Lease (no grant), for [`VipWrite::Create`].
pub fn new_vip_lease(gateway: &str, lease: &str, vip: &str, duration_seconds: u64) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(lease.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                MANAGED_BY.to_owned(),
            )])),
            annotations: Some(BTreeMap::from([
                (GATEWAY_ANNOTATION.to_owned(), gateway.to_owned()),
                (VIP_ANNOTATION.to_owned(), vip.to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            lease_duration_seconds: Some(i32::try_from(duration_seconds).unwrap_or(i32::MAX)),
            ..LeaseSpec::default()
        }),
    }
}

/// The Lease after a conditional write (`Grant` or `Withdraw`), or `None` when the stored
/// Lease is not the version the write was decided on (a newer one is on its way).
pub fn updated_vip_lease(stored: &Lease, write: &VipWrite) -> Option<Lease> {
    let (resource_version, grant, takeover) = match write {
        VipWrite::Grant {
            resource_version,
            node,
            takeover,
            ..
        } => (resource_version, node.as_str(), *takeover),
        VipWrite::Withdraw {
            resource_version, ..
        } => (resource_version, "", false),
        VipWrite::Create { .. } | VipWrite::Delete { .. } => return None,
    };
    if stored.metadata.resource_version.as_ref() != Some(resource_version) {
        return None;
    }
    let mut lease = stored.clone();
    let annotations = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(GRANT_ANNOTATION.to_owned(), grant.to_owned());
    if takeover {
        annotations.insert(READY_ANNOTATION.to_owned(), String::new());
        lease
            .spec
            .get_or_insert_with(LeaseSpec::default)
            .holder_identity = Some(String::new());
    }
    Some(lease)
}
