//! The VIP Lease as a Kubernetes object: reading a [`LeaseView`] from it and producing the
//! agent's writes (docs/lease-protocol.md, "The Lease" and "Agent rules"). Pure: the wall-clock
//! time written into `acquireTime`/`renewTime` is passed in. Each write keeps the
//! `metadata.resourceVersion` it was read with, so the shell's `replace` is conditional and a
//! lost race fails with 409 Conflict.

use std::net::IpAddr;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

use crate::agent::lease::LeaseView;
use crate::lease_protocol::{
    GATEWAY_ANNOTATION, GRANT_ANNOTATION, READY_ANNOTATION, TAKEOVER_ANNOTATION, VIP_ANNOTATION,
};

/// Label the controller puts on every VIP Lease; the agent watches Leases by it.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=egressc";

/// What the agent reads from a Lease: the protocol fields, and which gateway and VIP it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipLease {
    /// The gateway (from the annotation: the Lease name may be hashed).
    pub gateway: String,
    /// The VIP annotation, if present and an IP address.
    pub vip: Option<IpAddr>,
    /// The protocol fields.
    pub view: LeaseView,
}

/// Reads `lease`; `None` when it carries no gateway annotation (not a VIP Lease).
pub fn read(lease: &Lease) -> Option<VipLease> {
    let annotation = |key: &str| non_empty(lease.metadata.annotations.as_ref()?.get(key));
    let gateway = annotation(GATEWAY_ANNOTATION)?;
    Some(VipLease {
        gateway,
        vip: annotation(VIP_ANNOTATION).and_then(|v| v.parse().ok()),
        view: LeaseView {
            resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
            grant: annotation(GRANT_ANNOTATION),
            holder: non_empty(lease.spec.as_ref().and_then(|s| s.holder_identity.as_ref())),
            ready: annotation(READY_ANNOTATION),
            takeover: annotation(TAKEOVER_ANNOTATION).is_some(),
        },
    })
}

fn non_empty(value: Option<&String>) -> Option<String> {
    value.filter(|v| !v.is_empty()).cloned()
}

/// Agent rule 1: `holderIdentity = me`, `acquireTime = renewTime = now`, one more transition.
/// A stale `vip-ready` (another node's) and the takeover mark are cleared (the mark is consumed:
/// this acquirer probes before its bring-up).
pub fn acquired(lease: &Lease, me: &str, now: Timestamp) -> Lease {
    let mut out = lease.clone();
    let spec = out.spec.get_or_insert_with(Default::default);
    spec.holder_identity = Some(me.to_owned());
    spec.acquire_time = Some(MicroTime(now));
    spec.renew_time = Some(MicroTime(now));
    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    set_annotation(&mut out, READY_ANNOTATION, "");
    set_annotation(&mut out, TAKEOVER_ANNOTATION, "");
    out
}

/// Agent rules 2 and 3: a new `renewTime`; with `mark_ready` also `vip-ready = me`.
pub fn renewed(lease: &Lease, me: &str, now: Timestamp, mark_ready: bool) -> Lease {
    let mut out = lease.clone();
    out.spec.get_or_insert_with(Default::default).renew_time = Some(MicroTime(now));
    if mark_ready {
        set_annotation(&mut out, READY_ANNOTATION, me);
    }
    out
}

/// Agent rule 4: `holderIdentity = ""`, `vip-ready = ""`.
pub fn released(lease: &Lease) -> Lease {
    let mut out = lease.clone();
    out.spec
        .get_or_insert_with(Default::default)
        .holder_identity = Some(String::new());
    set_annotation(&mut out, READY_ANNOTATION, "");
    out
}

fn set_annotation(lease: &mut Lease, key: &str, value: &str) {
    let annotations = lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    if value.is_empty() && !annotations.contains_key(key) {
        return;
    }
    annotations.insert(key.to_owned(), value.to_owned());
}

/// The `resourceVersion` as a number, to drop watch events older than a write response already
/// seen. The API only promises opaque strings; for non-numeric versions every event is taken.
pub fn resource_version_number(lease: &Lease) -> Option<u64> {
    lease.metadata.resource_version.as_deref()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn lease(grant: &str, holder: &str, ready: &str) -> Lease {
        let annotations = BTreeMap::from([
            (GATEWAY_ANNOTATION.to_owned(), "gw".to_owned()),
            (VIP_ANNOTATION.to_owned(), "198.51.100.100".to_owned()),
            (GRANT_ANNOTATION.to_owned(), grant.to_owned()),
            (READY_ANNOTATION.to_owned(), ready.to_owned()),
        ]);
        Lease {
            metadata: ObjectMeta {
                name: Some("egressc-vip-gw".into()),
                resource_version: Some("41".into()),
                annotations: Some(annotations),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_owned()),
                lease_duration_seconds: Some(3),
                lease_transitions: Some(4),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn empty_strings_read_as_absent() {
        let read = read(&lease("a", "", "")).map(|l| (l.gateway, l.vip, l.view));
        let expected_view = LeaseView {
            resource_version: "41".into(),
            grant: Some("a".into()),
            holder: None,
            ready: None,
            takeover: false,
        };
        assert_eq!(
            read,
            Some(("gw".into(), "198.51.100.100".parse().ok(), expected_view))
        );
    }

    #[test]
    fn a_lease_without_the_gateway_annotation_is_not_ours() {
        let mut other = lease("a", "", "");
        other.metadata.annotations = None;
        assert_eq!(read(&other), None);
    }

    #[test]
    fn acquire_sets_holder_times_and_transitions_and_keeps_the_resource_version() {
        let now = Timestamp::from_second(1_700_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let mut taken_over = lease("a", "", "b");
        if let Some(annotations) = taken_over.metadata.annotations.as_mut() {
            annotations.insert(TAKEOVER_ANNOTATION.to_owned(), "b".to_owned());
        }
        assert_eq!(read(&taken_over).map(|l| l.view.takeover), Some(true));
        let out = acquired(&taken_over, "a", now);
        assert_eq!(read(&out).map(|l| l.view.takeover), Some(false));
        let spec = out.spec.clone().unwrap_or_default();
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.acquire_time, Some(MicroTime(now)));
        assert_eq!(spec.renew_time, Some(MicroTime(now)));
        assert_eq!(spec.lease_transitions, Some(5));
        assert_eq!(out.metadata.resource_version.as_deref(), Some("41"));
        assert_eq!(read(&out).and_then(|l| l.view.ready), None);
    }

    #[test]
    fn renew_marks_ready_only_when_asked_and_release_clears_holder_and_ready() {
        let now = Timestamp::UNIX_EPOCH;
        let held = lease("a", "a", "");
        assert_eq!(
            read(&renewed(&held, "a", now, false)).and_then(|l| l.view.ready),
            None
        );
        let ready = renewed(&held, "a", now, true);
        assert_eq!(
            read(&ready).and_then(|l| l.view.ready).as_deref(),
            Some("a")
        );
        let gone = read(&released(&ready)).map(|l| l.view);
        assert_eq!(gone.as_ref().map(|v| v.holder.clone()), Some(None));
        assert_eq!(gone.map(|v| v.ready), Some(None));
    }
}
