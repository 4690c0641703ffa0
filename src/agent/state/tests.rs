//! Watch bookkeeping: stale events never replace a newer Lease, relists forget what vanished.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::lease_protocol::{GATEWAY_ANNOTATION, VIP_ANNOTATION};

fn lease(gateway: &str, rv: &str, holder: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(format!("egressc-vip-{gateway}")),
            resource_version: Some(rv.into()),
            annotations: Some(BTreeMap::from([
                (GATEWAY_ANNOTATION.to_owned(), gateway.to_owned()),
                (VIP_ANNOTATION.to_owned(), "198.51.100.100".to_owned()),
            ])),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            ..Default::default()
        }),
    }
}

fn holder(inputs: &Inputs, gateway: &str) -> Option<String> {
    lease_object::read(inputs.lease(gateway)?)?.view.holder
}

#[test]
fn a_lagging_watch_event_does_not_undo_our_write() {
    let mut inputs = Inputs::default();
    inputs.put_lease(lease("gw", "12", "a"));
    inputs.apply(Input::Lease(Event::Apply(lease("gw", "11", "b"))));
    assert_eq!(holder(&inputs, "gw").as_deref(), Some("a"));
    inputs.apply(Input::Lease(Event::Apply(lease("gw", "13", "b"))));
    assert_eq!(holder(&inputs, "gw").as_deref(), Some("b"));
    // A stale delete is ignored; a current one is not.
    inputs.apply(Input::Lease(Event::Delete(lease("gw", "12", "a"))));
    assert!(inputs.lease("gw").is_some());
    inputs.apply(Input::Lease(Event::Delete(lease("gw", "13", "b"))));
    assert!(inputs.lease("gw").is_none());
}

#[test]
fn non_numeric_versions_are_always_taken() {
    let mut inputs = Inputs::default();
    inputs.put_lease(lease("gw", "b7", "a"));
    inputs.put_lease(lease("gw", "a1", "b"));
    assert_eq!(holder(&inputs, "gw").as_deref(), Some("b"));
}

#[test]
fn a_relist_forgets_leases_that_did_not_reappear_and_vips_stay_known_from_leases() {
    let mut inputs = Inputs::default();
    inputs.put_lease(lease("gone", "5", ""));
    inputs.put_lease(lease("kept", "6", ""));
    inputs.apply(Input::Lease(Event::Init));
    inputs.apply(Input::Lease(Event::InitApply(lease("kept", "9", "a"))));
    assert!(inputs.lease("gone").is_some(), "not before InitDone");
    inputs.apply(Input::Lease(Event::InitDone));
    assert!(inputs.lease("gone").is_none());
    assert_eq!(holder(&inputs, "kept").as_deref(), Some("a"));
    let known: Vec<String> = inputs
        .known_vips()
        .iter()
        .map(|ip| ip.to_string())
        .collect();
    assert_eq!(known, vec!["198.51.100.100"]);
}

#[test]
fn dropping_the_vip_stops_the_keeper_and_keeps_the_retry_pace_and_the_yield() {
    let mut state = GatewayState::default();
    let clock = std::time::Instant::now();
    let keep = state.keep(clock);
    keep.open_until(std::time::Duration::from_secs(3600));
    keep.set_outage_hold(true);
    state.local.last_successful_send = Some(crate::time::Instant::from_secs_f64(1.0));
    state.local.last_attempt = Some(crate::time::Instant::from_secs_f64(1.0));
    state.local.vip_up = true;
    state.local.renew_failing = true;
    state.local.yielded = true;
    let closed = state.drop_vip();
    assert!(closed.is_some_and(|k| k.is_closed()));
    assert!(!keep.is_open());
    assert!(keep.is_closed());
    assert!(!state.local.holding());
    assert!(!state.local.vip_up);
    assert!(!state.local.renew_failing);
    assert!(state.local.yielded, "a yielded holder still releases");
    assert!(state.local.last_attempt.is_some());
    assert!(!state.keep(clock).is_open(), "a new hold starts closed");
    assert!(!state.keep(clock).is_closed(), "and is a new one");
}
