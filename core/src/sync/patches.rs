//! The plan's writes as request bodies: label applies, status patches and VIP Lease updates.
//! Pure, so the exact bytes sent to the API server are unit-tested.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::controller::{
    GATEWAY_ANNOTATION, GRANT_ANNOTATION, LabelKeys, LabelPatch, LabelSet, NodeKind,
    READY_ANNOTATION, StatusUpdate, TAKEOVER_ANNOTATION, TransitionTime, VIP_ANNOTATION, VipWrite,
};
use crate::model::labels::{MANAGED_BY, is_egressc_node_label};

/// Field manager of every write of `egressc sync`.
pub const FIELD_MANAGER: &str = "egressc-sync";
pub use crate::controller::conditions::{
    ACCEPTED_CONDITION, CEGP_CONFLICT_REASON, INVALID_REASON, cegp_conflict_message,
};

/// A request body serialised once and kept as its JSON text. A plan holds 11,000 status
/// patches after a start; as `serde_json::Value`s (a `BTreeMap` per JSON object) a policy's
/// cost ~2 KB, as text ~250 bytes. Sent as is: the bytes are those of the `Value` it was
/// made from.
#[derive(Clone, Debug)]
pub struct Body(Box<RawValue>);

impl Body {
    /// `value`'s JSON text.
    pub fn of(value: &Value) -> Body {
        Body(serde_json::value::to_raw_value(value).expect("a Value always serialises"))
    }

