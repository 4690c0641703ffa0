//! Gateway status as data: what the status should say, compared with what the cluster already
//! has, so that a patch is produced only on a real change. The `Ready` condition itself is
//! decided in `conditions` (with the other conditions and the one lastTransitionTime rule).

use super::conditions;
use super::health::HealthReason;
use crate::elect::GatewayElection;

/// The status currently stored on the gateway (from the watch).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedStatus {
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// `status.activeNodeName`.
    pub active_node: Option<String>,
    /// `status.readyNodes`.
    pub ready_nodes: Option<i64>,
    /// The `Ready` condition, if present.
    pub ready: Option<ObservedCondition>,
}

/// A stored condition; `last_transition` is kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedCondition {
    /// `status == "True"`.
    pub status: bool,
    /// `reason`.
    pub reason: String,
    /// `message`.
    pub message: String,
    /// `lastTransitionTime`, verbatim.
    pub last_transition: String,
}

/// The status to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusUpdate {
    /// Gateway name.
    pub gateway: String,
    /// `status.observedGeneration`.
    pub observed_generation: i64,
    /// `status.activeNodeName`: the node carrying the `active-for-…` label.
    pub active_node: Option<String>,
    /// `status.readyNodes`: how many nodes are eligible.
    pub ready_nodes: i64,
    /// The `Ready` condition.
    pub ready: ConditionUpdate,
}

impl StatusUpdate {
    /// The status as the API server holds it once this update was written at `written_at`
    /// (the timestamp text of the write): what the shell's watch echoes back to the core.
    pub fn stored(&self, written_at: &str) -> ObservedStatus {
        ObservedStatus {
            observed_generation: Some(self.observed_generation),
            active_node: self.active_node.clone(),
            ready_nodes: Some(self.ready_nodes),
            ready: Some(ObservedCondition {
                status: self.ready.status,
                reason: self.ready.reason.clone(),
                message: self.ready.message.clone(),
                last_transition: match &self.ready.last_transition {
                    TransitionTime::Keep(kept) => kept.clone(),
                    TransitionTime::Now => written_at.to_owned(),
                },
            }),
        }
    }
}

/// The Ready condition to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionUpdate {
    /// `status == "True"`.
    pub status: bool,
    /// `reason`.
    pub reason: String,
    /// `message`.
    pub message: String,
    /// `lastTransitionTime`.
    pub last_transition: TransitionTime,
}

/// `lastTransitionTime` of a condition being written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransitionTime {
    /// The status did not flip: write back the stored value.
    Keep(String),
    /// The status flipped (or there was no condition): the shell writes its wall-clock now.
    Now,
}

/// What the status of gateway `name` should be; `None` when the stored status already says it.
///
/// `label_node` is the node carrying the gateway's label after this plan; `vip_pending` says a
/// VIP gateway's elected node has not confirmed the VIP yet; `unhealthy` names some matching
/// nodes and why they cannot carry the gateway (shown when none can).
pub(super) fn update(
    name: &str,
    generation: i64,
    election: &GatewayElection,
    (label_node, vip_pending): (Option<&str>, bool),
    unhealthy: &[(String, HealthReason)],
    observed: Option<&ObservedStatus>,
) -> Option<StatusUpdate> {
    let (status, reason, message, last_transition) = conditions::gateway_ready(
        election,
        (label_node, vip_pending),
        unhealthy,
        observed.and_then(|o| o.ready.as_ref()),
    );
    let wanted = StatusUpdate {
        gateway: name.to_owned(),
        observed_generation: generation,
        active_node: label_node.map(str::to_owned),
        ready_nodes: i64::try_from(election.ready_nodes.len()).unwrap_or(i64::MAX),
        ready: ConditionUpdate {
            status,
            reason,
            message,
            last_transition,
        },
    };
    let unchanged = observed.is_some_and(|o| {
        o.observed_generation == Some(wanted.observed_generation)
            && o.active_node == wanted.active_node
            && o.ready_nodes == Some(wanted.ready_nodes)
            && o.ready.as_ref().is_some_and(|c| {
                c.status == wanted.ready.status
                    && c.reason == wanted.ready.reason
                    && c.message == wanted.ready.message
            })
    });
    (!unchanged).then_some(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::conditions::VIP_PENDING;
    use crate::elect::ElectionReason;

    fn carried(reason: ElectionReason, ready: usize) -> GatewayElection {
        GatewayElection {
            active: Some("n1".to_owned()),
            reason,
            ready_nodes: std::sync::Arc::new((0..ready).map(|i| format!("n{i}")).collect()),
        }
    }

    #[test]
    fn transition_time_moves_only_when_the_condition_flips() {
        let first = update(
            "gw",
            1,
            &carried(ElectionReason::Elected, 2),
            (Some("n1"), false),
            &[],
            None,
        )
        .expect("no status yet");
        assert_eq!(first.ready.last_transition, TransitionTime::Now);
        let observed = first.stored("T0");
        // Same verdict, re-elected as Kept (e.g. after a restart): nothing to write.
        let kept = carried(ElectionReason::Kept, 2);
        assert_eq!(
            update("gw", 1, &kept, (Some("n1"), false), &[], Some(&observed)),
            None
        );
        // Fewer ready nodes: a write, but the transition time is kept.
        let fewer = update(
            "gw",
            1,
            &carried(ElectionReason::Kept, 1),
            (Some("n1"), false),
            &[],
            Some(&observed),
        )
        .expect("ready count changed");
        assert_eq!(
            fewer.ready.last_transition,
            TransitionTime::Keep("T0".to_owned())
        );
        // VIP pending: the condition flips to False.
        let pending = update("gw", 1, &kept, (None, true), &[], Some(&observed)).expect("flipped");
        assert!(!pending.ready.status);
        assert_eq!(pending.ready.reason, VIP_PENDING);
        assert_eq!(pending.ready.last_transition, TransitionTime::Now);
    }
}
