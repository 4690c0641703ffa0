//! Which gateway and policy status patches one reconcile needs, as data: the core's status
//! updates plus the `Accepted` / `Ready` conditions from validation, for every object whose
//! stored status differs. Pure, so the per-reconcile cost of this scan is benchmarked and
//! tested without an API server.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use super::convert;
use super::index::Index;
use super::objects::Verdict;
use super::patches;
use crate::controller::Plan;

/// Status merge patches to send: `(object name, body)` per kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusBodies {
    /// EgressGateway status patches.
    pub gateways: Vec<(String, Value)>,
    /// EgressGatewayPolicy status patches.
    pub policies: Vec<(String, Value)>,
}

/// The status patches `plan` and the validation verdicts in `index` ask for; `now` is the wall
/// clock for new condition transition times.
pub fn bodies(index: &Index, plan: &Plan, now: &Time) -> StatusBodies {
    StatusBodies {
        gateways: gateway_bodies(index, plan, now),
        policies: policy_bodies(index, now),
    }
}

fn message(verdict: &Verdict) -> Option<&str> {
    match verdict {
        Verdict::Invalid(m) => Some(m.as_str()),
        Verdict::Valid => None,
    }
}

fn gateway_bodies(index: &Index, plan: &Plan, now: &Time) -> Vec<(String, Value)> {
    let updates: BTreeMap<&str, _> = plan
        .statuses
        .iter()
        .map(|u| (u.gateway.as_str(), u))
        .collect();
    let mut bodies = Vec::new();
    for (name, verdict) in index.gateways.verdicts() {
        let Some(object) = index.gateways.object(name) else {
            continue;
        };
        let stored = convert::conditions_of(object);
        let accepted = patches::accepted_condition(&stored, message(verdict), now);
        let update = updates.get(name).copied();
        let accepted_changed = accepted
            .as_ref()
            .is_some_and(|c| patches::condition_differs(&stored, c));
        if update.is_some() || accepted_changed {
            bodies.push((
                name.to_owned(),
                patches::gateway_status(update, &stored, accepted, now),
            ));
        }
    }
    bodies
}

fn policy_bodies(index: &Index, now: &Time) -> Vec<(String, Value)> {
    let mut bodies = Vec::new();
    for (name, verdict) in index.policies.verdicts() {
        let Some(object) = index.policies.object(name) else {
            continue;
        };
        let stored = convert::conditions_of(object);
        let ready = patches::policy_ready(&stored, message(verdict), name, now);
        let generation = object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        let observed = object
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64);
        if observed != Some(generation) || patches::condition_differs(&stored, &ready) {
            bodies.push((name.to_owned(), patches::policy_status(generation, ready)));
        }
    }
    bodies
}
