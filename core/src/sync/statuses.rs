//! Which gateway and policy status patches one reconcile needs, as data: the core's status
//! updates plus the `Accepted` / `Ready` conditions from validation, for every object whose
//! stored status differs. Pure, so the per-reconcile cost of this scan is benchmarked and
//! tested without an API server.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use super::convert;
use super::index::Index;
use super::objects::Verdict;
use super::patches::{self, Body};
use crate::controller::conditions::{self, PolicyState};
use crate::controller::{Plan, StatusUpdate};

/// Status merge patches to send: `(object name, body)` per kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusBodies {
    /// EgressGateway status patches.
    pub gateways: Vec<(String, Body)>,
    /// EgressGatewayPolicy status patches.
    pub policies: Vec<(String, Body)>,
}

/// The status patches `plan` and the validation verdicts in `index` ask for; `now` is the wall
/// clock for new condition transition times. Only policies changed or re-checked since the
/// last call are looked at; the caller marks a policy whose write failed with
/// [`super::objects::PolicyStore::unsettle`].
pub fn bodies(index: &mut Index, plan: &Plan, now: &Time) -> StatusBodies {
    StatusBodies {
        gateways: gateways(index, &plan.statuses, now),
        policies: policies(index, now),
    }
}

/// The gateway half of [`bodies`]: the election's `updates` merged with `Accepted`.
pub fn gateways(index: &mut Index, updates: &[StatusUpdate], now: &Time) -> Vec<(String, Body)> {
    let unsettled = index.gateways.take_unsettled();
    gateway_bodies(index, &unsettled, updates, now)
}

/// The policy half of [`bodies`]: settles the deferred policy checks first.
pub fn policies(index: &mut Index, now: &Time) -> Vec<(String, Body)> {
    index.settle_policies();
    let unsettled = index.policies.take_unsettled();
    policy_bodies(index, &unsettled, now)
}

fn message(verdict: &Verdict) -> Option<&str> {
    match verdict {
        Verdict::Invalid(m) => Some(m.as_str()),
        Verdict::Valid => None,
    }
}

/// Bodies for the gateways the core has an update for and those changed since the last call
/// (`unsettled`: their `Accepted` condition may be stale).
fn gateway_bodies(
    index: &Index,
    unsettled: &BTreeSet<String>,
    updates: &[StatusUpdate],
    now: &Time,
) -> Vec<(String, Body)> {
    let updates: BTreeMap<&str, _> = updates.iter().map(|u| (u.gateway.as_str(), u)).collect();
    let names: BTreeSet<&str> = updates
        .keys()
        .copied()
        .chain(unsettled.iter().map(String::as_str))
        .collect();
    let mut bodies = Vec::new();
    for name in names {
        let (Some(object), Some(verdict)) =
            (index.gateways.object(name), index.gateways.verdict(name))
        else {
            continue;
        };
        let stored = convert::conditions_of(&object);
        let accepted = conditions::gateway_accepted(&stored, message(verdict), now);
        let update = updates.get(name).copied();
        let accepted_changed = accepted
            .as_ref()
            .is_some_and(|c| conditions::condition_differs(&stored, c));
        if update.is_some() || accepted_changed {
            bodies.push((
                name.to_owned(),
                patches::gateway_status(update, &stored, accepted, now),
            ));
        }
    }
    bodies
}

fn policy_bodies(index: &Index, names: &BTreeSet<String>, now: &Time) -> Vec<(String, Body)> {
    let mut bodies = Vec::new();
    for name in names {
        let (Some(object), Some(verdict)) =
            (index.policies.object(name), index.policies.verdict(name))
        else {
            continue;
        };
        let stored = convert::conditions_of(&object);
        let state = match verdict {
            Verdict::Valid if index.cegp_conflicts.contains(name) => PolicyState::Conflict,
            Verdict::Valid => PolicyState::Compiled,
            Verdict::Invalid(message) => PolicyState::Invalid(message),
        };
        let ready = conditions::policy_ready(&stored, name, state, now);
        let generation = object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        let observed = object
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64);
        if observed != Some(generation) || conditions::condition_differs(&stored, &ready) {
            bodies.push((name.clone(), patches::policy_status(generation, ready)));
        }
    }
    bodies
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{Controller, Instant, Timing};
    use crate::sync::index::{Object, WatchEvent};
    use crate::validate::Options;
    use serde_json::json;

    fn policy_names(bodies: &StatusBodies) -> Vec<&str> {
        bodies.policies.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn a_policy_status_is_looked_at_again_only_after_a_change_or_a_failed_write() {
        let mut index = Index::new(Options::default());
        let mut core = Controller::new(Timing::default());
        let policy = json!({
            "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGatewayPolicy",
            "metadata": {"name": "p", "uid": "u-p", "generation": 1},
            "spec": {"egressGatewayName": "missing", "destinationCIDRs": ["198.51.100.0/24"],
                     "selectors": [{"podSelector": {"matchLabels": {"app": "web"}}}]}
        });
        let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let plan = Plan::default();
        index.handle(
            Instant::default(),
            WatchEvent::Apply(Object::Policy(policy.clone())),
            &mut core,
        );
        let first = bodies(&mut index, &plan, &now);
        assert_eq!(policy_names(&first), ["p"]);
        assert_eq!(
            first.policies[0].1.value()["status"]["conditions"][0]["status"],
            "False"
        );
        // Nothing changed: no scan result, so no write.
        assert!(bodies(&mut index, &plan, &now).policies.is_empty());
        // The write failed: the next reconcile tries again.
        index.policies.unsettle("p");
        assert_eq!(policy_names(&bodies(&mut index, &plan, &now)), ["p"]);
        // The status echo arrives: looked at, already right, nothing to write.
        let mut echoed = policy;
        echoed["status"] = first.policies[0].1.value()["status"].clone();
        index.handle(
            Instant::default(),
            WatchEvent::Apply(Object::Policy(echoed)),
            &mut core,
        );
        assert!(bodies(&mut index, &plan, &now).policies.is_empty());
    }

    #[test]
    fn a_gateway_accepted_condition_is_looked_at_again_only_after_a_change_or_a_failed_write() {
        let mut index = Index::new(Options::default());
        let mut core = Controller::new(Timing::default());
        let gateway = json!({
            "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGateway",
            "metadata": {"name": "gw", "uid": "u-gw", "generation": 1},
            "spec": {"nodeSelector": {"role": "egress"}, "sourceIP": {"mode": "Nonsense"}}
        });
        let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let plan = Plan::default();
        index.handle(
            Instant::default(),
            WatchEvent::Apply(Object::Gateway(gateway.clone())),
            &mut core,
        );
        let first = bodies(&mut index, &plan, &now);
        assert_eq!(first.gateways.len(), 1, "Accepted=False is new");
        assert_eq!(
            first.gateways[0].1.value()["status"]["conditions"][0]["status"],
            "False"
        );
        assert!(bodies(&mut index, &plan, &now).gateways.is_empty());
        index.gateways.unsettle("gw");
        assert_eq!(bodies(&mut index, &plan, &now).gateways.len(), 1);
        // The echo arrives: looked at, already right, nothing to write.
        let mut echoed = gateway;
        echoed["status"] = first.gateways[0].1.value()["status"].clone();
        index.handle(
            Instant::default(),
            WatchEvent::Apply(Object::Gateway(echoed)),
            &mut core,
        );
        assert!(bodies(&mut index, &plan, &now).gateways.is_empty());
    }
}
