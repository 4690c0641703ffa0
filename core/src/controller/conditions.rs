//! Every status condition `egressc sync` writes, decided in one place: a gateway's `Ready`
//! (does a node carry it), a gateway's `Accepted` (is its spec valid) and a policy's `Ready`
//! (is it compiled into its CEGP). One rule holds for all three and is written once,
//! [`kept_transition`]: `lastTransitionTime` moves only when the condition's status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::health::HealthReason;
use super::status::{ObservedCondition, TransitionTime};
use crate::elect::{ElectionReason, GatewayElection};

/// Condition type of a gateway's carrier and of a policy's compilation.
pub const READY_CONDITION: &str = "Ready";
/// Condition type of a gateway's validity (its `Ready` belongs to the election).
pub const ACCEPTED_CONDITION: &str = "Accepted";
/// Condition reason of an object refused by validation.
pub const INVALID_REASON: &str = "InvalidSpec";
/// Reason of a False Ready condition while a VIP gateway waits for its new node's agent.
pub const VIP_PENDING: &str = "VirtualIPPending";
/// Reason of the `Ready=False` condition and the Event of a policy whose CEGP name is taken.
pub const CEGP_CONFLICT_REASON: &str = "CiliumPolicyConflict";

/// The one `lastTransitionTime` rule: the stored time (`stored` is the stored condition's
/// status and time) when the status written is the stored one, `None` ("now") when it flips
/// or nothing is stored.
pub fn kept_transition<T: Clone>(stored: Option<(bool, &T)>, status: bool) -> Option<T> {
    stored
        .filter(|(was, _)| *was == status)
        .map(|(_, at)| at.clone())
}

/// The gateway `Ready` condition: `(status, reason, message, lastTransitionTime)`.
///
/// `label_node` is the node carrying the gateway's label after this plan; `vip_pending` says a
/// VIP gateway's elected node has not confirmed the VIP yet; `unhealthy` names some matching
/// nodes and why they cannot carry the gateway (shown when none can).
pub fn gateway_ready(
    election: &GatewayElection,
    (label_node, vip_pending): (Option<&str>, bool),
    unhealthy: &[(String, HealthReason)],
    stored: Option<&ObservedCondition>,
) -> (bool, String, String, TransitionTime) {
    let (status, reason, message) = match (label_node, &election.active) {
        (Some(node), Some(active)) if node == active && !vip_pending => {
            // Elected and Kept both mean "carried"; keep the stored one so that a restart
            // (which re-elects everything as Kept) writes nothing.
            let reason = match stored {
                Some(c) if c.status && is_carried_reason(&c.reason) => c.reason.clone(),
                _ => election.reason.as_str().to_owned(),
            };
            (true, reason, format!("node {node} carries the gateway"))
        }
        (_, Some(active)) => (
            false,
            VIP_PENDING.to_owned(),
            format!("waiting for the VIP agent on node {active} to bring the address up"),
        ),
        (_, None) => (
            false,
            election.reason.as_str().to_owned(),
            vacant_message(election.reason, unhealthy),
        ),
    };
    let kept = kept_transition(stored.map(|c| (c.status, &c.last_transition)), status);
    let at = kept.map_or(TransitionTime::Now, TransitionTime::Keep);
    (status, reason, message, at)
}

fn is_carried_reason(reason: &str) -> bool {
    reason == ElectionReason::Kept.as_str() || reason == ElectionReason::Elected.as_str()
}

fn vacant_message(reason: ElectionReason, unhealthy: &[(String, HealthReason)]) -> String {
    match reason {
        ElectionReason::NoMatchingNode => "no node matches spec.nodeSelector".to_owned(),
        _ => {
            let mut message = "nodes match spec.nodeSelector but none is eligible (Ready, \
                               schedulable, agents Ready)"
                .to_owned();
            if !unhealthy.is_empty() {
                let named: Vec<String> = unhealthy
                    .iter()
                    .map(|(node, why)| format!("{node}: {}", why.as_str()))
                    .collect();
                message.push_str(&format!("; {}", named.join(", ")));
            }
            message
        }
    }
}