    /// The JSON text.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// The body parsed again (for tests and simulations).
    pub fn value(&self) -> Value {
        serde_json::from_str(self.text()).expect("valid JSON text")
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        self.text() == other.text()
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// The egressc labels the object should carry after `patch`: what it carries of ours now,
/// minus the removals, plus the additions.
pub fn owned_labels(observed: &BTreeMap<String, String>, patch: &LabelPatch) -> LabelSet {
    observed
        .iter()
        .filter(|(k, _)| is_egressc_node_label(k) && !patch.remove.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(patch.set.clone())
        .collect()
}

/// The server-side apply body for the labels this manager owns on a Node or CiliumNode.
pub fn label_apply(kind: NodeKind, node: &str, labels: &LabelSet) -> Value {
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
pub fn label_removal(keys: &LabelKeys) -> Value {
    let labels: serde_json::Map<String, Value> =
        keys.iter().map(|k| (k.clone(), Value::Null)).collect();
    json!({ "metadata": { "labels": labels } })
}

/// Replaces (or, with `None`, drops) the condition of `type_` in `conditions`.
fn upsert(conditions: &mut Vec<Condition>, type_: &str, wanted: Option<Condition>) {
    conditions.retain(|c| c.type_ != type_);
    conditions.extend(wanted);
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// The merge patch of a gateway's status subresource: the core's update (if any) merged with
/// the stored conditions and the `Accepted` condition. Conditions are a whole list in a merge
/// patch, so every condition is sent.
pub fn gateway_status(
    update: Option<&StatusUpdate>,
    stored: &[Condition],
    accepted: Option<Condition>,
    now: &Time,
) -> Body {
    let mut conditions = stored.to_vec();
    let mut status = serde_json::Map::new();
    if let Some(update) = update {
        let at = match &update.ready.last_transition {
            TransitionTime::Keep(text) => serde_json::from_value(json!(text))
                .ok()
                .unwrap_or_else(|| now.clone()),
            TransitionTime::Now => now.clone(),
        };
        let ready = Condition {
            type_: super::convert::READY_CONDITION.to_owned(),
            status: if update.ready.status { "True" } else { "False" }.to_owned(),
            reason: update.ready.reason.clone(),
            message: update.ready.message.clone(),
            last_transition_time: at,
            observed_generation: None,
        };
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
    Body::of(&json!({ "status": status }))
}

/// The merge patch of a policy's status: `Ready` says whether it compiled.
pub fn policy_status(generation: i64, ready: Condition) -> Body {
    Body::of(&json!({ "status": { "observedGeneration": generation, "conditions": [ready] } }))
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
        // Marks the takeover for the next holder, which probes the LAN before its bring-up;
        // the value names the holder that was cleared (for humans).
        let old_holder = stored
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default();
        annotations.insert(TAKEOVER_ANNOTATION.to_owned(), old_holder);
        annotations.insert(READY_ANNOTATION.to_owned(), String::new());
        lease
            .spec
            .get_or_insert_with(LeaseSpec::default)
            .holder_identity = Some(String::new());
    }
    Some(lease)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::ConditionUpdate;
    use crate::controller::conditions::gateway_accepted;
    use crate::model::labels::MEMBER_LABEL;

    fn at(text: &str) -> Time {
        serde_json::from_value(json!(text)).expect("timestamp")
    }

    #[test]
    fn label_apply_keeps_owned_labels_and_drops_removed_ones() {
        let active = crate::model::labels::active_for_label("gw");
        let observed = BTreeMap::from([
            (MEMBER_LABEL.to_owned(), String::new()),
            (active.clone(), String::new()),
            ("role".to_owned(), "egress".to_owned()),
        ]);
        let patch = LabelPatch {
            kind: NodeKind::CiliumNode,
            node: "n1".into(),
            set: LabelSet::default(),
            remove: [active.clone()].into_iter().collect(),
        };
        let keep = owned_labels(&observed, &patch);
        assert_eq!(
            keep,
            [(MEMBER_LABEL.to_owned(), String::new())]
                .into_iter()
                .collect()
        );
        let body = label_apply(NodeKind::CiliumNode, "n1", &keep);
        assert_eq!(body["apiVersion"], "cilium.io/v2");
        assert_eq!(
            body["metadata"]["labels"].as_object().map(|m| m.len()),
            Some(1)
        );
        let removal = label_removal(&patch.remove);
        assert_eq!(removal["metadata"]["labels"][&active], Value::Null);
    }

    #[test]
    fn a_body_is_the_text_of_its_value() {
        let ready = gateway_accepted(&[], Some("bad"), &at("2025-01-01T00:00:00Z")).expect("bad");
        let value = json!({ "status": { "observedGeneration": 3, "conditions": [ready.clone()] } });
        let body = policy_status(3, ready);
        assert_eq!(body.text(), serde_json::to_string(&value).expect("text"));
        assert_eq!(
            serde_json::to_string(&body).expect("sent as is"),
            body.text()
        );
        assert_eq!(body.value(), value);
    }

    #[test]
    fn gateway_status_keeps_other_conditions_and_transition_time() {
        let stored =
            vec![gateway_accepted(&[], Some("bad"), &at("2025-01-01T00:00:00Z")).expect("refused")];
        let update = StatusUpdate {
            gateway: "gw".into(),
            observed_generation: 2,
            active_node: Some("n1".into()),
            ready_nodes: 3,
            ready: ConditionUpdate {
                status: true,
                reason: "Elected".into(),
                message: "node n1 carries the gateway".into(),
                last_transition: TransitionTime::Keep("2025-02-02T00:00:00Z".into()),
            },
        };
        let now = at("2025-03-03T00:00:00Z");
        // Fixed: Accepted flips to True with a new transition time.
        let accepted = gateway_accepted(&stored, None, &now);
        let body = gateway_status(Some(&update), &stored, accepted, &now).value();
        let conditions = body["status"]["conditions"].as_array().expect("list");
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0]["type"], "Accepted");
        assert_eq!(conditions[0]["status"], "True");
        assert_eq!(conditions[0]["lastTransitionTime"], "2025-03-03T00:00:00Z");
        assert_eq!(conditions[1]["type"], "Ready");
        assert_eq!(conditions[1]["lastTransitionTime"], "2025-02-02T00:00:00Z");
        assert_eq!(body["status"]["activeNodeName"], "n1");
        assert_eq!(body["status"]["readyNodes"], 3);
    }

    #[test]
    fn vip_updates_are_conditional_on_the_version_they_were_decided_on() {
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": "egressc-vip-gw", "resourceVersion": "7",
                "annotations": {GRANT_ANNOTATION: "", READY_ANNOTATION: "n0"}},
            "spec": {"holderIdentity": "n0"}
        }))
        .expect("lease");
        let grant = |rv: &str| VipWrite::Grant {
            gateway: "gw".into(),
            lease: "egressc-vip-gw".into(),
            resource_version: rv.into(),
            node: "n1".into(),
            takeover: true,
        };
        assert_eq!(updated_vip_lease(&lease, &grant("6")), None);
        let updated = updated_vip_lease(&lease, &grant("7")).expect("same version");
        let annotations = updated.metadata.annotations.expect("annotations");
        assert_eq!(annotations[GRANT_ANNOTATION], "n1");
        assert_eq!(annotations[READY_ANNOTATION], "");
        assert_eq!(annotations[TAKEOVER_ANNOTATION], "n0", "marks the takeover");
        assert_eq!(
            updated.spec.and_then(|s| s.holder_identity).as_deref(),
            Some("")
        );
        assert_eq!(updated.metadata.resource_version.as_deref(), Some("7"));
    }
}