/// A condition of `type_` written at `now` unless [`kept_transition`] keeps the stored time.
fn condition(
    stored: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: &Time,
) -> Condition {
    let current = stored
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status == "True", &c.last_transition_time));
    Condition {
        type_: type_.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: kept_transition(current, status).unwrap_or_else(|| now.clone()),
        observed_generation: None,
    }
}

/// The `Accepted` condition a gateway should carry: `False` with the diagnostic while it is
/// invalid, `True` once it is fixed after having been refused, none otherwise.
pub fn gateway_accepted(
    stored: &[Condition],
    invalid: Option<&str>,
    now: &Time,
) -> Option<Condition> {
    let refused_before = stored.iter().any(|c| c.type_ == ACCEPTED_CONDITION);
    match invalid {
        Some(message) => Some(condition(
            stored,
            ACCEPTED_CONDITION,
            false,
            INVALID_REASON,
            message,
            now,
        )),
        None if refused_before => Some(condition(
            stored,
            ACCEPTED_CONDITION,
            true,
            "Valid",
            "the spec is valid",
            now,
        )),
        None => None,
    }
}

/// Why a policy's CEGP is or is not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyState<'a> {
    /// Valid and compiled into its CEGP.
    Compiled,
    /// Refused by validation, with the diagnostic.
    Invalid(&'a str),
    /// Valid, but a CEGP of its name belongs to someone else ([`CEGP_CONFLICT_REASON`]).
    Conflict,
}

/// The `Ready` condition of policy `name` (its CEGP has the same name).
pub fn policy_ready(stored: &[Condition], name: &str, state: PolicyState, now: &Time) -> Condition {
    let (status, reason, message) = match state {
        PolicyState::Compiled => (
            true,
            "Compiled",
            format!("compiled into CiliumEgressGatewayPolicy {name}"),
        ),
        PolicyState::Invalid(message) => (false, INVALID_REASON, message.to_owned()),
        PolicyState::Conflict => (false, CEGP_CONFLICT_REASON, cegp_conflict_message(name)),
    };
    condition(stored, READY_CONDITION, status, reason, &message, now)
}

/// Why policy `name` is not compiled into its CEGP: another manager's object has the name.
pub fn cegp_conflict_message(name: &str) -> String {
    format!(
        "CiliumEgressGatewayPolicy {name} exists and is not managed by egressc (no label \
         app.kubernetes.io/managed-by: egressc); egressc leaves it alone. Delete or rename it, \
         or rename this policy"
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    /// `seconds` after the epoch, as a condition timestamp.
    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("in range"))
    }

    #[test]
    fn the_transition_time_is_kept_only_while_the_status_stays() {
        let t0 = "T0".to_owned();
        assert_eq!(kept_transition(Some((true, &t0)), true), Some(t0.clone()));
        assert_eq!(kept_transition(Some((true, &t0)), false), None);
        assert_eq!(kept_transition::<String>(None, true), None);
    }

    #[test]
    fn all_three_conditions_follow_the_one_rule() {
        let (t0, now) = (at(1_735_689_600), at(1_740_960_000));
        // Accepted: refused, still refused with another message → time kept; fixed → moves.
        let refused = gateway_accepted(&[], Some("bad"), &t0).expect("refused");
        let stored = [refused];
        let again = gateway_accepted(&stored, Some("worse"), &now).expect("refused");
        assert_eq!(again.last_transition_time, t0);
        let fixed = gateway_accepted(&stored, None, &now).expect("was refused");
        assert_eq!(
            (fixed.status.as_str(), &fixed.last_transition_time),
            ("True", &now)
        );
        assert_eq!(gateway_accepted(&[], None, &now), None, "never refused");
        // Policy Ready: invalid → conflict keeps the False time; compiled flips it.
        let invalid = policy_ready(&[], "p", PolicyState::Invalid("bad"), &t0);
        let stored = [invalid];
        let conflict = policy_ready(&stored, "p", PolicyState::Conflict, &now);
        assert_eq!(conflict.reason, CEGP_CONFLICT_REASON);
        assert_eq!(conflict.last_transition_time, t0);
        let compiled = policy_ready(&stored, "p", PolicyState::Compiled, &now);
        assert_eq!(compiled.last_transition_time, now);
        assert!(condition_differs(&stored, &compiled));
        assert!(!condition_differs(&stored, &stored[0]));
    }
}
